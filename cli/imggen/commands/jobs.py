"""The command line's prompt sources: a PROMPT argument, `-` or piped stdin, or --prompts-file. The
batch they make is the library's (imggen.jobs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..jobs import Batch
from ..prompts import Source


def batch_for(prompt: str | None, prompts_file: Path | None, **options: Any) -> Batch:
    """The batch of one `generate` command (the options every line starts from: see jobs.Batch)."""
    return Batch(_source(prompt, prompts_file), prompt, **options)


def _source(prompt: str | None, prompts_file: Path | None) -> Source | None:
    """Where the prompts come from: a file, stdin, or None for a single prompt argument."""
    if prompts_file is not None:
        if prompt is not None:
            raise UsageError("give a PROMPT or --prompts-file, not both")
        return Source(prompts_file)
    piped = sys.stdin is not None and not sys.stdin.closed and not sys.stdin.isatty()
    if prompt == "-" or (prompt is None and piped):
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("PROMPT - reads stdin, but there is no stdin")
        return Source()
    if prompt is None:
        raise UsageError("no prompt given", hint='e.g. imggen generate "a sea otter", or pipe prompts into it.')
    return None
