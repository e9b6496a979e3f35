"""`DIR/.imggen-manifest.jsonl`: one line per saved image or failure, each written whole, so
`--resume` can finish an interrupted or partly failed run without paying twice. A job submitted to a
queue API has its line too (`"status": "submitted"`, its `job_id`), written before its first poll:
`--resume` collects a job whose images were not saved instead of submitting it again."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import OutputError, UsageError

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
        self.bad_lines: list[int] = []  # line numbers `done` could not read
        self.claimed: set[str] = set()  # file names the readable `saved` lines name
        # Jobs submitted and not saved since, per job key: {first image index: (images, job id)} (done()).
        self.jobs: dict[str, dict[int, tuple[int, str]]] = {}

    def append(self, record: dict[str, Any]) -> None:
        """One write of one whole line with O_APPEND: lines never interleave, even across processes."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                line = self._after_cut_line() + line
            os.write(self.fd, line)
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc.strerror}") from exc

    def _after_cut_line(self) -> bytes:
        """A line break first when the last line was cut short (a crash), so this line stays whole."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if not size:
            return b""
        os.lseek(self.fd, size - 1, os.SEEK_SET)  # writes still go to the end: O_APPEND
        return b"" if os.read(self.fd, 1) == b"\n" else b"\n"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def check(self) -> None:
        """Before the first request: a manifest that cannot take a line stops the run, not image 1."""
        if not os.path.lexists(self.path):
            return  # the output directory's write probe covers creating it
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NONBLOCK", 0))
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            os.close(fd)
            if not regular:
                raise OSError(0, "not a regular file")
        except OSError as exc:
            raise UsageError(
                f"cannot write the manifest {self.path}: {exc.strerror}",
                hint="Move it away (imggen makes a new one), or pick another -o.",
            ) from exc

    def done(self) -> dict[str, set[int]]:
        """Indices already saved per job key: the last `saved` line of each image whose file is still
        there (with the size and sha256 the line records, when it records them). Lines are written
        just before the file takes its name, so a file on disk always has its line; a line cut short
        was cut before its file was placed, and the image is simply made again."""
        last: dict[tuple[str, int], dict[str, Any]] = {}
        submitted: dict[tuple[str, int], dict[str, Any]] = {}
        for record in self._records():
            if record.get("status") == "saved":
                last[(record["key"], record["index"])] = record
            elif record.get("status") == "submitted" and _job_record(record):
                submitted[(record["key"], record["index"])] = record
        self.claimed = {Path(record["path"]).name for record in last.values()}
        saved: dict[str, set[int]] = {}
        for (key, index), record in last.items():
            if self._on_disk(record):
                saved.setdefault(key, set()).add(index)
        self.jobs = {}
        for (key, index), record in submitted.items():
            if not set(range(index, index + record["n"])) & saved.get(key, set()):
                self.jobs.setdefault(key, {})[index] = (record["n"], record["job_id"])
        return saved

    def saved(self) -> dict[str, dict[str, Any]]:
        """The last `saved` line of each file name (a name given again, with --overwrite, is the newer
        image): what `imggen gallery` shows for a folder's images."""
        return {Path(r["path"]).name: r for r in self._records() if r.get("status") == "saved"}

    def _on_disk(self, record: dict[str, Any]) -> bool:
        path = self.path.parent / Path(record["path"]).name
        try:
            size = path.stat().st_size
        except OSError:
            return False
        if not isinstance(record.get("sha256"), str):
            return True  # a line from before imggen recorded hashes
        return size == record.get("bytes") and sha256_of(path) == record["sha256"]

    def _records(self) -> list[dict[str, Any]]:
        """The readable records; the numbers of the lines that are not are kept in `bad_lines`."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UsageError(
                f"cannot read the manifest {self.path}: {exc.strerror}",
                hint="Move it away (imggen makes a new one), or pick another -o.",
            ) from exc
        records = []
        self.bad_lines = []
        for number, line in enumerate(data.splitlines(), 1):
            record = _record(line)
            if record is None:
                if line.strip():
                    self.bad_lines.append(number)
            else:
                records.append(record)
        return records


def _record(line: bytes) -> dict[str, Any] | None:
    """One line as a record, or None when it is not one imggen wrote (cut short, edited, corrupt)."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("key"), str):
        return None
    if record.get("status") == "saved":
        index, path = record.get("index"), record.get("path")
        if not (isinstance(index, int) and not isinstance(index, bool) and isinstance(path, str) and path):
            return None
    return record


def _job_record(record: dict[str, Any]) -> bool:
    """A `submitted` line imggen wrote: the job's first image index, its images and its id."""
    index, n, job_id = record.get("index"), record.get("n"), record.get("job_id")
    numbers = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (index, n))
    return numbers and isinstance(job_id, str) and 0 < len(job_id) <= 1000


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
