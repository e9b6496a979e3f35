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
    def __init__(self, plans: list[Plan], *, enabled: bool) -> None:
        self.plans = plans
        self.verbose = enabled
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.bar: Any = None
        self.tasks: dict[int, Any] = {}

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.bar = RichProgress(*columns, TimeElapsedColumn(), console=console, transient=True)
        self.bar.start()
        if len(self.plans) <= MAX_ROWS:
            for plan in self.plans:
                self.tasks[id(plan)] = self.bar.add_task(_label(plan), total=sum(r.n for r in plan.requests))
        else:
            total = sum(r.n for plan in self.plans for r in plan.requests)
            self.tasks[0] = self.bar.add_task(f"{len(self.plans)} prompts", total=total)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _task(self, plan: Plan) -> Any:
        return self.tasks.get(id(plan), self.tasks.get(0))

    def hook(self, plan: Plan) -> Callable[[str, dict[str, Any]], None]:
        def event(kind: str, data: dict[str, Any]) -> None:
            if kind != "retry":
                return
            text = f"retry {data['attempt']} in {data['wait']:.1f} s: {data['reason']}"
            if self.bar is not None:
                label = _label(plan) if len(self.plans) <= MAX_ROWS else f"{len(self.plans)} prompts"
                from ..secrets import cut

                self.bar.update(self._task(plan), description=f"{label} · {cut(text, 60)}")
            elif self.verbose:
                from .render import note

                note(text)

        return event

    def saved(self, plan: Plan) -> None:
        if self.bar is not None:
            self.bar.advance(self._task(plan))


def _label(plan: Plan) -> str:
    prompt = plan.prompt if len(plan.prompt) <= 40 else plan.prompt[:37] + "..."
    return f"{plan.settings.model.name} · {prompt!r}"
