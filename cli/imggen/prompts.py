"""Batch input: prompts one per line (stdin or .txt), or JSON Lines with per-line overrides."""

from __future__ import annotations

import json
import sys
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import UsageError
from .plan import OPTIONS

# A line's own keys besides the prompt and the generation options (plan.Options' fields).
LINE_KEYS: dict[str, type] = {"model": str, "name": str}
# An edit's inputs: paths, relative to the prompts file's folder (jobs.Batch loads them).
IMAGE_KEYS: dict[str, type] = {"image": str, "images": list, "mask": str}
KIND_ORDER = (int, dict, list, str, bool)  # the order a line's keys are type-checked in (the first wrong is said)
TYPES: dict[str, type] = dict(
    sorted({"model": str, **{k: o.kind for k, o in OPTIONS.items() if o.line}, **LINE_KEYS, **IMAGE_KEYS}.items(),
           key=lambda item: KIND_ORDER.index(item[1]))
)  # fmt: skip
OVERRIDES = frozenset(TYPES)
KINDS: dict[type, str] = {dict: "an object", int: "a whole number", str: "a string", bool: "true or false",
                          list: "a list of strings"}  # fmt: skip
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PromptLine:
    line: int  # 1-based line number in its source
    prompt: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _jsonl_line(raw: str, number: int, source: str) -> PromptLine:
    where = f"{source} line {number}"
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc.msg}", hint="Each line must be one JSON object.") from exc
    except ValueError as exc:  # NaN, Infinity: Python's json takes them, JSON does not
        raise UsageError(f"{where} is not valid JSON: {exc}", hint="Write numbers as numbers.") from exc
    except RecursionError as exc:
        raise UsageError(f"{where} is not valid JSON: nested too deeply") from exc
    return _checked(data, number, where)


def line_of(job: Any, number: int, where: str) -> PromptLine:
    """A job given from Python (imggen.run): a prompt, or a dict with a JSONL line's keys."""
    if isinstance(job, str):
        return PromptLine(number, job)
    return _checked(dict(job) if isinstance(job, Mapping) else job, number, where)


def _checked(data: Any, number: int, where: str) -> PromptLine:
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise UsageError(f'{where} has no "prompt" string', hint='e.g. {"prompt": "a sea otter", "n": 2}')
    unknown = sorted(set(data) - OVERRIDES - {"prompt"})
    if unknown:
        allowed = ", ".join(sorted(OVERRIDES))
        raise UsageError(f"{where} has unknown key '{unknown[0]}'", hint=f"Allowed: prompt, {allowed}.")
    for key, kind in TYPES.items():
        if key in data and (not isinstance(data[key], kind) or (kind is not bool and isinstance(data[key], bool))):
            raise UsageError(f"{where}: '{key}' must be {KINDS[kind]}")
    images = data.get("images", [])
    if not all(isinstance(item, str) for item in images):
        raise UsageError(f"{where}: 'images' must be {KINDS[list]}")
    if "image" in data and "images" in data:
        raise UsageError(f"{where} has both 'image' and 'images'", hint="Give one: 'images' takes a list.")
    return PromptLine(number, data.pop("prompt"), data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


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
        self.offsets: array[int] | None = None  # where each line starts (`at`): 8 bytes a line
        self.handle: IO[bytes] | None = None

    def where(self, line: int) -> str:
        """How a mistake names a line: `prompts.jsonl line 3`."""
        return f"{self.name} line {line}"

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

    def at(self, number: int) -> PromptLine | None:
        """Line `number` of a file alone, None for a blank or comment line or one past the end. For
        `imggen batch collect`, whose results come in any order: the file is read once for where each
        line starts, then each line is read where it is, so memory does not grow with the prompts."""
        assert self.path is not None
        if self.offsets is None or self.handle is None:
            self.handle = self.path.open("rb")
            self.offsets, position = array("q"), 0
            for raw in self.handle:
                self.offsets.append(position)
                position += len(raw)
        if not 1 <= number <= len(self.offsets):
            return None
        self.handle.seek(self.offsets[number - 1])
        return next(self._parse(self._decoded([self.handle.readline()], number)), None)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
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

    def _decoded(self, handle: Iterable[bytes], first: int = 1) -> Iterator[tuple[int, str]]:
        """Lines as text, one at a time (numbered from `first`): a line that is not UTF-8, or holds a NUL
        byte, is a usage error naming its line (a whole-file decode could only say that something is wrong)."""
        for number, raw in enumerate(handle, first):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            if b"\0" in raw:
                raise UsageError(f"{self.name} line {number} contains a NUL byte", hint="Prompts must be text.")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"{self.name} line {number} is not valid UTF-8 "
                    f"(byte {raw[exc.start]:#04x} at column {exc.start + 1})",
                    hint="Save the file as UTF-8.",
                ) from None


def _text_line(raw: str, number: int) -> PromptLine | None:
    """A prompt, or None for a blank line or a # comment."""
    text = raw.rstrip("\r\n")
    if text.strip() and not text.lstrip().startswith("#"):
        return PromptLine(number, text.strip())
    return None
