"""Batch input: prompts one per line (stdin or .txt), or JSON Lines with per-line overrides."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import UsageError

OVERRIDES = frozenset(
    {"model", "n", "size", "aspect_ratio", "quality", "style", "response_format", "user", "seed",
     "negative_prompt", "name", "params"}
)  # fmt: skip
TYPES: dict[str, type | tuple[type, ...]] = {"n": int, "seed": int, "params": dict}


@dataclass(frozen=True)
class PromptLine:
    line: int  # 1-based line number in its source
    prompt: str
    overrides: dict[str, Any] = field(default_factory=dict)


def from_text(lines: Iterable[str]) -> list[PromptLine]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    prompts = []
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if text.strip() and not text.lstrip().startswith("#"):
            prompts.append(PromptLine(number, text.strip()))
    return prompts


def from_jsonl(lines: Iterable[str], source: str) -> list[PromptLine]:
    """One object per line: `prompt` and optional overrides; a bad line is a usage error naming it."""
    prompts = []
    for number, raw in enumerate(lines, 1):
        if raw.strip():
            prompts.append(_jsonl_line(raw, number, source))
    return prompts


def _jsonl_line(raw: str, number: int, source: str) -> PromptLine:
    where = f"{source} line {number}"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc.msg}", hint="Each line must be one JSON object.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise UsageError(f'{where} has no "prompt" string', hint='e.g. {"prompt": "a sea otter", "n": 2}')
    unknown = sorted(set(data) - OVERRIDES - {"prompt"})
    if unknown:
        allowed = ", ".join(sorted(OVERRIDES))
        raise UsageError(f"{where} has unknown key '{unknown[0]}'", hint=f"Allowed: prompt, {allowed}.")
    for key, kind in TYPES.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise UsageError(f"{where}: '{key}' must be {'an object' if kind is dict else 'a whole number'}")
    return PromptLine(number, data.pop("prompt"), data)


class Source:
    """Prompt lines that can be read more than once, one at a time: a batch is validated whole in a
    first pass before anything is sent, then planned line by line in a second, so memory does not
    grow with the number of prompts. stdin cannot be read twice: the first pass copies it to an
    unnamed temporary file (gone when closed, or when the process dies)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.name = str(path) if path is not None else "stdin"
        self.jsonl = path is not None and path.suffix.lower() == ".jsonl"
        self.spool: IO[bytes] | None = None
        self.count = 0  # prompts found by the first pass

    def first_pass(self) -> Iterator[PromptLine]:
        """Every prompt, checked; stdin is copied aside as it goes. Counts the prompts."""
        self.count = 0
        if self.path is None:
            self.spool = tempfile.TemporaryFile(prefix="imggen-stdin-")  # noqa: SIM115 (closed by close())
        for entry in self._parse(self._stdin_copied() if self.path is None else self._raw()):
            self.count += 1
            yield entry
        if self.count == 0 and self.path is None:
            raise UsageError("no prompts on stdin", hint="One prompt per line; # starts a comment.")
        if self.count == 0:
            raise UsageError(f"--prompts-file {self.path} holds no prompts")

    def __iter__(self) -> Iterator[PromptLine]:
        """The prompts again, as the first pass found them."""
        if self.spool is not None:
            self.spool.seek(0)
            return self._parse(self._decoded(self.spool))
        return self._parse(self._raw())

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def _parse(self, lines: Iterable[tuple[int, str]]) -> Iterator[PromptLine]:
        if self.jsonl:
            return (_jsonl_line(raw, number, self.name) for number, raw in lines if raw.strip())
        return (entry for number, raw in lines if (entry := _text_line(raw, number)) is not None)

    def _raw(self) -> Iterator[tuple[int, str]]:
        assert self.path is not None
        try:
            with self.path.open("rb") as handle:
                yield from self._decoded(handle)
        except OSError as exc:
            raise UsageError(f"cannot read --prompts-file {self.path}: {exc.strerror}") from exc

    def _stdin_copied(self) -> Iterator[tuple[int, str]]:
        assert self.spool is not None
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        if stdin is None:
            raise UsageError("PROMPT - reads stdin, but there is no stdin")
        spool = self.spool
        for number, raw in self._decoded(stdin):
            spool.write(raw.encode())
            if not raw.endswith("\n"):
                spool.write(b"\n")  # a last line without its line break
            yield number, raw

    def _decoded(self, handle: Iterable[bytes]) -> Iterator[tuple[int, str]]:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"{self.name} line {number} is not UTF-8 text") from exc


def _text_line(raw: str, number: int) -> PromptLine | None:
    """A prompt, or None for a blank line or a # comment."""
    text = raw.rstrip("\r\n")
    if text.strip() and not text.lstrip().startswith("#"):
        return PromptLine(number, text.strip())
    return None


def read_file(path: Path) -> list[PromptLine]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --prompts-file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--prompts-file {path} is not UTF-8 text") from exc
    lines = text.splitlines()
    prompts = from_jsonl(lines, str(path)) if path.suffix.lower() == ".jsonl" else from_text(lines)
    if not prompts:
        raise UsageError(f"--prompts-file {path} holds no prompts")
    return prompts
