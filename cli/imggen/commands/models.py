"""`imggen models` and `imggen models show`: the catalog as a table or JSON."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import typer

from ..catalog import (
    PROVIDERS,
    ModelInfo,
    all_models,
    nearest_ids,
    parse_model,
    price_range,
    stale_warning,
)
from ..errors import UsageError
from ..providers.spec import TASKS
from ..settings import credentials_configured, load_config
from . import render
from .complete import complete_model, complete_provider
from .helptext import epilog

models_app = typer.Typer(no_args_is_help=False, epilog=epilog("models"))


def _price(info: ModelInfo) -> str:
    span = price_range(info)
    if span is None:
        return "unknown"
    low, high = span
    if high == 0:
        return "free"
    return f"${low:.3f}" if low == high else f"${low:.3f}-{high:.3f}"


def _sizes(info: ModelInfo) -> str:
    values = list(info.aspect_ratios or info.sizes)
    if info.size_rule:
        values.append("custom")
    return ", ".join(values[:4]) + (f" (+{len(values) - 4})" if len(values) > 4 else "")


def model_json(info: ModelInfo, configured: bool) -> dict[str, Any]:
    return {
        "id": info.id, "provider": info.provider, "family": info.family, "status": info.status(),
        "configured": configured, "sizes": list(info.sizes), "aspect_ratios": list(info.aspect_ratios),
        "size_rule": info.size_rule, "image_sizes": list(info.image_sizes), "default_size": info.default_size,
        "max_n": info.max_n, "qualities": list(info.qualities), "styles": list(info.styles),
        "response_formats": list(info.response_formats), "fields": list(info.fields),
        "prompt_max": info.prompt_max, "price": info.price, "lifecycle": info.lifecycle,
        "regions": list(info.regions), "location": info.location, "notes": info.notes, "sources": info.sources,
        "tasks": list(info.tasks), "edit": info.edit, "batch": info.batch, **_overlay_json(info),
    }  # fmt: skip


def _overlay_json(info: ModelInfo) -> dict[str, Any]:
    """Which facts the user's overlay gave (`"overlay": ["price"]`), whether it added the model, and its file."""
    from ..overlay import origin

    found = origin(info.id)
    if found is None:
        return {"overlay": [], "overlay_added": False, "overlay_like": None, "overlay_file": None}
    return {"overlay": list(found.keys), "overlay_added": found.added, "overlay_like": found.like,
            "overlay_file": str(found.path)}  # fmt: skip


def _overlay_line(data: dict[str, Any]) -> str:
    """`price, lifecycle (from …/models.json)`, or for a model the overlay added, `added, like X; price (…)`."""
    keys = ", ".join(key for key in data["overlay"] if key != "like")
    like = f", like {data['overlay_like']}" if data["overlay_like"] else ""
    said = (f"added{like}" + (f"; {keys}" if keys else "")) if data["overlay_added"] else keys
    return f"{said} (from {data['overlay_file']})"


