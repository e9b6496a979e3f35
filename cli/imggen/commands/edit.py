"""`imggen edit`: the prompt, the input images (files or - for stdin) and generate's options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import UsageError
from . import generate as shared

MAX_STDIN_IMAGE = 64 * 1024 * 1024  # an image piped in: read whole, so bounded


def edit(
    prompt: str | None = typer.Argument(
        None,
        metavar="PROMPT",
        show_default=False,
        help="What to change; - reads prompts from stdin, one a line, each applied to the images.",
    ),
    images: list[str] | None = typer.Argument(
        None,
        metavar="IMAGE...",
        show_default=False,
        help="Input images (PNG, JPEG, WebP), or - for one image on stdin; the first is the one a mask applies to.",
    ),
    mask: str | None = typer.Option(
        None, "--mask", metavar="FILE", help="PNG the size of the first image; transparent where to change."
    ),
    mask_prompt: str | None = typer.Option(
        None, "--mask-prompt", metavar="TEXT", help="What to change, named in words (models that take it)."
    ),
    input_fidelity: str | None = typer.Option(
        None, "--input-fidelity", metavar="low|high", help="How closely to keep the inputs' details."
    ),
    model: str | None = shared.MODEL,
    number: int = shared.NUMBER,
    size: str | None = shared.SIZE,
    aspect_ratio: str | None = shared.ASPECT_RATIO,
    quality: str | None = shared.QUALITY,
    response_format: str | None = shared.RESPONSE_FORMAT,
    user: str | None = shared.USER,
    seed: int | None = shared.SEED,
    negative_prompt: str | None = shared.NEGATIVE_PROMPT,
    param: list[str] = shared.PARAM,
    output: str | None = shared.OUTPUT,
    name: str | None = shared.NAME,
    concurrency: int = shared.CONCURRENCY,
    retries: int = shared.RETRIES,
    timeout: float | None = shared.TIMEOUT,
    profile: str | None = shared.PROFILE,
    api_base: str | None = shared.API_BASE,
    api_version: str | None = shared.API_VERSION,
    metadata: bool = shared.METADATA,
    dry_run: bool = shared.DRY_RUN,
    json_lines: bool = shared.JSON_LINES,
    quiet: bool = shared.QUIET,
    verbose: bool = shared.VERBOSE,
    overwrite: bool = shared.OVERWRITE,
    prompts_file: Path | None = shared.PROMPTS_FILE,
    rpm: float | None = shared.RPM,
    resume: bool = shared.RESUME,
    max_cost: float | None = shared.MAX_COST,
    allow_retired: bool = shared.ALLOW_RETIRED,
    no_log: bool = shared.NO_LOG,
    open_images: bool | None = shared.OPEN,
    preview: bool | None = shared.PREVIEW,
) -> None:
    """Edit images with a prompt (with a mask or a text mask where the model takes one) and save the results.
    With --prompts-file, IMAGE arguments are the images of lines that name none of their own."""
    from ..plan import Options
    from .jobs import _source

    given = ([prompt] if prompts_file is not None and prompt is not None else []) + list(images or [])
    if prompts_file is None:
        if prompt is None:
            raise UsageError("no prompt given", hint='e.g. imggen edit "add a red hat" otter.png')
        given = list(images or [])
    if prompts_file is None and not given:
        raise UsageError("no image to edit", hint='e.g. imggen edit "add a red hat" otter.png')
    stdin_prompts = prompts_file is None and prompt == "-"
    options = Options(
        n=number, size=size, aspect_ratio=aspect_ratio, quality=quality, response_format=response_format, user=user,
        seed=seed, negative_prompt=negative_prompt, params=shared.parse_params(param), allow_retired=allow_retired,
        mask_prompt=mask_prompt, input_fidelity=input_fidelity, **_inputs(given, mask, stdin_prompts),
    )  # fmt: skip
    shared.check_numbers(concurrency, retries, timeout, rpm, max_cost)
    flags = {"api_base": api_base, "api_version": api_version, "timeout": timeout, "output_dir": output, "rpm": rpm}
    from ..jobs import Batch

    source = _source(None if prompts_file is not None else prompt, prompts_file)
    batch = Batch(source, prompt, model=model, profile=profile, options=options, flags=flags, name=name)
    batch.task = "edit"
    code = shared.run_batch(
        batch, dry_run=dry_run, json_lines=json_lines, quiet=quiet, verbose=verbose, overwrite=overwrite,
        metadata=metadata, resume=resume, max_cost=max_cost, retries=retries, concurrency=concurrency,
        log_as=None if no_log else "edit",
        seeing=(open_images, preview),
    )  # fmt: skip
    raise typer.Exit(code)


def _inputs(paths: list[str], mask: str | None, stdin_prompts: bool) -> dict[str, Any]:
    """The images and mask, read and recognised before anything else; `-` is one image on stdin."""
    from ..inputs import load

    if [*paths, mask].count("-") > 1:
        raise UsageError("stdin can hold one image: give - once")
    if stdin_prompts and "-" in [*paths, mask]:
        raise UsageError("PROMPT - reads prompts from stdin, so stdin cannot also be an image")
    loaded = tuple(_stdin_image("image") if path == "-" else load(path, path) for path in paths)
    found: dict[str, Any] = {"images": loaded}
    if mask is not None:
        found["mask"] = _stdin_image("mask") if mask == "-" else load(mask, mask)
    return found


def _stdin_image(label: str) -> Any:
    from ..inputs import load

    stdin = sys.stdin.buffer if sys.stdin is not None and not sys.stdin.closed else None
    if stdin is None or sys.stdin.isatty():
        raise UsageError(f"{label} - reads an image from stdin, but stdin is a terminal",
                         hint="Pipe an image in: imggen edit \"add a hat\" - < otter.png")  # fmt: skip
    data = stdin.read(MAX_STDIN_IMAGE + 1)
    if len(data) > MAX_STDIN_IMAGE:
        raise UsageError(f"the image on stdin is larger than {MAX_STDIN_IMAGE // 2**20} MiB; give it as a file")
    if not data:
        raise UsageError("stdin is empty: no image to edit")
    return load(data, "stdin")
