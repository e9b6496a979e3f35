"""`imggen batch`: a provider's batch service (half the price, done within 24 hours on its machines)
driven from the command line. submit validates every line exactly as `generate` does and refuses
before uploading anything; the ledger (batches/ledger.py) remembers each batch, so status, list,
cancel and collect work from any shell, after a reboot. collect saves like `generate` (names, --json,
--metadata, the manifest), is resumable, and writes nothing twice."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import ImggenError, UsageError
from . import generate as g

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..batches.ledger import Ledger, Record
    from ..batches.service import BatchLine, BatchService
    from ..jobs import Batch, Job
    from ..plan import Plan
    from ..settings import Resolved
    from ..types import ImageRequest

batch_app = typer.Typer(
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    help="Provider batch jobs: half the price, done within 24 hours.",
)
WAIT = typer.Option(False, "--wait", help="Poll until the batch is done, then collect it.")
SAVED_OPTIONS = ("n", "size", "aspect_ratio", "quality", "style", "user", "seed", "negative_prompt", "params")


def _arun(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def _ledger() -> Ledger:
    from ..batches.ledger import Ledger

    return Ledger()


def _copy_prompts(prompts_file: Path | None, folder: Path) -> tuple[Path, str, str]:
    """The prompts copied beside the ledger (collect reads them again, whatever happens to the file or
    stdin), streamed, with their SHA-256; and the name messages give them."""
    if prompts_file is None or str(prompts_file) == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("--prompts-file - reads stdin, but there is no stdin")
        source, name, suffix = sys.stdin.buffer, "stdin", ".txt"
    else:
        try:
            source = open(prompts_file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot read --prompts-file {prompts_file}: {exc.strerror or exc}") from None
        name, suffix = str(prompts_file), prompts_file.suffix.lower() or ".txt"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f".incoming-{os.getpid()}-{time.monotonic_ns()}{suffix}"
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return target, digest.hexdigest(), name


def _batch(
    copy: Path,
    name: str,
    model: str | None,
    profile: str | None,
    options: Any,
    flags: dict[str, Any],
    template: str | None,
) -> Batch:
    from ..jobs import Batch
    from ..prompts import Source

    source = Source(copy)
    source.name = name
    return Batch(source, model=model, profile=profile, options=options, flags=flags, name=template)


@batch_app.command("submit")
def submit(
    prompts_file: str = typer.Option(
        ..., "--prompts-file", metavar="FILE", help="Prompts (.txt or .jsonl), - for stdin."
    ),
    model: str | None = g.MODEL,
    number: int = g.NUMBER,
    size: str | None = g.SIZE,
    aspect_ratio: str | None = g.ASPECT_RATIO,
    quality: str | None = g.QUALITY,
    style: str | None = g.STYLE,
    user: str | None = g.USER,
    seed: int | None = g.SEED,
    negative_prompt: str | None = g.NEGATIVE_PROMPT,
    param: list[str] = g.PARAM,
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="DIR", help="Where collect saves the images (default .)."
    ),
    name: str | None = g.NAME,
    profile: str | None = g.PROFILE,
    api_base: str | None = g.API_BASE,
    max_cost: float | None = g.MAX_COST,
    gcs_bucket: str | None = typer.Option(
        None, "--gcs-bucket", metavar="BUCKET", help="Vertex AI: the Cloud Storage bucket for input and output."
    ),
    wait: bool = WAIT,
    metadata: bool = g.METADATA,
    json_lines: bool = g.JSON_LINES,
    quiet: bool = g.QUIET,
) -> None:
    """Validate every prompt as generate does, show the estimate at batch prices, upload and submit;
    prints the batch id."""
    from ..batches import service_for
    from ..batches.ledger import prompts_dir
    from ..jobs import budget_refusal
    from ..plan import Options

    options = Options(
        n=number,
        size=size,
        aspect_ratio=aspect_ratio,
        quality=quality,
        style=style,
        user=user,
        seed=seed,
        negative_prompt=negative_prompt,
        params=g.parse_params(param),
    )
    g.check_numbers(1, 0, None, None, max_cost)
    flags = {"api_base": api_base, "output_dir": output, "vertex_batch_bucket": gcs_bucket}
    folder = prompts_dir()
    copy, digest, shown = _copy_prompts(None if prompts_file == "-" else Path(prompts_file), folder)
    keep = False
    try:
        batch = _batch(copy, shown, model, profile, options, flags, name)
        totals = batch.check()  # every line, exactly as generate checks it: nothing is sent before
        first = totals.first
        assert first is not None
        models = {plan.settings.model.name for plan, _ in batch.plans()}
        if len(models) > 1:
            raise UsageError(
                f"a batch is for one model, and the lines name {len(models)}: " + ", ".join(sorted(models)),
                hint="Submit one batch per model.",
            )
        settings = first.settings
        share = batch_share(first)  # refuses a model no batch service takes, before anything is sent
        service = service_for(settings.model.provider)
        _ready(service, settings, gcs_bucket)
        totals.cost *= share
        refusal = budget_refusal(totals, max_cost)
        if refusal is not None:
            refusal.message, refusal.hint = refusal.wordings.get("cli", (refusal.message, refusal.hint))
            raise refusal
        if not quiet:
            price = "unknown" if totals.unpriced else f"${totals.cost:.4f}"
            sys.stderr.write(
                f"{totals.prompts} prompt(s), {totals.images} image(s) · {settings.model.name} · "
                f"estimated {price} at batch prices ({share:.0%} of the price)\n"
            )
        given = {k: getattr(options, k) for k in SAVED_OPTIONS}
        saved = {"profile": profile, "api_base": api_base, "gcs_bucket": gcs_bucket, "name": name, "options": given}
        with _ledger() as ledger:
            batch_id = ledger.new_batch(
                settings.model.provider,
                settings.model.name,
                prompts_sha256=digest,
                output_dir=output,
                options=saved,
                total=totals.images,
            )
            final = folder / f"{batch_id}{copy.suffix}"
            copy.rename(final)
            keep = True
            batch.source.path = final  # type: ignore[union-attr]
            try:
                _arun(_submit(ledger, batch_id, batch, service, settings))
            except KeyboardInterrupt:
                raise typer.Exit(_interrupted(ledger, batch_id)) from None
            ledger.set_state(batch_id, "validating")
        sys.stdout.write(batch_id + "\n")
        sys.stdout.flush()
    finally:
        if not keep:
            copy.unlink(missing_ok=True)
    if wait:
        _wait(batch_id, quiet)
        raise typer.Exit(_collect(batch_id, output, json_lines=json_lines, metadata=metadata, quiet=quiet))


def _ready(service: BatchService, settings: Resolved, gcs_bucket: str | None) -> None:
    """Refuse, before anything is recorded or sent, what the service cannot start without (a service's
    optional `check`: Vertex AI's bucket), and a bucket for a service that takes none."""
    if gcs_bucket and "vertex_batch_bucket" not in settings.values:
        raise UsageError(f"--gcs-bucket: {settings.model.provider} batches take no Cloud Storage bucket")
    check = getattr(service, "check", None)
    if check is not None:
        check(settings)


def batch_share(plan: Plan) -> float:
    """The batch price as a share of the interactive estimate, from the catalog's `batch` field
    (catalog.batch_cost: a discount, or a batch price table). A model no batch service takes is a
    usage error naming the models that are."""
    from ..catalog import batch_services

    model = plan.settings.model
    if model.provider not in batch_services(model.info):
        raise UsageError(f"{model.name}: {_no_batch(model.provider)}", hint=_batch_models())
    return price_share(plan)


def price_share(plan: Plan) -> float:
    """catalog.batch_cost over the interactive estimate (the discount itself when the estimate is unknown)."""
    from ..catalog import batch_cost

    info = plan.settings.model.info
    cheap = batch_cost(info, plan.n, plan.size, plan.quality)
    if cheap is not None and plan.cost_usd:
        return cheap / plan.cost_usd
    return float(((info.batch if info else None) or {}).get("discount", 1.0))


def _no_batch(provider: str) -> str:
    """Why a model cannot be batched: this one is not taken by its provider's batch service, or the
    provider's declaration says why none is (batch_note), or imggen drives none for it."""
    from ..catalog import all_models, batch_services
    from ..providers import PROVIDERS

    if any(provider in batch_services(info) for info in all_models()):
        return "no batch service takes this model (the catalog's batch field)"
    spec = PROVIDERS.get(provider)
    return (spec.batch_note if spec else "") or f"imggen drives no batch service for {provider} models"


def _batch_models() -> str:
    from ..catalog import all_models, batch_services

    names = sorted(info.id for info in all_models() if batch_services(info))
    return "Models a batch service takes: " + ", ".join(names) + " (imggen models --batch)."


async def _submit(ledger: Ledger, batch_id: str, batch: Batch, service: BatchService, settings: Resolved) -> None:
    from ..batches.ledger import Part
    from ..transport import Transport

    async def lines() -> AsyncIterator[BatchLine]:
        from ..batches.service import BatchLine

        for job in batch.jobs():
            for request in job.plan.requests:
                yield BatchLine(f"{job.line}-{request.first_index}", request)

    async with Transport(timeout=float(settings.get("timeout", 600))) as transport:
        n = 0
        async for sent in service.submit(lines(), settings, transport):
            ledger.add_part(
                Part(
                    batch_id,
                    n,
                    sent.provider_batch_id,
                    sent.input_file_id,
                    "validating",
                    sent.request_count,
                    sent.first_index,
                )
            )
            n += 1


def _interrupted(ledger: Ledger, batch_id: str) -> int:
    """Ctrl-C during submit: the ledger keeps exactly the provider batches whose creation was answered
    (each recorded as it was), so the batch can be followed, collected or cancelled like any other;
    collect reports the requests never submitted as failed, so the manifest lists them to submit again."""
    record = ledger.get(batch_id)
    assert record is not None
    if not record.parts:
        ledger.set_state(batch_id, "interrupted")
    sent = record.requests
    sys.stderr.write(
        f"interrupted: {sent} request(s) submitted in {len(record.parts)} provider batch(es), kept as {batch_id}\n"
        + (f"Follow it with imggen batch status {batch_id}, then imggen batch collect {batch_id} (the requests not "
           f"submitted are reported failed), or stop it with imggen batch cancel {batch_id}.\n" if record.parts
           else "Nothing was submitted: run the same command again.\n")
    )  # fmt: skip
    return 130


def _settings(record: Record) -> Resolved:
    from ..api import plan_generation

    flags = {"api_base": record.options.get("api_base")}
    return plan_generation("batch", record.model, profile=record.options.get("profile"), flags=flags).settings


def _find(ledger: Ledger, batch_id: str | None) -> Record:
    record = ledger.get(batch_id) if batch_id else ledger.latest()
    if record is None:
        raise UsageError(f"no batch {batch_id}" if batch_id else "no batch yet", hint="See: imggen batch list.")
    return record


async def _refresh(ledger: Ledger, record: Record, cancel: bool = False) -> Record:
    """Ask the service for each unfinished part's state (or cancel it) and keep the answers."""
    import dataclasses

    from ..batches import service_for
    from ..transport import Transport

    parts = [p for p in record.parts if not p.finished]
    if not parts:
        return record
    service, settings = service_for(record.provider), _settings(record)
    async with Transport() as transport:
        for part in parts:
            state = await (service.cancel if cancel else service.status)(part, settings, transport)
            ledger.update_part(
                dataclasses.replace(
                    part,
                    state=state.state,
                    completed=state.completed,
                    failed=state.failed,
                    output_file_id=state.output_file_id,
                    error_file_id=state.error_file_id,
                )
            )
    fresh = ledger.get(record.id)
    assert fresh is not None
    return fresh


def _row(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "model": record.model,
        "state": record.state,
        "images": record.total,
        "completed": record.completed,
        "failed": record.failed,
        "created": int(record.created),
        "output_dir": record.output_dir or ".",
        "provider_batches": [p.provider_batch_id for p in record.parts],
    }


HEADERS = ["BATCH", "STATE", "MODEL", "DONE", "FAILED", "SUBMITTED"]
PART_HEADERS = ["PROVIDER BATCH", "STATE", "DONE", "FAILED", "REQUESTS"]


def _cells(record: Record) -> list[str]:
    """A batch's row: requests done of those submitted (a request is one provider call)."""
    requests = record.requests
    submitted = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
    return [record.id, record.state, record.model, f"{record.completed}/{requests}", str(record.failed), submitted]


def _part_lines(record: Record) -> list[str]:
    from . import render

    rows = [[p.provider_batch_id or "-", p.state, str(p.completed), str(p.failed), str(p.request_count)]
            for p in record.parts]  # fmt: skip
    return render.table([PART_HEADERS, *rows]) if rows else []


def _show(records: list[Record], parts: bool = False) -> None:
    """As `imggen models` shows its rows: at a terminal a table (with `parts`, each provider batch of
    the one batch below it); in a pipe tab-separated lines without a header, in the same columns."""
    from . import render

    if not sys.stdout.isatty():
        sys.stdout.writelines("\t".join(_cells(r)) + "\n" for r in records)
        return
    if not records:
        render.note("no batch yet: imggen batch submit makes one")
        return
    render.print_table([HEADERS, *(_cells(r) for r in records)])
    if parts:
        sys.stdout.write("\n" + "".join(line + "\n" for line in _part_lines(records[0])))


@batch_app.command("status")
def status(
    batch_id: str | None = typer.Argument(None, metavar="[ID]", help="The batch (default: the latest)."),
    json_lines: bool = g.JSON_LINES,
) -> None:
    """The state of a batch, asked of the service."""
    with _ledger() as ledger:
        record = _arun(_refresh(ledger, _find(ledger, batch_id)))
    if json_lines:
        sys.stdout.write(json.dumps(_row(record)) + "\n")
    else:
        _show([record], parts=True)


@batch_app.command("list")
def list_batches(json_lines: bool = g.JSON_LINES) -> None:
    """Every batch the ledger holds, with states refreshed."""
    with _ledger() as ledger:
        records = [r if r.finished else _arun(_refresh(ledger, r)) for r in ledger.all()]
    if json_lines:
        sys.stdout.writelines(json.dumps(_row(r)) + "\n" for r in records)
    else:
        _show(records)


@batch_app.command("cancel")
def cancel(batch_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Ask the service to cancel a batch (what is done by then can still be collected)."""
    with _ledger() as ledger:
        record = _arun(_refresh(ledger, _find(ledger, batch_id), cancel=True))
    _show([record], parts=True)


class _Waiting:
    """--wait's display at a terminal (on stderr, redrawn by Rich): the batch's state, requests done and
    failed of all, time since it was submitted, and each provider batch's row."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def __rich__(self) -> Any:
        from rich.text import Text

        from .progress import clock

        r = self.record
        requests = r.requests
        head = (f"{r.id} · {r.state} · {r.completed}/{requests} done, {r.failed} failed · "
                f"{clock(time.time() - r.created)} since submitted")  # fmt: skip
        return Text("\n".join([head, *_part_lines(r)]), no_wrap=True, overflow="ellipsis")


def _live(view: _Waiting, quiet: bool) -> Any:
    """A Rich Live display of `view` on stderr at a terminal; elsewhere nothing (a pipe gets no extra)."""
    import contextlib

    from . import render

    if quiet or not render.live_stderr():
        return contextlib.nullcontext()
    from rich.live import Live

    return Live(view, console=render.stderr_console(), refresh_per_second=2, transient=False, redirect_stdout=False)


def _wait(batch_id: str, quiet: bool) -> None:
    from ..engine import poll_interval

    pace = poll_interval()
    delay = 5.0 if pace is None else pace
    with _ledger() as ledger:
        view = _Waiting(_find(ledger, batch_id))
        with _live(view, quiet):
            while True:
                view.record = _arun(_refresh(ledger, view.record))
                if all(p.finished for p in view.record.parts):
                    return
                time.sleep(delay)
                delay = delay if pace is not None else min(delay * 1.5, 60.0)


@batch_app.command("collect")
def collect(
    batch_id: str = typer.Argument(..., metavar="ID"),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="DIR", help="Where the images go (default: as submitted)."
    ),
    json_lines: bool = g.JSON_LINES,
    metadata: bool = g.METADATA,
    quiet: bool = g.QUIET,
    no_log: bool = g.NO_LOG,
) -> None:
    """Download the results into the output directory, named as generate names them; run it again to
    finish an interrupted collect (nothing is written twice)."""
    raise typer.Exit(_collect(batch_id, output, json_lines=json_lines, metadata=metadata, quiet=quiet,
                              log_as=None if no_log else "batch collect"))  # fmt: skip


def _collect(batch_id: str, output: str | None, *, json_lines: bool, metadata: bool, quiet: bool,
             log_as: str | None = "batch collect") -> int:  # fmt: skip
    from ..batches.ledger import prompts_dir
    from ..plan import Options

    with _ledger() as ledger:
        record = _arun(_refresh(ledger, _find(ledger, batch_id)))
        if record.state == "collected":  # every result saved, none failed: nothing to fetch again
            if not quiet:
                from . import render

                render.note(f"batch {record.id} is collected already: nothing to do")
            return 0
        running = [p for p in record.parts if not p.finished]
        if running:
            raise ImggenError(
                f"batch {record.id} is not finished ({record.state})",
                hint=f"Run: imggen batch collect {record.id} once it is, or add --wait to submit.",
            )
        copies = list(prompts_dir().glob(f"{record.id}.*"))
        if not copies:
            raise ImggenError(f"the prompts of batch {record.id} are no longer beside the ledger")
        opts = record.options
        options = Options(**opts.get("options", {}))
        flags = {"api_base": opts.get("api_base"), "output_dir": output or record.output_dir}
        batch = _batch(copies[0], copies[0].name, record.model, opts.get("profile"), options, flags, opts.get("name"))
        collector = _Collector(batch, ledger, record, metadata=metadata, json_lines=json_lines, quiet=quiet,
                               log_as=log_as)  # fmt: skip
        code: int = collector.finish_log(collector.collect())
        return code


def _make_collector() -> type:
    from .run import Run

    class Collector(Run):
        """generate's Run, fed by the batch's result files instead of by sending requests."""

        def __init__(self, batch: Batch, ledger: Ledger, record: Record, **kw: Any) -> None:
            self.ledger, self.record = ledger, record
            super().__init__(batch, overwrite=False, resume=False, **kw)
            self.last: tuple[int, Job | None] = (-1, None)  # the job of the line read last
            self.shared: set[ImggenError] = set()  # reasons a whole part's requests failed for (_unanswered)
            self.told: set[ImggenError] = set()  # those said already

        def collect(self) -> int:
            started = time.monotonic()
            _arun(self._collect_all())
            if not self.quiet:
                self._summary(time.monotonic() - started)
            return 4 if self.failures or self.ledger_failed else 0

        async def _collect_all(self) -> None:
            from ..batch import Session
            from ..batches import service_for
            from ..errors import GenerationError

            self.ledger_failed = self.ledger.any_failed(self.record.id)
            service, settings = service_for(self.record.provider), _settings(self.record)
            gone: dict[int, GenerationError] = {}  # part -> why its result files could not be read
            spill = self._spill_dir()
            try:
                async with Session(spill_dir=spill) as session:
                    self.session = session
                    transport = session.transport((), float(settings.get("timeout", 600)))
                    for part in self.record.parts:
                        try:
                            async for result in service.results(part, settings, transport, self._request_of):
                                await self._one(result)
                        except GenerationError as exc:
                            if exc.status not in (404, 410):  # not gone for good: the next collect goes on
                                raise
                            gone[part.n] = exc
                self._unanswered(gone)
            finally:
                import shutil

                shutil.rmtree(spill, ignore_errors=True)
                if self.manifest is not None:
                    self.manifest.close()
                self.batch.source.close()  # type: ignore[union-attr]
            if not self.failures and self.ledger_failed is False:
                self.ledger.set_state(self.record.id, "collected")

        def _request_of(self, custom_id: str) -> ImageRequest:
            """The request a result answers (its seed, size and index label the images)."""
            from ..types import ImageRequest, ModelRef

            index = custom_id.partition("-")[2]
            job = self._job_of(custom_id)
            for request in job.plan.requests if job is not None else ():
                if str(request.first_index) == index:
                    return request
            return ImageRequest("", ModelRef("", ""), first_index=int(index) if index.isdigit() else 1)

        def _job_of(self, custom_id: str) -> Job | None:
            """The job of a result's line, planned once for all of that line's results; the line is read
            from the prompts file where it starts (Source.at), so no line is held for long."""
            head = custom_id.split("-", 1)[0]
            line = int(head) if head.isdigit() else -1
            if self.last[0] != line:
                entry = self.batch.source.at(line) if line > 0 else None  # type: ignore[union-attr]
                self.last = (line, self._job_for(entry) if entry is not None else None)
            return self.last[1]

        async def _one(self, result: Any) -> None:
            if self.ledger.outcome(self.record.id, result.custom_id) is not None:
                for image in result.images:  # saved by an earlier collect: only its spilled file goes
                    if image.file is not None:
                        image.file.unlink(missing_ok=True)
                return
            job = self._job_of(result.custom_id)
            outcome = "unknown"
            if job is not None and result.error is not None:
                self._failed(job, result.error)
                outcome = "failed"
            elif job is not None:
                cost = job.plan.cost_usd
                share = cost * price_share(job.plan) / max(job.plan.n, 1) if cost else None
                for image in result.images:
                    image.cost_usd = share
                    await self._save_one(job, image)
                outcome = "saved"
            self.ledger.mark_collected(self.record.id, result.custom_id, outcome)

        def _unanswered(self, gone: dict[int, Any]) -> None:
            """Each request of a finished part that its result files do not hold (a failed, expired or
            cancelled batch, a result file gone) fails here, with the reason, once: the next collect
            reports it from the ledger."""
            parts = self.record.parts
            from ..errors import ProviderError

            reasons = {p.n: gone.get(p.n) or _no_result(self.record, p) for p in parts}
            unsent = ProviderError(
                "not submitted: imggen batch submit was interrupted before this request",
                hint="Submit the failed prompts again (--json or the manifest lists them).",
            )
            self.shared.update([*reasons.values(), unsent])
            position = 0
            for job in self.batch.jobs():
                for request in job.plan.requests:
                    part = next((p for p in parts if p.first_index <= position < p.first_index + p.request_count),
                                None)  # fmt: skip
                    position += 1
                    custom_id = f"{job.line}-{request.first_index}"
                    if self.ledger.outcome(self.record.id, custom_id) is not None:
                        continue
                    self._failed(job, reasons[part.n] if part is not None else unsent)
                    self.ledger.mark_collected(self.record.id, custom_id, "failed")

        def _job_for(self, entry: Any) -> Job:
            plan, key = self.batch._plan(entry)
            return self.batch._job(entry, plan, key, 0)

        def on_image_done(self, job: Job) -> None:
            pass

        def on_failure_counted(self) -> None:
            pass

        def on_failed(self, job: Job, exc: ImggenError, status: int | None) -> None:
            """A whole part's reason (its file gone, the batch failed) is said once, not once a request;
            each request still has its --json line and manifest line."""
            from ..errors import error_line
            from . import render

            if exc not in self.shared:
                super().on_failed(job, exc, status)
                return
            if self.json_lines:
                self._print_error_json(job, {"type": exc.kind, "message": error_line(exc), "status": status})
            if exc not in self.told:
                self.told.add(exc)
                render.print_error(exc)

    return Collector


_WORDS = {"cancelled": "was cancelled"}


def _no_result(record: Record, part: Any) -> ImggenError:
    """Why a request of a finished provider batch has no result."""
    from ..errors import ProviderError

    if part.state == "completed":
        return ProviderError(f"batch {part.provider_batch_id} finished without a result for this request")
    return ProviderError(
        f"batch {part.provider_batch_id} {_WORDS.get(part.state, part.state)} before this request ran",
        hint=f"See: imggen batch status {record.id}; submit the failed prompts again.",
    )


def _Collector(batch: Batch, ledger: Ledger, record: Record, **kw: Any) -> Any:
    return _make_collector()(batch, ledger, record, **kw)
