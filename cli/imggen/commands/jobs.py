"""From the command line's prompt sources to validated jobs: everything is checked before anything
is sent, and a bad input line is a usage error naming its source and line."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ImggenError, UsageError
from ..plan import Options
from ..prompts import PromptLine, from_text, read_file, stdin_lines
from .run import Job

OPTION_KEYS = ("n", "size", "aspect_ratio", "quality", "style", "response_format", "user", "seed", "negative_prompt")


def prompt_lines(prompt: str | None, prompts_file: Path | None) -> tuple[list[PromptLine], str | None]:
    """The prompts and where they came from (None for a single prompt argument)."""
    if prompts_file is not None:
        if prompt is not None:
            raise UsageError("give a PROMPT or --prompts-file, not both")
        return read_file(prompts_file), str(prompts_file)
    piped = sys.stdin is not None and not sys.stdin.closed and not sys.stdin.isatty()
    if prompt == "-" or (prompt is None and piped):
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("PROMPT - reads stdin, but there is no stdin")
        lines = from_text(stdin_lines(sys.stdin))
        if not lines:
            raise UsageError("no prompts on stdin", hint="One prompt per line; # starts a comment.")
        return lines, "stdin"
    if prompt is None:
        raise UsageError("no prompt given", hint='e.g. imggen generate "a sea otter", or pipe prompts into it.')
    return [PromptLine(0, prompt)], None


def build_jobs(
    lines: list[PromptLine],
    source: str | None,
    *,
    model: str | None,
    profile: str | None,
    options: Options,
    flags: dict[str, Any],
    name: str | None,
) -> list[Job]:
    from ..api import plan_generation
    from ..settings import load_config

    config = load_config()  # once for the whole batch, not once per prompt
    jobs = []
    for entry in lines:
        over = entry.overrides
        line_options = replace(
            options,
            **{k: over[k] for k in OPTION_KEYS if k in over},
            params={**options.params, **over.get("params", {})},
        )
        try:
            plan = plan_generation(
                entry.prompt,
                over.get("model", model),
                profile=profile,
                options=line_options,
                flags=flags,
                config=config,
            )
            jobs.append(Job(plan, entry.line if source else None, over.get("name", name)))
        except ImggenError as exc:
            if source:
                exc.message = f"{source} line {entry.line}: {exc.message}"
            raise
    return jobs
