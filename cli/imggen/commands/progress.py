"""The live progress display on stderr: on a terminal, a Rich row per prompt (one overall bar for big
batches) over a status line (done/total, failures, in flight, elapsed, ETA); elsewhere only retry notes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from ..jobs import label
from ..plan import Plan
from . import render

MAX_ROWS = 12  # beyond this many prompts, one overall bar reads better than a wall of rows
BAR_WIDTH = 24  # fixed: a long label is cut, the bar never squeezed


class Progress:
    """Totals, not plans: `rows` has (label, images) per prompt for up to MAX_ROWS prompts, else the
    display is one bar of `images` over `prompts` prompts. Prompts are known by their number."""

    def __init__(self, prompts: int, images: int, rows: list[tuple[str, int]], *, enabled: bool) -> None:
        self.prompts, self.images = prompts, images
        self.rows = rows if prompts <= MAX_ROWS else []
        self.verbose = enabled
        self.traced = False  # -v: the transport says each retry, not this
        self.enabled = enabled and render.live_stderr()
        self.bar: Any = None
        self.tasks: dict[int, Any] = {}
        self.overall: Any = None
        self.totals: dict[Any, int] = {}  # images each task still expects: failed requests' leave it
        self.done = self.failed = self.in_flight = 0
        self.jobs: dict[tuple[int, int], str] = {}  # (prompt, first image) -> a queued job's status
        self.started = time.monotonic()
        self.on_screen = False  # stdout is the terminal the display is drawn on

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if not self.enabled:
            return self
        self.on_screen = _same_terminal()
        self.bar = _display(self.status)
        self.bar.start()
        if self.rows:
            for number, (text, images) in enumerate(self.rows):
                self.tasks[number] = self.bar.add_task(text, total=images)
                self.totals[self.tasks[number]] = images
        else:
            self.overall = self.bar.add_task(f"{self.prompts} prompts", total=self.images)
            self.totals[self.overall] = self.images
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.on_screen = False  # lines after the display go to stdout as they are

    def _task(self, number: int) -> Any:
        return self.tasks.get(number, self.overall)

    def hook(self, number: int, plan: Plan) -> Callable[[str, dict[str, Any]], None]:
        def event(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                self.in_flight += 1
            elif kind in ("done", "failed"):
                self.in_flight = max(0, self.in_flight - 1)
                had = self.jobs.pop((number, int(data.get("index", 1))), None)
                if had and kind == "done" and self.bar is not None and self.rows:
                    self.bar.update(self._task(number), description=label(plan))  # the status said goes
            if kind == "failed" and self.bar is not None:
                self._failed_images(number, plan, int(data.get("n", 1)))
            if kind == "job":
                self._job(number, plan, data)
            if kind != "retry":
                return
            text = f"retry {data['attempt']} in {data['wait']:.1f} s: {data['reason']}"
            if self.bar is not None:
                from ..secrets import cut

                title = label(plan) if self.rows else f"{self.prompts} prompts"
                self.bar.update(self._task(number), description=f"{title} · {cut(text, 60)}")
            elif self.verbose and not self.traced:
                from .render import note

                note(text)

        return event

    def _job(self, number: int, plan: Plan, data: dict[str, Any]) -> None:
        """A queued job's status ("queued", "running"): on its row, and counted in the status line; only
        on a terminal (a pipe gets nothing more)."""
        if self.bar is None or not data.get("status"):
            return
        status = str(data["status"])
        self.jobs[(number, int(data.get("index", 1)))] = status
        if self.rows:
            self.bar.update(self._task(number), description=f"{label(plan)} · {status}")

    def _failed_images(self, number: int, plan: Plan, images: int) -> None:
        """A failed request's images leave its row's total (the row ends, its spinner stops) and the
        row says it failed, first, where a cut cannot hide it."""
        task = self._task(number)
        self.totals[task] = max(0, self.totals.get(task, 0) - images)
        fields: dict[str, Any] = {"total": self.totals[task]}
        if self.rows:
            fields["description"] = f"failed · {label(plan)}"
        self.bar.update(task, **fields)

    def saved(self, number: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self._task(number))

    def show(self, line: str) -> bool:
        """Print a line of stdout above the bar when stdout is the display's own terminal; False when
        it is not (a pipe, a file: the caller writes it there, untouched by the display). Not wrapped by
        Rich: a long JSON line stays one line for the terminal to wrap and the user to copy."""
        if self.bar is None or not self.on_screen:
            return False
        from rich.text import Text

        self.bar.console.print(Text(line), soft_wrap=True, highlight=False)
        return True

    def failure(self) -> None:
        self.failed += 1

    def status(self) -> str:
        """`3/10 images · 1 failed · 2 in flight · 0:05 elapsed · ETA 0:12`; with jobs of a queue API,
        `16 in flight (4 queued, 12 running)`."""
        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.images} images"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        flight = f"{self.in_flight} in flight"
        if self.jobs:  # jobs of a queue API: how many wait, how many run
            counts: dict[str, int] = {}
            for status in self.jobs.values():
                counts[status] = counts.get(status, 0) + 1
            flight += " (" + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) + ")"
        parts += [flight, f"{clock(elapsed)} elapsed"]
        finished = self.done + self.failed
        left = max(self.images - finished, 0)
        parts.append(f"ETA {clock(elapsed / finished * left)}" if finished else "ETA --:--")
        return " · ".join(parts)


def _display(status: Callable[[], str]) -> Any:
    """A Rich progress on stderr: rows of spinner, label (cut with "…" to fit), a fixed bar and
    done/total, then the status line. Rich is kept off stdout: it would take the paths or JSON Lines
    meant for a pipe or a file, and wrap long lines at the terminal's width (see `show`)."""
    from rich.console import RenderableType
    from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
    from rich.progress import Progress as RichProgress
    from rich.table import Column
    from rich.text import Text

    class Display(RichProgress):
        def get_renderables(self) -> Iterable[RenderableType]:
            yield self.make_tasks_table(self.tasks)
            yield Text(status(), no_wrap=True, overflow="ellipsis", style="dim")

    console = render.stderr_console()
    text = TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"))
    columns = (SpinnerColumn(), text, BarColumn(bar_width=BAR_WIDTH), MofNCompleteColumn())
    return Display(*columns, console=console, transient=True, redirect_stdout=False, expand=True)


def _same_terminal() -> bool:
    try:
        return sys.stdout.isatty() and os.path.samestat(os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno()))
    except (AttributeError, OSError, ValueError):
        return False


def clock(seconds: float) -> str:
    """0:05, 12:34, 1:02:03."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