@models_app.callback(invoke_without_command=True)
def list_models(
    ctx: typer.Context,
    provider: str | None = typer.Option(
        None, "--provider", metavar="NAME", help="Only this provider's models.", autocompletion=complete_provider
    ),
    task: str | None = typer.Option(
        None, "--task", metavar="TASK", help="Only models that do this: generate or edit (imggen edit)."
    ),
    batch: bool = typer.Option(
        False, "--batch", help="Only models a provider batch service takes (imggen batch: half price, within 24 h)."
    ),
    show_all: bool = typer.Option(False, "--all", help="Include retired models."),
    wide: bool = typer.Option(False, "--wide", help="Every column, however wide the lines get."),
    json_out: bool = typer.Option(False, "--json", help="A JSON array instead of a table."),
) -> None:
    """List the catalog: one model a line with its status, price per image and whether credentials
    are configured. At a terminal the lines fit its width (a narrow one shows CONFIGURED as KEY, then
    drops columns; the id is never cut); in a pipe, tab-separated columns without a header: id,
    provider, status, price, configured, sizes, max n, qualities, tasks.
    """
    if ctx.invoked_subcommand is not None:
        return
    if provider is not None and provider not in PROVIDERS:
        raise UsageError(f"unknown provider '{provider}'", hint="Use one of: " + ", ".join(PROVIDERS) + ".")
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task '{task}'", hint="Use one of: " + ", ".join(TASKS) + ".")
    _say_if_stale()
    config = load_config()
    configured = {p: credentials_configured(p, config) for p in PROVIDERS}
    models = [
        m for m in all_models()
        if (provider is None or m.provider == provider) and (show_all or m.status() != "retired")
        and (task is None or task in m.tasks) and (not batch or m.batch)
    ]  # fmt: skip
    if json_out:
        render.print_json([model_json(m, configured[m.provider]) for m in models])
        return
    rows = [_row(m, configured[m.provider]) for m in models]
    if not sys.stdout.isatty():
        sys.stdout.writelines("\t".join(row.values()) + "\n" for row in rows)
    elif wide:
        _print_table(rows, list(WIDE_COLUMNS), cap=False)
    else:
        _print_table(rows, _fitting(rows, shutil.get_terminal_size().columns))
    _overlay_note(models)


def _overlay_note(models: list[ModelInfo]) -> None:
    """One line on stderr naming what the user's overlay added and changed among the models listed."""
    from ..overlay import origin

    found = [(m.id, origin(m.id)) for m in models]
    added = [name for name, o in found if o is not None and o.added]
    changed = [name for name, o in found if o is not None and not o.added]
    path = next((o.path for _, o in found if o is not None), None)
    if path is not None:
        parts = [f"added {', '.join(added)}" if added else "", f"changed {', '.join(changed)}" if changed else ""]
        render.note(f"from your overlay {path}: " + "; ".join(p for p in parts if p))


WIDE_COLUMNS = {"model": "MODEL", "provider": "PROVIDER", "status": "STATUS", "price": "PRICE/IMAGE",
                "configured": "CONFIGURED", "sizes": "SIZES", "max_n": "MAX N", "qualities": "QUALITIES",
                "tasks": "TASKS"}  # fmt: skip
# The narrow layouts, tried in turn until one fits: the id is never cut, the other columns go first.
LAYOUTS = (["model", "status", "price", "configured"], ["model", "status", "price", "key"],
           ["model", "status", "price"], ["model", "status"], ["model"])  # fmt: skip
HEADERS = {**WIDE_COLUMNS, "key": "KEY"}
GAP = "  "
ID_WIDTH = 40  # the model column at a terminal (Bedrock's image-service ids are up to 56 characters)


def _row(m: ModelInfo, configured: bool) -> dict[str, str]:
    yes = "yes" if configured else "no"
    return {"model": m.id, "provider": m.provider, "status": m.status_words(), "price": _price(m), "configured": yes,
            "sizes": _sizes(m), "max_n": str(m.max_n), "qualities": ", ".join(m.qualities) or "-",
            "tasks": ", ".join(m.tasks)}  # fmt: skip


def _widths(rows: list[dict[str, str]], columns: list[str], cap: bool = True) -> list[int]:
    widths = [max([len(HEADERS[c])] + [len(r.get(c, r["configured"])) for r in rows]) for c in columns]
    if cap and len(columns) > 1:  # a longer id gets a line of its own (_print_table), never cut
        widths[0] = min(widths[0], ID_WIDTH)
    return widths


def _fitting(rows: list[dict[str, str]], width: int) -> list[str]:
    for layout in LAYOUTS:
        if sum(_widths(rows, layout)) + len(GAP) * (len(layout) - 1) <= width:
            return layout
    return LAYOUTS[-1]


