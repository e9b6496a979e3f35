"""`imggen generate`: parse options, call the API, write files, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError
from .complete import complete_model, complete_profile

if TYPE_CHECKING:
    from ..jobs import Batch

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


MODEL = typer.Option(
    None,
    "-m",
    "--model",
    metavar="MODEL",
    autocompletion=complete_model,
    help="provider/model (default: imggen models default, else openai/gpt-image-2).",
)
NUMBER = typer.Option(1, "-n", "--number", metavar="N", help="Images per prompt, 1-10.")
SIZE = typer.Option(None, "-s", "--size", metavar="WxH", help="WxH, e.g. 1024x1024.")
ASPECT_RATIO = typer.Option(None, "--aspect-ratio", metavar="W:H", help="W:H, e.g. 16:9.")
QUALITY = typer.Option(None, "-q", "--quality", metavar="QUALITY", help="Quality, as the model names it.")
STYLE = typer.Option(None, "--style", metavar="STYLE", help="Style (dall-e-3: vivid, natural).")
RESPONSE_FORMAT = typer.Option(None, "--response-format", metavar="FORMAT", help="url or b64_json.")
USER = typer.Option(None, "--user", metavar="ID", help="End-user id passed to the provider.")
SEED = typer.Option(None, "--seed", metavar="S", help="Seed, where the model takes one.")
NEGATIVE_PROMPT = typer.Option(None, "--negative-prompt", metavar="TEXT", help="What to leave out.")
PARAM = typer.Option([], "-p", "--param", metavar="KEY=VALUE", help="Provider parameter KEY=VALUE (repeatable).")
OUTPUT = typer.Option(None, "-o", "--output", metavar="DIR", help=HELP_OUTPUT)
NAME = typer.Option(
    None, "--name", metavar="TEMPLATE", help="File name template (default: {date}-{prompt}-{index}.{ext})."
)
CONCURRENCY = typer.Option(4, "-j", "--concurrency", metavar="N", help="Requests in flight at once.")
RETRIES = typer.Option(2, "--retries", metavar="N", help="Retries of a failed request.")
TIMEOUT = typer.Option(None, "--timeout", metavar="SECONDS", help="Seconds per request (default: 600).")
PROFILE = typer.Option(None, "--profile", metavar="NAME", help="Credentials profile.", autocompletion=complete_profile)
API_BASE = typer.Option(None, "--api-base", metavar="URL", help="Endpoint root.")
API_VERSION = typer.Option(None, "--api-version", metavar="VERSION", help="API version (Azure).")
METADATA = typer.Option(False, "--metadata", help="Write <stem>.json beside each image.")
DRY_RUN = typer.Option(False, "--dry-run", help="Print the requests instead of sending them.")
JSON_LINES = typer.Option(False, "--json", help="JSON Lines on stdout instead of paths.")
QUIET = typer.Option(False, "--quiet", help="No progress, summary or notes on stderr.")
VERBOSE = typer.Option(
    False, "-v", "--verbose", help="Show each request (secrets masked), its answer, timing and retries on stderr."
)
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing files.")
PROMPTS_FILE = typer.Option(None, "--prompts-file", metavar="FILE", help="Prompts from a .txt or .jsonl file.")
RPM = typer.Option(None, "--rpm", metavar="N", help="At most this many requests started per minute.")
RESUME = typer.Option(False, "--resume", help="Skip images the output directory's manifest has.")
MAX_COST = typer.Option(None, "--max-cost", metavar="USD", help="Refuse a run estimated above this many USD.")
NO_LOG = typer.Option(False, "--no-log", help="Do not record the images in the log (imggen logs).")
FROM = typer.Option(
    None, "--from", metavar="ID", help="Ask again what log entry ID asked (imggen logs); flags given here win."
)
OPEN = typer.Option(
    None, "--open/--no-open", show_default=False,
    help="Open the saved images with the system viewer once all are saved (config: open = true, at a terminal).",
)  # fmt: skip
PREVIEW = typer.Option(
    None, "--preview/--no-preview", show_default=False,
    help="Small previews on stderr in terminals that draw pictures (kitty, iTerm2, sixel; config: preview = true).",
)  # fmt: skip
ALLOW_RETIRED = typer.Option(
    False, "--allow-retired", help="Send a retired model to its provider all the same (if it still serves it)."
)


def generate(
    ctx: typer.Context,
    prompt: str | None = typer.Argument(
        None,
        metavar="[PROMPT]",
        show_default=False,
        help="The prompt, or - to read prompts from stdin, one a line (so does a pipe when PROMPT is omitted).",
    ),
    model: str | None = MODEL,
    number: int = NUMBER,
    size: str | None = SIZE,
    aspect_ratio: str | None = ASPECT_RATIO,
    quality: str | None = QUALITY,
    style: str | None = STYLE,
    response_format: str | None = RESPONSE_FORMAT,
    user: str | None = USER,
    seed: int | None = SEED,
    negative_prompt: str | None = NEGATIVE_PROMPT,
    param: list[str] = PARAM,
    output: str | None = OUTPUT,
    name: str | None = NAME,
    concurrency: int = CONCURRENCY,
    retries: int = RETRIES,
    timeout: float | None = TIMEOUT,
    profile: str | None = PROFILE,
    api_base: str | None = API_BASE,
    api_version: str | None = API_VERSION,
    metadata: bool = METADATA,
    dry_run: bool = DRY_RUN,
    json_lines: bool = JSON_LINES,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
    overwrite: bool = OVERWRITE,
    prompts_file: Path | None = PROMPTS_FILE,
    rpm: float | None = RPM,
    resume: bool = RESUME,
    max_cost: float | None = MAX_COST,
    allow_retired: bool = ALLOW_RETIRED,
    no_log: bool = NO_LOG,
    from_entry: int | None = FROM,
    open_images: bool | None = OPEN,
    preview: bool | None = PREVIEW,
) -> None:
    """Generate images from a prompt (or many: PROMPT -, or --prompts-file) and save them."""
    from ..plan import Options
    from .jobs import batch_for

    if from_entry is not None:
        from .replay import replay

        replay(ctx, from_entry)

    options = Options(
        n=number, size=size, aspect_ratio=aspect_ratio, quality=quality, style=style,
        response_format=response_format, user=user, seed=seed, negative_prompt=negative_prompt,
        params=parse_params(param), allow_retired=allow_retired,
    )  # fmt: skip
    check_numbers(concurrency, retries, timeout, rpm, max_cost)
    flags = {"api_base": api_base, "api_version": api_version, "timeout": timeout, "output_dir": output, "rpm": rpm}
    batch = batch_for(prompt, prompts_file, model=model, profile=profile, options=options, flags=flags, name=name)
    code = run_batch(
        batch, dry_run=dry_run, json_lines=json_lines, quiet=quiet, verbose=verbose, overwrite=overwrite,
        metadata=metadata, resume=resume, max_cost=max_cost, retries=retries, concurrency=concurrency,
        log_as=None if no_log else "generate",
        seeing=(open_images, preview),
    )  # fmt: skip
    raise typer.Exit(code)


def run_batch(
    batch: Batch, *, dry_run: bool, json_lines: bool, quiet: bool, verbose: bool, overwrite: bool, metadata: bool,
    resume: bool, max_cost: float | None, retries: int, concurrency: int, log_as: str | None = None,
    seeing: tuple[bool | None, bool | None] = (None, None),
) -> int:  # fmt: skip
    """Print the batch's requests (--dry-run), or run it with the progress display; the exit code."""
    try:
        if dry_run:
            from .dryrun import print_batch

            print_batch(batch, json_lines=json_lines, quiet=quiet, max_cost=max_cost)
            return 0
        from .run import Run
        from .show import choose, show

        run = Run(
            batch, overwrite=overwrite, metadata=metadata, json_lines=json_lines, quiet=quiet, resume=resume,
            verbose=verbose, log_as=log_as,
        )  # fmt: skip
        run.check_budget(max_cost)
        wanted = choose(*seeing, batch.config, quiet=quiet)
        run.keep_paths = wanted.paths_wanted
        rate = run.totals.first.settings.get("rpm") if run.totals.first else None
        code = run.start(retries=retries, concurrency=concurrency, rpm=float(rate) if rate else None)
        if code not in (130, 143):  # interrupted: nothing opens
            show(wanted, run.kept, len(run.saved))
        return code
    finally:
        batch.close()


def check_numbers(
    concurrency: int, retries: int, timeout: float | None, rpm: float | None, max_cost: float | None
) -> None:
    from ..checks import RANGES, number_problem, quoted

    given = {"-j": ("concurrency", concurrency), "--retries": ("retries", retries), "--timeout": ("timeout", timeout),
             "--rpm": ("rpm", rpm), "--max-cost": ("max_cost", max_cost)}  # fmt: skip
    for flag, (key, value) in given.items():
        problem = None if value is None else number_problem(value, RANGES[key])
        if problem:
            raise UsageError(f"{flag} {quoted(value)} {problem}")
