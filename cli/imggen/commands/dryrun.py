"""`generate --dry-run`: every request that would be sent, secrets masked, and the cost estimate."""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from ..plan import Plan, with_prompt
from ..providers import get_provider
from ..secrets import shown, shown_fields, shown_url
from ..settings import PROVIDER_SETTINGS
from ..types import HttpRequest
from . import render

if TYPE_CHECKING:
    from ..jobs import Batch

STAND_IN = "imggen-dry-run-prompt-7d3f"  # placed where each line's prompt goes, then replaced by it


def print_batch(batch: Batch, *, json_lines: bool, quiet: bool, max_cost: float | None = None) -> None:
    """Every line is checked first (a bad one prints nothing), then each line's requests printed as
    the file is read again; a run the real one would refuse (a retired model, --max-cost) is refused
    after its requests are printed."""
    from ..jobs import budget_refusal

    totals = batch.check()
    writer = JsonLines() if json_lines else None
    for shape, prompt in batch.plans():
        if writer is not None:
            writer.write(shape, prompt)
        else:
            print_plan(with_prompt(shape, prompt, check=False), json_lines=False, quiet=True)
    if writer is not None:
        writer.flush()
    if not quiet:
        for text, (warning, _line) in totals.notes.items():
            if warning:
                render.warn(text)
    refusal = totals.refusal or budget_refusal(totals, max_cost)
    if refusal is not None:  # the run would have been refused: so is its dry run, after the requests
        raise refusal


class JsonLines:
    """--dry-run --json, fast: a plan's lines are built and serialised once per shape (model and
    options) with a stand-in prompt, and each prompt is put in its place, as JSON. Used only when
    that gives exactly the lines a full build gives (checked on the first prompt of each shape)."""

    def __init__(self) -> None:
        self.parts: dict[int, tuple[Plan, list[list[str]] | None]] = {}
        self.marker = json.dumps(STAND_IN)[1:-1]
        self.lines: list[str] = []

    def write(self, shape: Plan, prompt: str) -> None:
        found = self.parts.get(id(shape))
        if found is None or found[0] is not shape:  # a new shape (ids of dropped ones come back)
            if len(self.parts) >= 256:
                self.parts.clear()
            found = self.parts[id(shape)] = shape, self._split(shape)
        parts = found[1]
        if parts is None:
            self.lines += _json_lines(with_prompt(shape, prompt, check=False))
        else:
            encoded = json.dumps(prompt, ensure_ascii=False)[1:-1]
            self.lines += [encoded.join(pieces) for pieces in parts]
        if len(self.lines) >= 1000:
            self.flush()

    def flush(self) -> None:
        """Lines go out a thousand at a time: one write per line costs more than building it."""
        sys.stdout.write("".join(self.lines))
        self.lines.clear()

    def _split(self, shape: Plan) -> list[list[str]] | None:
        parts = [line.split(self.marker) for line in _json_lines(with_prompt(shape, STAND_IN, check=False))]
        encoded = json.dumps(shape.prompt, ensure_ascii=False)[1:-1]
        return parts if [encoded.join(p) for p in parts] == _json_lines(shape) else None


def _json_lines(plan: Plan) -> list[str]:
    provider = get_provider(plan.settings.model.provider)
    built = [provider.build_request(r, plan.settings, dry_run=True) for r in plan.requests]
    return [
        json.dumps(_as_json(plan, r.n, http), ensure_ascii=False) + "\n"
        for r, http in zip(plan.requests, built, strict=True)
    ]


# Once per distinct URL: a dry run of a million prompts shows the same few.
_shown_url = cache(shown_url)


def print_plan(plan: Plan, *, json_lines: bool, quiet: bool) -> None:
    provider = get_provider(plan.settings.model.provider)
    built = [provider.build_request(r, plan.settings, dry_run=True) for r in plan.requests]
    if json_lines:
        for request, http in zip(plan.requests, built, strict=True):
            render.print_json(_as_json(plan, request.n, http))
    else:
        _print_text(plan, built)
    if not quiet:
        for text in plan.warnings:
            render.warn(text)


def _as_json(plan: Plan, n: int, http: HttpRequest) -> dict[str, Any]:
    return {
        "method": http.method, "url": _shown_url(http.url), "headers": http.shown_headers(),
        "body": shown_fields(http.json),
        "model": plan.settings.model.name, "images": n, "notes": plan.notes,
        "cost_usd": None if plan.cost_usd is None else plan.cost_usd * n / plan.n,
    }  # fmt: skip


def _print_text(plan: Plan, built: list[HttpRequest]) -> None:
    out = sys.stdout
    total = len(built)
    for number, (request, http) in enumerate(zip(plan.requests, built, strict=True), 1):
        images = "image" if request.n == 1 else "images"
        out.write(f"# request {number} of {total}: {plan.settings.model.name}, {request.n} {images}\n")
        if http.method == "LOCAL":
            out.write("# drawn locally: nothing is sent\n")
        else:
            out.write(f"{http.method} {_shown_url(http.url)}\n")
            out.writelines(f"{k}: {v}\n" for k, v in http.shown_headers().items())
            if not any(k.lower() in http.secret_headers for k in http.headers):
                out.write("# no credentials found (imggen config explain shows where they are looked for)\n")
        out.write("\n" + json.dumps(shown_fields(http.json), indent=2, ensure_ascii=False) + "\n\n")
    for key in PROVIDER_SETTINGS:
        setting = plan.settings.values.get(key)
        if setting is not None and setting.value is not None:
            out.write(f"# {key}: {shown(key, setting.value)} (from {setting.source})\n")
    for text in plan.notes:
        out.write(f"# note: {text}\n")
    out.write(f"# estimated cost: {_cost(plan)}\n")


def _cost(plan: Plan) -> str:
    images = f"{plan.n} image" + ("s" if plan.n != 1 else "")
    if plan.cost_usd is None:
        return f"unknown (no price in the catalog for {plan.settings.model.name}), {images}"
    return f"${plan.cost_usd:.4f} for {images}"
