"""`imggen models` and `imggen models show`: the catalog as a table or JSON."""

from __future__ import annotations

import sys
from typing import Any

import typer

from ..catalog import PROVIDERS, ModelInfo, all_models, parse_model, price_range
from ..errors import UsageError
from ..settings import credentials_configured, load_config
from . import render

models_app = typer.Typer(help="List the models imggen knows.", no_args_is_help=False)


def _price(info: ModelInfo) -> str:
    span = price_range(info)
    if span is None:
        return "unknown"
    low, high = span
    if high == 0:
        return "free"
    return f"${low:.3f}" if low == high else f"${low:.3f}-{high:.3f}"


def _status(info: ModelInfo) -> str:
    status, life = info.status(), info.lifecycle
    date = (
        life.get("retired") if status in ("retired", "deprecated") and life.get("retired") else life.get("deprecated")
    )
    return f"{status} {date}" if date and status != "active" else status


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
        "regions": list(info.regions), "notes": info.notes,
    }  # fmt: skip


@models_app.callback(invoke_without_command=True)
def list_models(
    ctx: typer.Context,
    provider: str | None = typer.Option(None, "--provider", help="Only this provider's models."),
    show_all: bool = typer.Option(False, "--all", help="Include retired models."),
    json_out: bool = typer.Option(False, "--json", help="A JSON array instead of a table."),
) -> None:
    """List the catalog: sizes, n per request, qualities, price per image, status, credentials."""
    if ctx.invoked_subcommand is not None:
        return
    if provider is not None and provider not in PROVIDERS:
        raise UsageError(f"unknown provider '{provider}'", hint="Use one of: " + ", ".join(PROVIDERS) + ".")
    config = load_config()
    configured = {p: credentials_configured(p, config) for p in PROVIDERS}
    models = [
        m for m in all_models()
        if (provider is None or m.provider == provider) and (show_all or m.status() != "retired")
    ]  # fmt: skip
    if json_out:
        render.print_json([model_json(m, configured[m.provider]) for m in models])
        return
    _table(models, configured)


def _table(models: list[ModelInfo], configured: dict[str, bool]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("model", "provider", "sizes", "max n", "qualities", "price/image", "status", "configured"):
        table.add_column(column, overflow="fold")
    for m in models:
        row = (m.id, m.provider, _sizes(m), str(m.max_n), ", ".join(m.qualities) or "-", _price(m), _status(m),
               "yes" if configured[m.provider] else "no")  # fmt: skip
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@models_app.command("show")
def show(
    model: str = typer.Argument(..., help="A model, e.g. openai/gpt-image-2."),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Everything the catalog knows about one model."""
    ref = parse_model(model)
    if ref.info is None:
        raise UsageError(
            f"{ref.name} is not in the catalog",
            hint="imggen still sends unknown ids as they are; `imggen models --all` lists the known ones.",
        )
    data = model_json(ref.info, credentials_configured(ref.provider, load_config()))
    if json_out:
        render.print_json(data)
        return
    for key, value in data.items():
        if value not in (None, [], {}, ""):
            sys.stdout.write(f"{key + ':':<18} {_plain(value)}\n")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return str(value)
