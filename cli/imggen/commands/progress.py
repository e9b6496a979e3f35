"""The live progress display on stderr: a Rich bar on a terminal, nothing otherwise."""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from ..plan import Plan


class Progress:
    """Counts images saved out of the plan's total; shows retries and their waits."""

    def __init__(self, plan: Plan, *, enabled: bool) -> None:
        self.plan = plan
        self.verbose = enabled
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        self.bar = RichProgress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )  # fmt: skip
        self.bar.start()
        self.task = self.bar.add_task(self._label(), total=self.plan.n)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _label(self, extra: str = "") -> str:
        prompt = self.plan.prompt if len(self.plan.prompt) <= 40 else self.plan.prompt[:37] + "..."
        return f"{self.plan.settings.model.name} · {prompt!r}{extra}"

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if self.bar is None:
            if kind == "retry" and self.verbose:
                from .render import note

                note(f"retry {data['attempt']} in {data['wait']:.1f} s: {data['reason']}")
            return
        if kind == "retry":
            reason = str(data["reason"])[:50]
            self.bar.update(
                self.task, description=self._label(f" · retry {data['attempt']} in {data['wait']:.1f} s ({reason})")
            )
        elif kind == "done":
            self.bar.update(self.task, description=self._label())

    def saved(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)
