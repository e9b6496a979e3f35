"""How `imggen models check` shows its answer: a table at a terminal, tab-separated lines in a pipe,
JSON with --json, and the requests it would send with --dry-run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..secrets import shown_url
from ..types import SENT_LATER
from . import render

if TYPE_CHECKING:
    from ..modelcheck import CheckRow, Report
    from ..types import HttpRequest

HEADERS = ("MODEL", "CATALOG", "AVAILABLE", "PROVIDER SAYS", "DISAGREEMENT")


def cells(row: CheckRow) -> list[str]:
    return [
        row.model,
        row.catalog_said or "-",
        "yes" if row.available else "no",
        row.provider_lifecycle or "-",
        " / ".join(row.disagreements) or "-",
    ]


def print_report(report: Report, *, json_out: bool) -> None:
    for error in report.failures.values():
        render.print_error(error)
    if json_out:
        render.print_json([row.as_json() for row in report.rows])
    elif sys.stdout.isatty():
        render.print_table([list(HEADERS)] + [cells(row) for row in report.rows])
    else:
        sys.stdout.writelines("\t".join([row.model, row.provider, *cells(row)[1:]]) + "\n" for row in report.rows)
    _summary(report)


def _summary(report: Report) -> None:
    disagreeing = sum(1 for row in report.rows if row.disagreements)
    checked = len(report.rows)
    if report.failures:
        from ..modelcheck import LABELS

        failed = ", ".join(LABELS[p] for p in report.failures)
        render.note(f"not checked: {failed}; {checked} models compared")
    elif disagreeing:
        render.note(f"{disagreeing} of {checked} models disagree with the catalog")
    else:
        render.note(f"all {checked} models agree with the catalog")


def print_requests(requests: dict[str, list[HttpRequest]], *, json_out: bool) -> None:
    """--dry-run: each request, secrets masked, as generate's --dry-run shows them."""
    if json_out:
        shown = [
            {"provider": p, "method": r.method, "url": shown_url(r.url), "headers": r.shown_headers()}
            for p, batch in requests.items()
            for r in batch
        ]
        render.print_json(shown)
        return
    from ..modelcheck import CHECKS

    out = sys.stdout
    for provider, batch in requests.items():
        what = CHECKS[provider].what
        count = f"{len(batch)} request" + ("s" if len(batch) != 1 else "")
        out.write(f"# {provider}: {what}, {count}\n")
        for request in batch:
            out.write(f"{request.method} {shown_url(request.url)}\n")
            out.writelines(f"{k}: {v}\n" for k, v in request.shown_headers().items())
            if not any(k.lower() in request.secret_headers for k in request.headers):
                out.write("# no credentials found (imggen config explain shows where they are looked for)\n")
        if any(v.endswith(SENT_LATER) for r in batch for v in r.headers.values()):
            out.write("# the signature or token is added when sent\n")
        out.write("\n")
