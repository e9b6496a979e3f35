"""`DIR/.imggen-manifest.jsonl`: one line per saved image or failure, each written whole, so
`--resume` can finish an interrupted or partly failed run without paying twice."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import OutputError

NAME = ".imggen-manifest.jsonl"


def job_key(prompt: str, model: str, parameters: dict[str, Any]) -> str:
    """What makes two runs ask for the same images: prompt, model and every parameter but n."""
    same = {k: v for k, v in parameters.items() if k != "n"}
    text = json.dumps({"prompt": prompt, "model": model, "parameters": same}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Manifest:
    def __init__(self, directory: Path) -> None:
        self.path = directory / NAME
        self.fd: int | None = None  # opened on the first line, kept for the run: an open per image is slow

    def append(self, record: dict[str, Any]) -> None:
        """One write of one whole line with O_APPEND: lines never interleave, even across processes."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self.fd, line)
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def done(self) -> dict[str, set[int]]:
        """Indices already saved per job key, for images whose file is still there."""
        saved: dict[str, set[int]] = {}
        for record in self._records():
            path = record.get("path")
            if record.get("status") == "saved" and path and (self.path.parent / Path(path).name).exists():
                saved.setdefault(str(record.get("key")), set()).add(int(record.get("index", 0)))
        return saved

    def _records(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash is skipped, not fatal
            if isinstance(record, dict):
                records.append(record)
        return records
