"""`imggen logs`: the images generate, edit and batch collect saved, newest first, from the log
(logdb.py). At a terminal a table; in a pipe or with --json, JSON Lines (one object per entry, as
`generate --json` prints), so `imggen logs | jq` works."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer._click.core import ParameterSource  # typer bundles its own click

from ..errors import UsageError
from . import render
from .helptext import epilog

if TYPE_CHECKING:
    from ..logdb import Entry, Query

logs_app = typer.Typer(
    no_args_is_help=False, rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]}
)

NUMBER = typer.Option(20, "-n", "--number", metavar="N", help="How many entries, newest first (0: all).")
SEARCH = typer.Option(None, "-q", "--query", metavar="TEXT", help="Only prompts with every word of TEXT.")
MODEL = typer.Option(None, "-m", "--model", metavar="MODEL", help="Only this model (provider/id, or the id).")
HELP_DATE = "YYYY-MM-DD, YYYY-MM-DDTHH:MM, today, yesterday, or an age: 30m, 12h, 7d, 2w"
SINCE = typer.Option(None, "--since", metavar="DATE", help=f"From this time on ({HELP_DATE}).")
UNTIL = typer.Option(None, "--until", metavar="DATE", help="Before this time; a date counts whole.")
JSON_LINES = typer.Option(False, "--json", help="JSON Lines on stdout (also what a pipe gets).")
HTML = typer.Option(False, "--html", help="Write a gallery page of the entries to -o FILE (all of them unless -n).")
PAGE = typer.Option(None, "-o", "--output", metavar="FILE", help="The page --html writes (thumbnails beside it).")
AGE = re.compile(r"(\d+)\s*([mhdw])")
AGE_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PROMPT_WIDTH = 50


@logs_app.callback(invoke_without_command=True, epilog=epilog("logs"))
def logs(
    ctx: typer.Context,
    number: int = NUMBER,
    query: str | None = SEARCH,
    model: str | None = MODEL,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    json_out: bool = JSON_LINES,
    html: bool = HTML,
    page: Path | None = PAGE,
) -> None:
    """List the images generate, edit and batch collect saved (the log), newest first. At a terminal a
    table (a file no longer there shows as missing); in a pipe or with --json, one JSON object a line;
    with --html -o FILE, a gallery page (as `imggen gallery` writes) of the entries."""
    if ctx.invoked_subcommand is not None:
        return
    if number < 0:
        raise UsageError(f"-n {number} must be 0 (all) or more")
    paging = html or page is not None
    if paging and ctx.get_parameter_source("number") is ParameterSource.DEFAULT:
        number = 0  # a page is made for thousands of images (lazy thumbnails): all, unless -n says
    asked = _query(query, model, since, until, number or None)
    if paging:
        _page(page if html else None, asked, query)
        return
    entries = _with_log(lambda log: log.find(asked), log_search=query)
    if json_out or not sys.stdout.isatty():
        for entry in entries:
            render.print_json(entry.as_json())
        return
    if not entries:
        render.note(_none(asked))
        return
    rows = [["ID", "DATE", "MODEL", "SEED", "SIZE", "COST", "PROMPT", "FILE"]]
    rows += [_row(entry) for entry in entries]
    render.print_table(rows)


@logs_app.command("path")
def path() -> None:
    """Print where the log is (IMGGEN_LOG_DB moves it)."""
    from ..logdb import default_path

    sys.stdout.write(f"{default_path()}\n")


@logs_app.command("show")
def show(
    entry_id: int = typer.Argument(..., metavar="ID"),
    json_out: bool = JSON_LINES,
) -> None:
    """Everything the log has of one entry: the request, what came back, the file, its run's exit status."""
    from .replay import find_entry

    data = find_entry(entry_id).as_json()
    if json_out or not sys.stdout.isatty():
        render.print_json(data)
        return
    for key, value in data.items():
        if value in (None, {}, []):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if key == "path" and data["missing"]:
            shown += "  (missing)"
        sys.stdout.write(f"{key + ':':<16}{shown}\n")