def _print_table(rows: list[dict[str, str]], columns: list[str], cap: bool = True) -> None:
    """The table; at a terminal an id longer than ID_WIDTH is printed whole on a line of its own, its
    other columns on the next, so the usual ids keep their price and key columns at 80 columns."""
    lines = [[HEADERS[c] for c in columns]] + [[r.get(c, r["configured"]) for c in columns] for r in rows]
    widths = _widths(rows, columns, cap)
    for line in lines:
        if len(line[0]) > widths[0]:
            sys.stdout.write(line[0] + "\n")
            line = ["", *line[1:]]
        sys.stdout.write(GAP.join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n")


@models_app.command("default", epilog=epilog("models default"))
def default(
    model: str | None = typer.Argument(
        None, metavar="[MODEL]", help="Make this the default, e.g. gpt-image-2.", autocompletion=complete_model
    ),
) -> None:
    """Show the model `imggen generate` uses without -m, or set it (default_model in config.toml).

    -m, IMGGEN_MODEL and a --profile's own model still win over it.
    """
    from ..settings import default_model, save_config

    config = load_config()
    for text in config.warnings:
        render.warn(text)
    if model is None:
        ref, source = default_model(config)
        sys.stdout.write(ref.name + "\n")
        render.note(f"from {source}" if source != "default" else "imggen's built-in default")
        return
    ref = parse_model(model)
    if ref.info is not None and ref.info.status() == "retired":
        raise UsageError(f"{ref.name} is retired", hint=f"Pick another: {ref.info.lifecycle.get('replacement')}.")
    config.default_model = ref.name
    save_config(config)
    render.note(f"default model: {ref.name} (in {config.path})")
    if os.environ.get("IMGGEN_MODEL"):
        render.warn(f"IMGGEN_MODEL={os.environ['IMGGEN_MODEL']} is set and wins over it in this shell")


@models_app.command("add", epilog=epilog("models add"))
def add(
    model: str = typer.Argument(..., metavar="ID", help="The model, e.g. openai/gpt-image-2-2026-12-01."),
    like: str | None = typer.Option(
        None,
        "--like",
        metavar="MODEL",
        help="Take this catalog model's rules and price.",
        autocompletion=complete_model,
    ),
    price: float | None = typer.Option(None, "--price", metavar="USD", help="A flat price per image."),
    deprecated: str | None = typer.Option(None, "--deprecated", metavar="DATE", help="Deprecated from (YYYY-MM-DD)."),
    retired: str | None = typer.Option(None, "--retired", metavar="DATE", help="Shut down from (YYYY-MM-DD)."),
    replacement: str | None = typer.Option(None, "--replacement", metavar="MODEL", help="What to use instead."),
    location: str | None = typer.Option(None, "--location", metavar="LOC", help="Default Vertex AI location."),
) -> None:
    """Add a model to your overlay (models.json in the config directory), or change the facts of one:
    a new id needs --like; a catalog id takes the facts given over the catalog's."""
    from .. import overlay_edit as overlay
    from ..catalog import reload

    if price is not None and price < 0:
        raise UsageError(f"--price {price:g} is below 0", hint="Give the price of one image in USD, e.g. --price 0.04.")
    dates = {"deprecated": deprecated, "retired": retired, "replacement": replacement}
    fields = {"id": model, "like": like, "price": None if price is None else {"per_image": price},
              "lifecycle": {k: v for k, v in dates.items() if v is not None} or None, "location": location}  # fmt: skip
    given = {key: value for key, value in fields.items() if value is not None}
    if len(given) == 1:
        raise UsageError(
            "nothing to add", hint="Give --like, --price, --deprecated, --retired, --replacement or --location."
        )
    full_id, path = overlay.add(given)
    reload()
    render.note(f"wrote the entry for {full_id} in {path}; `imggen models show {full_id}` shows it")


@models_app.command("remove", epilog=epilog("models remove"))
def remove(
    model: str = typer.Argument(..., metavar="ID", help="A model your overlay adds or changes."),
) -> None:
    """Take a model's entry out of your overlay: an added model goes, a catalog model gets its own facts back."""
    from .. import overlay_edit as overlay

    full_id, path = overlay.remove(model)
    render.note(f"removed {full_id} from {path}")


@models_app.command("check", epilog=epilog("models check"))
def check(
    provider: str | None = typer.Option(
        None, "--provider", metavar="NAME", help="Only this provider.", autocompletion=complete_provider
    ),
    json_out: bool = typer.Option(False, "--json", help="A JSON array instead of a table."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the requests it would send; send nothing."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show each request and its answer on stderr."),
) -> None:
    """Ask each configured provider which image models this account can use (nothing is generated or
    paid for) and compare with the catalog: per model, in the catalog or not, available or not, the
    provider's lifecycle, and every disagreement. Exit 0 when all agree, 1 on a disagreement or a
    failed check, 3 when credentials are missing or rejected.
    """
    import asyncio

    from .. import modelcheck
    from ..catalog import today
    from . import check as view

    providers = _check_providers(provider, dry_run)
    if dry_run:
        view.print_requests({p: modelcheck.dry_run_requests(p) for p in providers}, json_out=json_out)
        return
    if verbose:
        from ..transport import current_trace

        current_trace.set(render.trace)
    report = asyncio.run(modelcheck.check(providers, today()))
    if provider is not None and provider in report.failures:
        raise report.failures[provider]
    view.print_report(report, json_out=json_out)
    raise typer.Exit(report.exit_code)


def _check_providers(provider: str | None, dry_run: bool) -> list[str]:
    """--provider's one (exit 3 without credentials), else every provider with credentials."""
    from ..errors import ConfigError
    from ..modelcheck import CHECKABLE, KEY_HINTS, LABELS, configured_for_check

    if provider is not None and provider not in CHECKABLE:
        raise UsageError(f"cannot check provider '{provider}'", hint="Use one of: " + ", ".join(CHECKABLE) + ".")
    configured = [p for p in CHECKABLE if configured_for_check(p, load_config())]
    if provider is not None:
        if not (dry_run or provider in configured):
            raise ConfigError(f"no credentials configured for {LABELS[provider]}", hint=KEY_HINTS[provider])
        return [provider]
    if not configured and not dry_run:
        raise ConfigError("no provider has credentials configured", hint=" ".join(KEY_HINTS.values()))
    return configured or list(CHECKABLE)


@models_app.command("show", epilog=epilog("models show"))
def show(
    model: str = typer.Argument(
        ..., metavar="MODEL", help="A model, e.g. openai/gpt-image-2.", autocompletion=complete_model
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Everything the catalog knows about one model."""
    ref = parse_model(model)
    _say_if_stale()
    family = ref.info.from_family if ref.info else None
    if family is not None:
        raise UsageError(
            f"{ref.name} is not in imggen's catalog; generate gives it the rules of {family['like']} "
            f"(family {family['pattern']}), with no price or lifecycle",
            hint=f"`imggen models show {family['like']}` shows them.",
        )
    if ref.info is None:
        near = nearest_ids(ref, count=1)
        guess = f"; did you mean {near[0]}?" if near else ""
        raise UsageError(
            f"{ref.name} is not in the catalog{guess}",
            hint="imggen still sends unknown ids as they are; `imggen models --all` lists the known ones.",
        )
    data = model_json(ref.info, credentials_configured(ref.provider, load_config()))
    if json_out:
        render.print_json(data)
        return
    for key, value in data.items():
        if value in (None, [], {}, "") or key.startswith("overlay"):
            continue
        if key in NESTED:  # one fact a line: the dates and where each fact comes from are read, not parsed
            sys.stdout.write(f"{key}:\n")
            sys.stdout.writelines(f"  {inner + ':':<16} {_plain(v)}\n" for inner, v in value.items())
        else:
            sys.stdout.write(f"{key + ':':<18} {_plain(value)}\n")
    if data["overlay"]:
        sys.stdout.write(f"{'overlay:':<18} {_overlay_line(data)}\n")


NESTED = ("lifecycle", "sources", "edit")


def _say_if_stale() -> None:
    """Once per command: the catalog has not been compared with the providers for a long while."""
    text = stale_warning()
    if text:
        render.warn(text)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return str(value)
