"""How imggen talks on stderr: errors, warnings, notes; plain text unless stderr is a colour terminal."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ..errors import ImggenError, error_line

STDOUT_CLOSED = False  # imggen started with stdout closed (`>&-`): the null device stands in for it


def live_stderr() -> bool:
    """stderr is a terminal that can take colour and a live display (a progress bar): not a pipe, not
    TERM=dumb."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def stderr_console() -> Any:
    """A Rich console on stderr (never stdout: paths and JSON go there), without colour under NO_COLOR."""
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))


def _colour() -> bool:
    return live_stderr() and not os.environ.get("NO_COLOR")


def _say(prefix: str, style: str, text: str) -> None:
    from ..settings import redact

    text = redact(text)
    if _colour():
        sys.stderr.write(f"\x1b[{style}m{prefix}\x1b[0m {text}\n")
    else:
        sys.stderr.write(f"{prefix} {text}\n")
    sys.stderr.flush()


def print_error(exc: ImggenError, prompt: str | None = None, model: str | None = None) -> None:
    _say("error:", "1;31", error_line(exc, prompt, model))


def warn(text: str) -> None:
    _say("warning:", "1;33", text)


def note(text: str) -> None:
    _say("note:", "2", text)


def trace(text: str) -> None:
    """A -v line (a request, its answer, a retry), redacted. While the progress display is on, Rich
    holds sys.stderr and prints the line above the bar."""
    from ..secrets import redact

    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def print_table(lines: list[list[str]], gap: str = "  ") -> None:
    """Columns as wide as their widest cell (the first line is the header), no trailing spaces."""
    sys.stdout.writelines(text + "\n" for text in table(lines, gap))


def table(lines: list[list[str]], gap: str = "  ") -> list[str]:
    """print_table's lines, for a display that draws them itself."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [gap.join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]


def silence_stdout() -> None:
    """Point stdout at the null device once writing to it failed (a closed pipe, a full disk): what
    is still buffered, and Python's own flush at exit, then go nowhere instead of ending in exit 120."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def money(value: float | None) -> str:
    if value is None:
        return "cost unknown"
    return f"est. ${value:.4f}".rstrip("0").rstrip(".") if value else "est. $0"
