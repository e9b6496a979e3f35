"""Batch input: prompts one per line (stdin or .txt), or JSON Lines with per-line overrides."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import UsageError

OVERRIDES = frozenset(
    {"model", "n", "size", "aspect_ratio", "quality", "style", "response_format", "user", "seed",
     "negative_prompt", "name", "params"}
)  # fmt: skip
TYPES: dict[str, type] = {
    "n": int, "seed": int, "params": dict, "model": str, "size": str, "aspect_ratio": str, "quality": str,
    "style": str, "response_format": str, "user": str, "negative_prompt": str, "name": str,
}  # fmt: skip
KINDS: dict[type, str] = {dict: "an object", int: "a whole number", str: "a string"}
BOM = b"\xef\xbb\xbf"


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
        data = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc.msg}", hint="Each line must be one JSON object.") from exc
    except ValueError as exc:  # NaN, Infinity: Python's json takes them, JSON does not
        raise UsageError(f"{where} is not valid JSON: {exc}", hint="Write numbers as numbers.") from exc
    except RecursionError as exc:
        raise UsageError(f"{where} is not valid JSON: nested too deeply") from exc
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise UsageError(f'{where} has no "prompt" string', hint='e.g. {"prompt": "a sea otter", "n": 2}')
    unknown = sorted(set(data) - OVERRIDES - {"prompt"})
    if unknown:
        allowed = ", ".join(sorted(OVERRIDES))
        raise UsageError(f"{where} has unknown key '{unknown[0]}'", hint=f"Allowed: prompt, {allowed}.")
    for key, kind in TYPES.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise UsageError(f"{where}: '{key}' must be {KINDS[kind]}")
    return PromptLine(number, data.pop("prompt"), data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_lines(lines: Iterable[bytes], source: str) -> Iterator[str]:
    """Lines of bytes as text, one at a time: a line that is not UTF-8, or holds a NUL byte, is a usage
    error naming its source and line (a whole-file decode could only say that something is wrong)."""
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if b"\0" in raw:
            raise UsageError(f"{source} line {number} contains a NUL byte", hint="Prompts must be text.")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{source} line {number} is not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})",
                hint="Save the file as UTF-8.",
            ) from None


def stdin_lines(stream: TextIO) -> Iterator[str]:
    """Prompts piped in, read as bytes so that a bad line is found and named, not a traceback."""
    binary = getattr(stream, "buffer", None)
    return decode_lines(binary, "stdin") if binary is not None else iter(stream)


def read_file(path: Path) -> list[PromptLine]:
    try:
        with path.open("rb") as handle:
            lines = decode_lines(handle, str(path))
            prompts = from_jsonl(lines, str(path)) if path.suffix.lower() == ".jsonl" else from_text(lines)
    except OSError as exc:
        raise UsageError(f"cannot read --prompts-file {path}: {exc.strerror}") from exc
    if not prompts:
        raise UsageError(f"--prompts-file {path} holds no prompts")
    return prompts