@logs_app.command("cost")
def cost(
    by: str = typer.Option("day", "--by", metavar="day|model|provider", help="Totals per day, model or provider."),
    model: str | None = MODEL,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    json_out: bool = JSON_LINES,
) -> None:
    """What the saved images cost (imggen's estimates, as generate's summary shows them), per day
    (local time), model or provider."""
    if by not in ("day", "model", "provider"):
        raise UsageError(f"--by {by} is not one of: day, model, provider")
    totals = _with_log(lambda log: log.totals(_query(None, model, since, until, None), by))
    if json_out or not sys.stdout.isatty():
        for total in totals:
            render.print_json(total)
        return
    rows = [[by.upper(), "IMAGES", "COST"]]
    rows += [[str(t[by]), str(t["images"]), _cost(t)] for t in totals]
    rows.append(["total", str(sum(t["images"] for t in totals)), _cost(_sum(totals))])
    render.print_table(rows)


@logs_app.command("replay", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def replay_cmd(ctx: typer.Context, entry_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Run log entry ID's request again (generate --from ID): any generate flag after ID wins."""
    from typer.main import get_command

    from . import app

    command = get_command(app)
    code = command.main(["generate", "--from", str(entry_id), *ctx.args], prog_name="imggen", standalone_mode=False)
    raise typer.Exit(code if isinstance(code, int) else 0)


def _page(page: Path | None, query: Query, search: str | None) -> None:
    """`imggen logs --html -o FILE`: the entries' gallery page, its thumbnails in .imggen-thumbs/ beside it."""
    if page is None:
        raise UsageError("--html and -o go together", hint="imggen logs --html -q otter -o otters.html")
    from .gallery import check_page, publish

    check_page(page)
    entries = _with_log(lambda log: log.find(query), log_search=search)
    if not entries:
        render.note(_none(query) + ": the page is empty")
    from ..gallery import log_items

    title = "imggen log" + (f": {search}" if search else "")
    publish(log_items(entries), page, title, quiet=False, open_page=False)


def _none(query: Query) -> str:
    """What to say when no entry is found: none match the filters, or there are none yet."""
    filtered = query.text or query.model or query.since is not None or query.until is not None
    return "no entries" + (" match" if filtered else " yet")


def _with_log(read: Any, log_search: str | None = None) -> Any:
    """`read(log)` on the log, or nothing when there is no log yet (no file is made by reading)."""
    from ..logdb import LogDB, default_path

    if not default_path().exists():
        return []
    with LogDB() as log:
        if log_search and not log.search:
            render.warn("this Python's SQLite has no FTS5: -q matches the text as typed (LIKE), not words")
        return read(log)


def _query(text: str | None, model: str | None, since: str | None, until: str | None, limit: int | None) -> Query:
    from ..logdb import Query

    return Query(text=text, model=model, since=_time(since, "--since", end=False) if since else None,
                 until=_time(until, "--until", end=True) if until else None, limit=limit)  # fmt: skip


def _time(text: str, flag: str, *, end: bool) -> float:
    """Epoch seconds of DATE as the user's clock reads it. A whole day (a date, today, yesterday) is its
    start for --since and its end for --until, so `--since 2026-11-01 --until 2026-11-30` holds both days."""
    now = dt.datetime.now().astimezone()
    word = text.strip().lower()
    age = AGE.fullmatch(word)
    if age:
        return now.timestamp() - int(age.group(1)) * AGE_SECONDS[age.group(2)]
    days = {"today": 0, "yesterday": 1}
    if word in days:
        day = now.date() - dt.timedelta(days=days[word])
        return _day_edge(day, end)
    try:
        if len(word) == 10:
            return _day_edge(dt.date.fromisoformat(word), end)
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a date", hint=f"Use {HELP_DATE}.") from None
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


def _day_edge(day: dt.date, end: bool) -> float:
    start = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time()).astimezone()
    return start.timestamp()


def _row(entry: Entry) -> list[str]:
    from ..logdb import iso

    prompt = entry.prompt.replace("\n", " ")
    if len(prompt) > PROMPT_WIDTH:
        prompt = prompt[: PROMPT_WIDTH - 1] + "…"
    where = ("missing: " if entry.missing else "") + entry.path
    seed = "" if entry.seed is None else str(entry.seed)
    return [str(entry.id), iso(entry.created)[:16].replace("T", " "), entry.model, seed, entry.size or "",
            "" if entry.cost_usd is None else f"${entry.cost_usd:.4f}", prompt, where]  # fmt: skip


def _cost(total: dict[str, Any]) -> str:
    shown = f"${total['cost_usd']:.4f}"
    return shown + (f" (+{total['unpriced']} unpriced)" if total["unpriced"] else "")


def _sum(totals: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cost_usd": sum(t["cost_usd"] for t in totals), "unpriced": sum(t["unpriced"] for t in totals)}
