"""From prompt sources (a file, stdin, a Python list) to validated jobs: everything is checked before
anything is sent, and a bad input line is a usage error naming its source and line.

A batch is read twice, one line at a time, so memory does not grow with the number of prompts: the
first pass checks every line and adds up what the run will make (images, cost, notes); the second
plans each line again as the scheduler asks for it. Plans are made once per distinct model and
options and only take each line's prompt, so a line costs microseconds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from copy import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ImggenError, UsageError
from .manifest import job_key
from .plan import OPTIONS, Options, Plan, check_prompt, skip_done, with_prompt
from .prompts import PromptLine

if TYPE_CHECKING:
    from .output import Namer

# A JSONL line's options as they are (its params merge; its image paths are loaded: _inputs).
OPTION_KEYS = tuple(key for key, facts in OPTIONS.items() if key != "params" and facts.line)
MAX_SHAPES = 256  # distinct (model, options) plans kept; JSONL lines that all differ just rebuild theirs
MAX_NOTES = 100  # distinct notes shown; the same note for every line is shown once
ROWS = 12  # prompts up to which the progress display has a row per prompt (see progress.MAX_ROWS)


@dataclass
class Job:
    """One prompt of the run; `line` is its input line number in a batch, None for a lone prompt;
    `number` its place among the run's prompts (0-based)."""

    plan: Plan
    line: int | None
    name: str | None
    namer: Namer
    key: str
    number: int = 0


class Lines(Protocol):
    """Where a batch's prompts come from, read twice: a file or stdin (prompts.Source), a Python list."""

    name: str
    path: Path | None

    def where(self, line: int) -> str: ...

    def first_pass(self) -> Iterable[PromptLine]: ...

    def __iter__(self) -> Iterator[PromptLine]: ...

    def close(self) -> None: ...


@dataclass
class Totals:
    """What the first pass found: the whole run in a few numbers."""

    prompts: int = 0
    images: int = 0  # still to make (after --resume)
    skipped: int = 0  # found saved by --resume
    cost: float = 0.0
    unpriced: str | None = None  # a model with images to make and no price
    refusal: ImggenError | None = None  # the first line whose retired model may not be sent (plan.refusal)
    notes: dict[str, tuple[bool, int | None]] = field(default_factory=dict)  # text: (is a warning, line)
    rows: list[tuple[str, int]] = field(default_factory=list)  # (label, images) of the first prompts
    first: Plan | None = None
    names: dict[str, tuple[int, int]] = field(default_factory=dict)  # --name: (prompts, most images of one)


def budget_refusal(totals: Totals, max_cost: float | None) -> UsageError | None:
    """What --max-cost (max_cost= in Python) says of a run's estimate: nothing, or the refusal (raised by
    the run, and by its dry run after the requests are printed), worded for the caller."""
    if max_cost is None:
        return None
    if totals.unpriced is not None:
        template = "the cost of " + totals.unpriced + " is unknown; {flag} cannot bound it"
        hint = "Nothing was sent. Leave out {flag}, or pick a model with a known price."
    elif totals.cost > max_cost:
        template = f"the estimated cost ${totals.cost:.4f} is above {{flag}} ${max_cost:g}"
        hint = "Nothing was sent."
    else:
        return None
    names = {"python": "max_cost=", "cli": "--max-cost"}
    error = UsageError(template.format(flag=names["python"]), hint=hint.format(flag=names["python"]), param="max_cost")
    error.wordings = {style: (template.format(flag=name), hint.format(flag=name)) for style, name in names.items()}
    return error


