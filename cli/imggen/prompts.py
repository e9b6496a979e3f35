"""Batch input: prompts one per line (stdin or .txt), or JSON Lines with per-line overrides."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
