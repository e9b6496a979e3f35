"""`imggen generate`: parse options, call the API, write files, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ..errors import UsageError
from .complete import complete_model, complete_profile

HELP_OUTPUT = "Directory for the images (created if missing; default .), a file such as out.png, or - for stdout."


def parse_params(items: list[str]) -> dict[str, Any]:
    """`-p KEY=VALUE`: VALUE is JSON when it parses as JSON, else a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p '{item}' is not KEY=VALUE", hint="e.g. -p background=transparent.")
        try:
            params[key.strip()] = json.loads(raw, parse_constant=_no_constant)
        except ValueError:  # not JSON (NaN and Infinity are not JSON either): the text as it is
            params[key.strip()] = raw
    return params


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def generate(
    prompt: str | None = typer.Argument(
        None,
        metavar="[PROMPT]",
        show_default=False,
        help="The prompt, or - to read prompts from stdin, one a line (so does a pipe when PROMPT is omitted).",
    ),
    model: str | None = typer.Option(
        None,
        "-m",
        "--model",
        metavar="MODEL",
        autocompletion=complete_model,
        help="provider/model (default: imggen models default, else openai/gpt-image-2).",
    ),
    number: int = typer.Option(1, "-n", "--number", metavar="N", help="Images per prompt, 1-10."),
    size: str | None = typer.Option(None, "-s", "--size", metavar="WxH", help="WxH, e.g. 1024x1024."),
    aspect_ratio: str | None = typer.Option(None, "--aspect-ratio", metavar="W:H", help="W:H, e.g. 16:9."),
    quality: str | None = typer.Option(
        None, "-q", "--quality", metavar="QUALITY", help="Quality, as the model names it."
    ),
    style: str | None = typer.Option(None, "--style", metavar="STYLE", help="Style (dall-e-3: vivid, natural)."),
    response_format: str | None = typer.Option(None, "--response-format", metavar="FORMAT", help="url or b64_json."),
    user: str | None = typer.Option(None, "--user", metavar="ID", help="End-user id passed to the provider."),
    seed: int | None = typer.Option(None, "--seed", metavar="S", help="Seed, where the model takes one."),
    negative_prompt: str | None = typer.Option(None, "--negative-prompt", metavar="TEXT", help="What to leave out."),
    param: list[str] = typer.Option(
        [], "-p", "--param", metavar="KEY=VALUE", help="Provider parameter KEY=VALUE (repeatable)."
    ),
    output: str | None = typer.Option(None, "-o", "--output", metavar="DIR", help=HELP_OUTPUT),
    name: str | None = typer.Option(
        None, "--name", metavar="TEMPLATE", help="File name template (default: {date}-{prompt}-{index}.{ext})."
    ),
    concurrency: int = typer.Option(4, "-j", "--concurrency", metavar="N", help="Requests in flight at once."),
    retries: int = typer.Option(2, "--retries", metavar="N", help="Retries of a failed request."),
    timeout: float | None = typer.Option(
        None, "--timeout", metavar="SECONDS", help="Seconds per request (default: 600)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", metavar="NAME", help="Credentials profile.", autocompletion=complete_profile
    ),
    api_base: str | None = typer.Option(None, "--api-base", metavar="URL", help="Endpoint root."),
    api_version: str | None = typer.Option(None, "--api-version", metavar="VERSION", help="API version (Azure)."),
    metadata: bool = typer.Option(False, "--metadata", help="Write <stem>.json beside each image."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the requests instead of sending them."),
    json_lines: bool = typer.Option(False, "--json", help="JSON Lines on stdout instead of paths."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress, summary or notes on stderr."),
    verbose: bool = typer.Option(
        False, "-v", "--verbose", help="Show each request (secrets masked), its answer, timing and retries on stderr."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    prompts_file: Path | None = typer.Option(
        None, "--prompts-file", metavar="FILE", help="Prompts from a .txt or .jsonl file."
    ),
    rpm: float | None = typer.Option(None, "--rpm", metavar="N", help="At most this many requests started per minute."),
    resume: bool = typer.Option(False, "--resume", help="Skip images the output directory's manifest has."),
    max_cost: float | None = typer.Option(
        None, "--max-cost", metavar="USD", help="Refuse a run estimated above this many USD."
    ),
    allow_retired: bool = typer.Option(
        False, "--allow-retired", help="Send a retired model to its provider all the same (if it still serves it)."
    ),
) -> None:
    """Generate images from a prompt (or many: PROMPT -, or --prompts-file) and save them."""
    from ..plan import Options
    from .jobs import batch_for

    options = Options(
        n=number, size=size, aspect_ratio=aspect_ratio, quality=quality, style=style,
        response_format=response_format, user=user, seed=seed, negative_prompt=negative_prompt,
        params=parse_params(param), allow_retired=allow_retired,
    )  # fmt: skip
    _check_numbers(concurrency, retries, timeout, rpm, max_cost)
    flags = {"api_base": api_base, "api_version": api_version, "timeout": timeout, "output_dir": output, "rpm": rpm}
    batch = batch_for(prompt, prompts_file, model=model, profile=profile, options=options, flags=flags, name=name)
    try:
        if dry_run:
            from .dryrun import print_batch

            print_batch(batch, json_lines=json_lines, quiet=quiet, max_cost=max_cost)
            return
        from .run import Run

        run = Run(
            batch, overwrite=overwrite, metadata=metadata, json_lines=json_lines, quiet=quiet, resume=resume,
            verbose=verbose,
        )  # fmt: skip
        run.check_budget(max_cost)
        rate = run.totals.first.settings.get("rpm") if run.totals.first else None
        code = run.start(retries=retries, concurrency=concurrency, rpm=float(rate) if rate else None)
    finally:
        batch.close()
    raise typer.Exit(code)


def _check_numbers(
    concurrency: int, retries: int, timeout: float | None, rpm: float | None, max_cost: float | None
) -> None:
    from ..checks import RANGES, number_problem, quoted

    given = {"-j": ("concurrency", concurrency), "--retries": ("retries", retries), "--timeout": ("timeout", timeout),
             "--rpm": ("rpm", rpm), "--max-cost": ("max_cost", max_cost)}  # fmt: skip
    for flag, (key, value) in given.items():
        problem = None if value is None else number_problem(value, RANGES[key])
        if problem:
            raise UsageError(f"{flag} {quoted(value)} {problem}")