class Batch:
    """The prompts of one `generate` run with the options every line starts from."""

    def __init__(
        self,
        source: Lines | None,
        prompt: str | None = None,
        *,
        model: str | None,
        profile: str | None,
        options: Options,
        flags: dict[str, Any],
        name: str | None,
    ) -> None:
        from .settings import load_config

        self.source = source  # None: the lone `prompt`
        self.lines: Iterable[PromptLine] = self.source if self.source is not None else [PromptLine(0, prompt or "")]
        self.model, self.profile, self.options, self.flags, self.name = model, profile, options, flags, name
        self.task: str | None = None  # "edit": every line must be an edit (`imggen edit`)
        self.config = load_config()  # once for the whole batch, not once per prompt
        self.resolved: dict[str, Any] = {}  # settings per model and profile (api.plan_generation)
        self.shapes: dict[str, tuple[Plan, dict[str, Any]]] = {}  # per distinct line options, any prompt
        self.namers: dict[tuple[str | None, str], Any] = {}
        self.names: set[str | None] = set()  # --name templates checked
        self.done: dict[str, set[int]] | None = None
        self.taken: set[str] | None = None  # with --overwrite: the names this run has given
        # --resume with a damaged manifest: given a job and the indices found saved, returns those
        # found on disk all the same (their manifest line was cut short)
        self.recover: Callable[[Job, set[int]], set[int]] | None = None

    def check(self, locate: Callable[[Plan], dict[str, set[int]] | None] | None = None) -> Totals:
        """The first pass: every line planned and checked, nothing kept but the totals. `locate` is
        given the first prompt's plan (its settings say where the images go) and returns what
        --resume found already saved there."""
        from .output import DEFAULT_NAME

        totals = Totals()
        entries = self.source.first_pass() if self.source is not None else self.lines
        for entry in entries:
            shape, parameters = self._checked(entry, totals)
            if totals.first is None:
                totals.first = with_prompt(shape, entry.prompt, check=False)
                self.done = locate(totals.first) if locate is not None else None
            plan, skipped = shape, 0  # the line's own plan only when it matters: --resume, rows
            if self.done is not None or totals.prompts < ROWS + 1:
                plan = with_prompt(shape, entry.prompt, check=False)
            if self.done is not None and self.recover is not None:
                key = job_key(plan.prompt, plan.settings.model.name, parameters)
                found = self.done.setdefault(key, set())
                found.update(self.recover(self._job(entry, plan, key, totals.prompts), found))
            if self.done:
                key = job_key(plan.prompt, plan.settings.model.name, parameters)
                skipped = skip_done(plan, self.done.get(key, set()))
            left = plan.n - skipped
            totals.prompts += 1
            totals.images += left
            template = entry.overrides.get("name", self.name) or DEFAULT_NAME
            prompts, most = totals.names.get(template, (0, 0))
            totals.names[template] = (prompts + 1, max(most, plan.n))
            totals.skipped += skipped
            if left and plan.cost_usd is None:
                totals.unpriced = totals.unpriced or plan.settings.model.name
            totals.cost += (plan.cost_usd or 0.0) * left / plan.n
            if totals.prompts <= ROWS + 1:
                totals.rows.append((label(plan), left))
        if totals.prompts > ROWS:
            totals.rows = []
        self.namers.clear()  # made for --resume's recovery, before the run set `taken`
        return totals

    def jobs(self) -> Iterator[Job]:
        """The second pass: a job per prompt with images left to make, made as it is asked for."""

        for number, entry in enumerate(self.lines):
            plan, key = self._plan(entry)
            if self.done and skip_done(plan, self.done.get(key, set())) == plan.n:
                continue  # all saved by an earlier run
            yield self._job(entry, plan, key, number)

    def _job(self, entry: PromptLine, plan: Plan, key: str, number: int) -> Job:
        from .output import DEFAULT_NAME, Namer

        name = entry.overrides.get("name", self.name)
        namer_key = (name, plan.settings.model.name)
        if namer_key not in self.namers:  # the template was checked by the first pass
            if len(self.namers) >= MAX_SHAPES:
                self.namers.clear()
            self.namers[namer_key] = Namer(name or DEFAULT_NAME, plan.settings.model.name, taken=self.taken)
        line = entry.line if self.source else None
        namer = replace(self.namers[namer_key], line=line or 1)  # {line} is the line's own
        return Job(plan, line, name, namer, key, number)

    def plans(self) -> Iterator[tuple[Plan, str]]:
        """The second pass for --dry-run: each line's shape (its plan for another prompt) and prompt."""
        for entry in self.lines:
            yield self._shape(entry)[0], entry.prompt

    def close(self) -> None:
        if self.source is not None:
            self.source.close()

    def _plan(self, entry: PromptLine) -> tuple[Plan, str]:
        """The line's plan and its manifest key."""
        shape, parameters = self._checked(entry)
        plan = with_prompt(shape, entry.prompt, check=False)
        return plan, job_key(plan.prompt, plan.settings.model.name, parameters)

    def _checked(self, entry: PromptLine, totals: Totals | None = None) -> tuple[Plan, dict[str, Any]]:
        """The line's shape, with the line's prompt and --name checked; a mistake names the line."""
        try:
            shape, parameters = self._shape(entry, totals)
            check_prompt(shape, entry.prompt)
            if self.task == "edit" and shape.template is not None and not shape.template.images:
                raise UsageError("no input image to edit",
                                 hint='Give IMAGE arguments, or an "image" or "images" key on the line.')  # fmt: skip
            if totals is not None:
                self._check_name(entry.overrides.get("name", self.name))
                if shape.refusal is not None and totals.refusal is None:
                    totals.refusal = self._located(copy(shape.refusal), entry)
        except ImggenError as exc:
            self._located(exc, entry)
            raise
        return shape, parameters

    def _located(self, exc: ImggenError, entry: PromptLine) -> ImggenError:
        if self.source is not None:
            exc.locate(self.source.where(entry.line))
        return exc

    def _check_name(self, name: str | None) -> None:
        from .output import DEFAULT_NAME, check_template

        if name not in self.names:
            check_template(name or DEFAULT_NAME)
            if len(self.names) >= MAX_SHAPES:
                self.names.clear()
            self.names.add(name)

    def _shape(self, entry: PromptLine, totals: Totals | None = None) -> tuple[Plan, dict[str, Any]]:
        """The plan for this line's model and options, made with the first prompt that had them, and
        the parameters that go in its manifest key (the same for every prompt)."""
        over = entry.overrides
        key = json.dumps(over, sort_keys=True, default=str) if over else ""
        found = self.shapes.get(key)
        if found is not None:
            return found
        from .api import plan_generation, plan_parameters

        line_options = replace(
            self.options,
            **{k: over[k] for k in OPTION_KEYS if k in over},
            params={**self.options.params, **over.get("params", {})},
            **self._inputs(over),
        )
        shape = plan_generation(
            entry.prompt, over.get("model", self.model), profile=self.profile, options=line_options,
            flags=self.flags, config=self.config, resolved=self.resolved,
        )  # fmt: skip
        if len(self.shapes) >= MAX_SHAPES:  # lines that all differ: keep memory bounded, rebuild
            self.shapes.clear()
            self.resolved.clear()
        self.shapes[key] = shape, plan_parameters(shape)
        if totals is not None:
            _add_notes(totals, shape, entry.line if self.source is not None else None)
        return self.shapes[key]

    def _inputs(self, over: dict[str, Any]) -> dict[str, Any]:
        """A line's own input images and mask, paths relative to the prompts file's folder."""
        from .inputs import load

        base = self.source.path.parent if self.source is not None and self.source.path is not None else None
        found: dict[str, Any] = {}
        paths = over.get("images", [over["image"]] if "image" in over else None)
        if paths is not None:
            found["images"] = tuple(load(p, f"image {i}", base=base) for i, p in enumerate(paths, 1))
        if "mask" in over:
            found["mask"] = load(over["mask"], "mask", base=base)
        return found


def _add_notes(totals: Totals, plan: Plan, line: int | None) -> None:
    for warning, texts in ((False, plan.notes), (True, plan.warnings)):
        for text in texts:
            if text not in totals.notes and len(totals.notes) < MAX_NOTES:
                totals.notes[text] = (warning, line)


def label(plan: Plan) -> str:
    """A row's label: the prompt first (what tells rows apart), then the model; cut to fit by the display."""
    prompt = plan.prompt if len(plan.prompt) <= 60 else plan.prompt[:57] + "..."
    return f"{prompt!r} · {plan.settings.model.name}"
