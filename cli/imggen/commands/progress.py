"""The live progress display on stderr: on a terminal, a Rich row per prompt (one overall bar for big
batches); elsewhere only retry notes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..plan import Plan

MAX_ROWS = 12  # beyond this many prompts, one overall bar reads better than a wall of rows


class Progress:
    """Totals, not plans: `rows` has (label, images) per prompt for up to MAX_ROWS prompts, else the
    display is one bar of `images` over `prompts` prompts. Prompts are known by their number."""

    def __init__(self, prompts: int, images: int, rows: list[tuple[str, int]], *, enabled: bool) -> None:
        self.prompts, self.images = prompts, images
        self.rows = rows if prompts <= MAX_ROWS else []
        self.verbose = enabled
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.bar: Any = None
        self.tasks: dict[int, Any] = {}
        self.overall: Any = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        # Rich would take stdout over too, and the paths or JSON Lines meant for a pipe or a file would
        # land on the screen: only when stdout is the same terminal is it drawn above the bar.
        to_screen = sys.stdout is not None and sys.stdout.isatty()
        self.bar = RichProgress(
            *columns, TimeElapsedColumn(), console=console, transient=True, redirect_stdout=to_screen
        )
        self.bar.start()
        if self.rows:
            for number, (text, images) in enumerate(self.rows):
                self.tasks[number] = self.bar.add_task(text, total=images)
        else:
            self.overall = self.bar.add_task(f"{self.prompts} prompts", total=self.images)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _task(self, number: int) -> Any:
        return self.tasks.get(number, self.overall)

    def hook(self, number: int, plan: Plan) -> Callable[[str, dict[str, Any]], None]:
        def event(kind: str, data: dict[str, Any]) -> None:
            if kind != "retry":
                return
            text = f"retry {data['attempt']} in {data['wait']:.1f} s: {data['reason']}"
            if self.bar is not None:
                from ..secrets import cut

                title = label(plan) if self.rows else f"{self.prompts} prompts"
                self.bar.update(self._task(number), description=f"{title} · {cut(text, 60)}")
            elif self.verbose:
                from .render import note

                note(text)

        return event

    def saved(self, number: int) -> None:
        if self.bar is not None:
            self.bar.advance(self._task(number))


def label(plan: Plan) -> str:
    prompt = plan.prompt if len(plan.prompt) <= 40 else plan.prompt[:37] + "..."
    return f"{plan.settings.model.name} · {prompt!r}"
