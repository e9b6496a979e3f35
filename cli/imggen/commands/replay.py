"""`imggen generate --from ID` and `imggen logs replay ID`: ask again what a log entry asked.

The entry gives the prompt, model, profile and every option as it was asked; each flag given on the
command line wins. A flag is "given" when Click says its value came from the command line (or an
environment variable), not from its default: `ctx.get_parameter_source`, so `-n 1` typed is kept
even though 1 is the default. The seed is the image's own (an entry is one image: image k of an
`-n 4` run had seed S+k-1), and one image is asked for unless -n says more, so an image can be
reproduced where the model honours seeds. An edit is replayed as an edit of the same input files."""

from __future__ import annotations

import inspect
import json
import os
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer._click.core import ParameterSource  # typer bundles its own click

from ..errors import UsageError

if TYPE_CHECKING:
    from ..logdb import Entry

NOT_REPLAYED = {"from_entry", "prompts_file"}


def find_entry(entry_id: int) -> Entry:
    from ..logdb import LogDB, default_path

    if not default_path().exists():
        raise UsageError(f"no log entry {entry_id}: the log {default_path()} does not exist yet")
    with LogDB() as log:
        entry = log.get(entry_id)
    if entry is None:
        raise UsageError(f"no log entry {entry_id}", hint="imggen logs lists them, newest first.")
    return entry


def replay(ctx: typer.Context, entry_id: int) -> NoReturn:
    """Run `generate` (or `edit`, for an edit's entry) with the entry's request and the flags given."""
    if ctx.params.get("prompts_file") is not None:
        raise UsageError("--from asks again for one log entry; it cannot be used with --prompts-file")
    entry = find_entry(entry_id)
    given = {name for name in ctx.params if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)}
    values = {**ctx.params, **{k: v for k, v in entry_values(entry).items() if k not in given}, "from_entry": None}
    from .edit import edit
    from .generate import generate

    if entry.task != "edit":
        generate(ctx, **values)
    accepted = inspect.signature(edit).parameters
    extra = sorted(name for name in given - NOT_REPLAYED if name not in accepted)
    if extra:
        raise UsageError(f"log entry {entry_id} is an edit, and edit has no --{extra[0].replace('_', '-')}")
    edit(**{name: values.get(name, _default(parameter)) for name, parameter in accepted.items()})
    raise typer.Exit(0)  # not reached: edit always exits


def entry_values(entry: Entry) -> dict[str, Any]:
    """The entry's request as the parameters of `generate` and `edit`."""
    from ..plan import TEXT_OPTIONS  # the options' names are the flags' parameter names, in both commands

    options = entry.options
    values: dict[str, Any] = {"prompt": entry.prompt, "model": entry.model, "profile": entry.profile,
                              "seed": entry.seed if entry.seed is not None else options.get("seed")}  # fmt: skip
    values.update({key: options[key] for key in TEXT_OPTIONS if key in options})
    values["param"] = [f"{key}={json.dumps(value)}" for key, value in options.get("params", {}).items()]
    if entry.task == "edit":
        values["images"] = [_input(path, entry.id) for path in options.get("images", [])]
        if "mask" in options:
            values["mask"] = _input(options["mask"], entry.id, "mask")
    return values


def _input(path: str | None, entry_id: int, what: str = "input image") -> str:
    """An edit's input, still where it was: replaying a different image would not be the same edit."""
    if path is None:
        raise UsageError(f"log entry {entry_id} edited an {what} read from stdin, which imggen cannot read again",
                         hint="Give the image: imggen edit PROMPT IMAGE (logs show ID has the prompt).")  # fmt: skip
    if not os.path.isfile(path):
        raise UsageError(f"the {what} of log entry {entry_id} is gone: {path}",
                         hint="Put it back, or edit another image with imggen edit.")  # fmt: skip
    return path


def _default(parameter: inspect.Parameter) -> Any:
    """A parameter's default as Typer declares it (an OptionInfo or ArgumentInfo holds the value)."""
    default = parameter.default
    return getattr(default, "default", default)
