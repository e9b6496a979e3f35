"""`imggen generate`: parse options, call the API, write files, report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError

if TYPE_CHECKING:
    from ..plan import Options, Plan

HELP_OUTPUT = "Directory for the images (created if missing; default .), or - for stdout."


def parse_params(items: list[str]) -> dict[str, Any]:
    """`-p KEY=VALUE`: VALUE is JSON when it parses as JSON, else a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p '{item}' is not KEY=VALUE", hint="e.g. -p background=transparent.")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def generate(
    prompt: str | None = typer.Argument(None, help="The prompt.", show_default=False),
    model: str | None = typer.Option(
        None, "-m", "--model", help="provider/model (default: the profile's, else openai/gpt-image-2)."
    ),
    number: int = typer.Option(1, "-n", "--number", help="Images per prompt, 1-10."),
    size: str | None = typer.Option(None, "-s", "--size", help="WxH, e.g. 1024x1024."),
    aspect_ratio: str | None = typer.Option(None, "--aspect-ratio", help="W:H, e.g. 16:9."),
    quality: str | None = typer.Option(None, "-q", "--quality", help="Quality, as the model names it."),
    style: str | None = typer.Option(None, "--style", help="Style (dall-e-3: vivid, natural)."),
    response_format: str | None = typer.Option(None, "--response-format", help="url or b64_json."),
    user: str | None = typer.Option(None, "--user", help="End-user id passed to the provider."),
    seed: int | None = typer.Option(None, "--seed", help="Seed, where the model takes one."),
    negative_prompt: str | None = typer.Option(None, "--negative-prompt", help="What to leave out."),
    param: list[str] = typer.Option([], "-p", "--param", help="Provider parameter KEY=VALUE (repeatable)."),
    output: str | None = typer.Option(None, "-o", "--output", help=HELP_OUTPUT),
    name: str | None = typer.Option(
        None, "--name", help="File name template (default: {date}-{prompt}-{index}.{ext})."
    ),
    concurrency: int = typer.Option(4, "-j", "--concurrency", help="Requests in flight at once."),
    retries: int = typer.Option(2, "--retries", help="Retries of a failed request."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request (default: 600)."),
    profile: str | None = typer.Option(None, "--profile", help="Credentials profile."),
    api_base: str | None = typer.Option(None, "--api-base", help="Endpoint root."),
    api_version: str | None = typer.Option(None, "--api-version", help="API version (Azure)."),
    metadata: bool = typer.Option(False, "--metadata", help="Write <stem>.json beside each image."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the requests instead of sending them."),
    json_lines: bool = typer.Option(False, "--json", help="JSON Lines on stdout instead of paths."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress, summary or notes on stderr."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
) -> None:
    """Generate images from a prompt and save them."""
    from ..plan import Options

    text = _prompt(prompt)
    options = Options(
        n=number, size=size, aspect_ratio=aspect_ratio, quality=quality, style=style,
        response_format=response_format, user=user, seed=seed, negative_prompt=negative_prompt,
        params=parse_params(param),
    )  # fmt: skip
    _check_numbers(concurrency, retries, timeout)
    flags = {"api_base": api_base, "api_version": api_version, "timeout": timeout, "output_dir": output}
    plan = _plan(text, model, profile, options, flags)
    if dry_run:
        from .dryrun import print_plan

        print_plan(plan, json_lines=json_lines, quiet=quiet)
        return
    from .run import Run

    run = Run(plan, name=name, overwrite=overwrite, metadata=metadata, json_lines=json_lines, quiet=quiet)
    raise typer.Exit(run.start(retries=retries, concurrency=concurrency))


def _prompt(prompt: str | None) -> str:
    if prompt is None or prompt == "-":
        raise UsageError(
            "no prompt given",
            hint='Pass it as an argument: imggen generate "a sea otter" (prompts from stdin come in a later version).',
        )
    return prompt


def _check_numbers(concurrency: int, retries: int, timeout: float | None) -> None:
    if concurrency < 1:
        raise UsageError(f"-j {concurrency} must be at least 1")
    if retries < 0:
        raise UsageError(f"--retries {retries} must be 0 or more")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout {timeout:g} must be more than 0 seconds")


def _plan(text: str, model: str | None, profile: str | None, options: Options, flags: dict[str, Any]) -> Plan:
    from ..api import plan_generation

    return plan_generation(text, model, profile=profile, options=options, flags=flags)
