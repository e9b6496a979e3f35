"""Running a batch of prompts as library code: one scheduler for every request (concurrency, rpm, a
429 pausing every start), images saved as they arrive, a manifest line per image or failure,
`resume` and the `max_cost` guard. `imggen.run` and `imggen.arun` yield each image or failure as it
completes; `imggen generate` renders the same run (commands/run.py: progress, lines, summary).

    for result in imggen.run(["a sea otter", {"prompt": "a red fox", "n": 2}], model="placeholder",
                             output_dir="out", resume=True, max_cost=1.0):
        print(result.path or result.error)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from .api import execute, plan_parameters
from .batch import Session
from .errors import GenerationError, ImggenError, NotSentError, OutputError, UsageError, error_line
from .jobs import Batch, Job, budget_refusal
from .manifest import Manifest, sha256_of
from .output import (
    EXTENSIONS,
    before_publish,
    check_template,
    file_target,
    file_template,
    is_image,
    metadata_for,
    prepare_directory,
    remove_leftovers,
    run_folder,
    save_image,
    write_sidecar,
)
from .plan import Plan
from .prompts import PromptLine
from .secrets import redact_upstream
from .types import ImageData, ImageResponse

JOBS_PER_SLOT = 2  # prompts made ready per request slot: enough to start the next request at once
log = logging.getLogger("imggen")

T = TypeVar("T")
P = ParamSpec("P")


class Tally(Generic[T]):
    """What a list of saved images or failures was used for, without growing per image: how many,
    and the first (its exit code is the run's)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: T | None = None

    def append(self, item: T) -> None:
        if self.count == 0:
            self.first = item
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> T:
        if index != 0 or self.first is None:
            raise IndexError(index)
        return self.first


class Costs:
    """The sum of the images' costs; unknown as soon as one is."""

    def __init__(self) -> None:
        self.total = 0.0
        self.unknown = False

    def append(self, cost: float | None) -> None:
        if cost is None:
            self.unknown = True
        else:
            self.total += cost


class Runner:
    """One run of a batch: checked whole when made (every line planned, names, the output directory,
    what `resume` finds there), then `main()` sends and saves. What is said about it (notes, saved
    images, failures) goes through the methods a caller overrides: the CLI renders them, `arun`
    yields them."""

    file: Path | None = None  # an output_dir naming a file (out.png)
    file_template = ""  # out.png: the name template it stands for
    manifest_failed = False  # a manifest line could not be written: said once
    to_stdout = False  # output "-": the CLI's own (commands/run.py)
    recorder: Any = None  # a logdb.Recorder: the CLI logs each saved image (`imggen logs`); the library does not

    def __init__(self, batch: Batch, *, overwrite: bool, metadata: bool, resume: bool) -> None:
        self.batch = batch
        self.overwrite, self.metadata = overwrite, metadata
        self.saved: Tally[Path] = Tally()
        self.failures: Tally[ImggenError] = Tally()
        self.costs = Costs()
        self.not_sent = [0, 0]  # images, prompts
        self.refused: ImggenError | None = None
        self.created = int(time.time())
        self.manifest: Manifest | None = None
        # --resume: jobs an earlier run submitted and did not save, per job key: {first index: (n, job id)}
        self.jobs: dict[str, dict[int, tuple[int, str]]] = {}
        self.totals = batch.check(lambda first: self._locate(first, resume))  # every line, before anything
        if self.totals.refusal is not None:  # a retired model: the whole run is refused, nothing sent
            raise self.totals.refusal
        self.skipped = self.totals.skipped

    def check(self) -> None:
        """What is checked once the totals are known: names, and where the images go."""
        self._check_names()
        self._check_target()

    # What a caller says or collects (the CLI prints; arun yields).

    def note(self, text: str) -> None:
        log.info(text)

    def warn(self, text: str) -> None:
        log.warning(text)

    def report(self, exc: ImggenError) -> None:
        """A failure of the run itself rather than of one image: counted once, said once."""
        self.failures.append(exc)
        log.error(str(exc))

    def on_saved(self, job: Job, path: Path, image: ImageData) -> None:
        """An image was saved (its manifest line written, the file in place)."""

    def on_failed(self, job: Job, exc: ImggenError, status: int | None) -> None:
        """A request or a save failed; it is counted and in the manifest."""

    def on_unsent(self, job: Job, images: int) -> None:
        """Images of a job not sent: the provider had refused the same credentials."""

    def on_failure_counted(self) -> None:
        """A failure was counted (the CLI's progress display)."""

    def on_image_done(self, job: Job) -> None:
        """An image of the job was saved or failed to save (the CLI's progress display)."""

    def event_hook(self, job: Job) -> Any:
        """What `execute` tells of the job's requests (start, retry, done, failed), or None."""
        return None

    def displaying(self) -> contextlib.AbstractContextManager[Any]:
        """Held while requests are sent (the CLI's progress display)."""
        return contextlib.nullcontext()

    # Where the images go, and what --resume finds there.

    def _locate(self, first: Plan, resume: bool) -> dict[str, set[int]] | None:
        """Where the images go (the first prompt's settings say), and what --resume finds there."""
        self.given_dir = str(first.settings.get("output_dir", "."))
        self.to_stdout = self.given_dir == "-"
        self.file = file_target(self.given_dir)  # -o out.png: a file, in its directory
        if self.file is not None:
            self._name_file(self.file, first.n)
            self.given_dir = str(self.file.parent)
        self.directory = Path(self.given_dir)
        self.manifest = None if self.to_stdout else Manifest(self.directory)
        if not resume or self.manifest is None:
            return None
        done = self.manifest.done()
        self.jobs = self.manifest.jobs
        self._warn_bad_lines(self.manifest.bad_lines)
        if self.manifest.bad_lines:  # lines cut short: their images may be on disk all the same
            self.batch.recover = self._recover
        return done

    def _name_file(self, file: Path, images: int) -> None:
        """-o out.png names the images itself: out.png, or out-1.png, out-2.png, …"""
        if self.batch.name is not None:
            raise UsageError(f"-o {file} names the file itself, so --name cannot be used with it",
                             hint="Leave out --name, or give -o a directory.")  # fmt: skip
        template = file_template(file, images)
        try:
            check_template(template)
        except UsageError as exc:
            exc.message = exc.message.replace(f"--name '{template}'", f"-o {file}", 1)
            raise
        self.batch.name = self.file_template = template

    def _check_file(self) -> None:
        """-o out.png takes the images of one prompt; a batch needs a directory."""
        assert self.file is not None
        if self.totals.prompts > 1:
            raise UsageError(f"-o {self.file} names one file, and there are {self.totals.prompts} prompts",
                             hint="Give -o a directory for a batch.")  # fmt: skip
        if set(self.totals.names) != {self.file_template}:
            raise UsageError(f"-o {self.file} names the file itself, so the line's \"name\" cannot be used with it",
                             hint="Leave out \"name\", or give -o a directory.")  # fmt: skip

    def _check_target(self) -> None:
        if self.file is not None:
            self._check_file()
        if self.to_stdout:
            raise UsageError("output_dir='-' is the command line's: give a directory")
        prepare_directory(self.directory)
        Manifest(self.directory).check()
        removed = remove_leftovers(self.directory)
        if removed:
            self.note(f"removed {removed} temporary file(s) left by an interrupted run in {self.given_dir}")

    def _check_names(self) -> None:
        """No two images of the run get one file; with --overwrite, none replaces one made earlier."""
        from .output import check_names

        check_names(self.totals.names, overwrite=self.overwrite and not self.to_stdout, metadata=self.metadata)
        self.batch.taken = set() if self.overwrite else None

    def check_budget(self, max_cost: float | None) -> None:
        """--max-cost: refuse before sending when the estimate of what is left to make is above it."""
        refusal = budget_refusal(self.totals, max_cost)
        if refusal is not None:
            raise refusal

    def _warn_bad_lines(self, numbers: list[int]) -> None:
        if numbers:
            shown = ", ".join(map(str, numbers[:10])) + (f", … ({len(numbers)} in all)" if len(numbers) > 10 else "")
            lines = "line" if len(numbers) == 1 else "lines"
            verb = "is not a readable record" if len(numbers) == 1 else "are not readable records"
            self.warn(f"{self.manifest.path if self.manifest else ''} {lines} {shown} {verb}; skipped")

    def _recover(self, job: Job, done: set[int]) -> set[int]:
        """Images on disk under the very name this run would give them, that no readable manifest line
        names (theirs was cut short): kept as saved, and their line written again, with its hash."""
        assert self.manifest is not None
        seed = job.plan.template.seed if job.plan.template else None
        found: set[int] = set()
        for index in range(1, job.plan.n + 1):
            own = None if seed is None else seed + index - 1  # each image has its own seed (plan._fan_out)
            names = {job.namer.render(job.plan.prompt, index, own, ext) for ext in EXTENSIONS.values()}
            for name in sorted(names - self.manifest.claimed) if index not in done else []:
                path = self.directory / name
                if not is_image(path):
                    continue
                fields = {"status": "saved", "index": index, "path": name, "sha256": sha256_of(path)}
                self._record(job, {**fields, "bytes": path.stat().st_size, "recovered": True})
                self.note(f"--resume: {name} was saved but its manifest line was cut short; kept, not made again")
                found.add(index)
                break
        return found

    # Sending and saving.

    async def main(self, retries: int, concurrency: int, rpm: float | None) -> None:
        """Send every job's requests and save the images as they arrive."""
        # Images stream to a hidden folder in the output directory, so saving one is a rename, and
        # memory stays flat whatever their size; the folder goes when the run ends, however it ends.
        spill_dir = self._spill_dir()
        try:
            with self.displaying():
                async with Session(retries=retries, concurrency=concurrency, rpm=rpm, spill_dir=spill_dir,
                                   stop_on_auth=True) as session:  # fmt: skip
                    self.session = session
                    await self._schedule(session, concurrency)
        finally:
            shutil.rmtree(spill_dir, ignore_errors=True)
            if self.manifest is not None:
                self.manifest.close()

    async def _schedule(self, session: Session, concurrency: int) -> None:
        """Jobs are made from the batch as request slots come near: a few per slot are alive at once,
        however many prompts there are, so the next requests are always queued when a slot frees."""
        alive: set[asyncio.Task[None]] = set()
        try:
            for job in self.batch.jobs():
                while len(alive) >= JOBS_PER_SLOT * concurrency + 2:
                    finished, alive = await asyncio.wait(alive, return_when=asyncio.FIRST_COMPLETED)
                    for done in finished:
                        done.result()  # a configuration error or a bug stops the run
                if session.refused_for(job.plan.settings) is not None:
                    self._unsent(job, sum(r.n for r in job.plan.requests))
                    continue
                alive.add(asyncio.create_task(self._run_job(job, session)))
            if alive:
                await asyncio.gather(*alive)
                alive = set()
        finally:
            for left in alive:
                left.cancel()
            await asyncio.gather(*alive, return_exceptions=True)
            self.refused = session.refused

    async def _run_job(self, job: Job, session: Session) -> None:
        response = await self._execute(job, session)
        unsent = 0
        for exc in response.errors:
            if isinstance(exc, NotSentError):
                unsent += exc.images
            else:
                self._failed(job, exc)
        if unsent:
            self._unsent(job, unsent)

    def _unsent(self, job: Job, images: int) -> None:
        """Not sent because the credentials were refused: counted, and not in the manifest, so
        --resume sends them once the key is fixed."""
        self.not_sent[0] += images
        self.not_sent[1] += 1
        self.on_unsent(job, images)

    async def _execute(self, job: Job, session: Session) -> ImageResponse:
        async def save_all(images: list[ImageData]) -> None:
            for image in images:
                await self._save_one(job, image)

        hook = self.event_hook(job)

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "job" and data.get("submitted") and data.get("job_id"):
                self._record_job(job, data)  # before the job's first poll
            if hook is not None:
                hook(kind, data)

        return await execute(job.plan, on_event=on_event, on_images=save_all, session=session,
                             jobs=self.jobs.get(job.key))  # fmt: skip

    def _record_job(self, job: Job, data: dict[str, Any]) -> None:
        """A job the provider accepted: its id in the manifest, so --resume after an interrupt collects
        it instead of paying for a new one (Manifest.jobs)."""
        self._record(job, {"status": "submitted", "index": data["index"], "n": data["n"], "job_id": data["job_id"]})

    async def _save_one(self, job: Job, image: ImageData) -> None:
        try:
            await self._save(job, image)
        except (GenerationError, OutputError) as exc:
            self._failed(job, exc)
        self.on_image_done(job)

    def _spill_dir(self) -> Path:
        """The run's folder for streamed images; in the output directory it stays locked while the run
        lives, so the next run there removes it only if this one was killed (output.remove_leftovers)."""
        if self.to_stdout:
            return Path(tempfile.mkdtemp(prefix=".imggen-"))
        path, self.spill_lock = run_folder(self.directory)
        return path

    async def _save(self, job: Job, image: ImageData) -> None:
        downloads = self.session.transport((), float(job.plan.settings.get("timeout", 600)))
        published: list[tuple[str, int]] = []  # the file's sha256 and size, for the log

        def record(name: str, sha256: str, size: int) -> None:
            fields = {"status": "saved", "index": image.index, "path": name, "cost_usd": image.cost_usd}
            self._record(job, {**fields, "sha256": sha256, "bytes": size})
            published.append((sha256, size))

        token = before_publish.set(record)  # the line goes in just before the file takes its name
        try:
            path = await save_image(image, job.plan.prompt, self.directory, job.namer, self.overwrite, downloads)
        finally:
            before_publish.reset(token)
        self.saved.append(path)
        self.costs.append(image.cost_usd)
        if self.recorder is not None and published:
            self.recorder.saved(job, path, image, *published[-1])
        self.on_saved(job, path, image)
        if self.metadata:
            write_sidecar(path, redact_upstream(metadata_for(self._response_stub(job), image)))

    def _record(self, job: Job, fields: dict[str, Any]) -> None:
        if self.manifest is None:
            return
        base = {"key": job.key, "line": job.line, "prompt": job.plan.prompt, "model": job.plan.settings.model.name}
        try:
            self.manifest.append({**base, **fields, "created": int(time.time())})
        except OutputError as exc:
            if not self.manifest_failed:
                self.manifest_failed = True
                exc.hint = "Images are still saved; --resume may make again those the manifest misses."
                self.report(exc)

    def _response_stub(self, job: Job) -> ImageResponse:
        return ImageResponse(
            created=self.created, data=[], model=job.plan.settings.model.name, prompt=job.plan.prompt,
            parameters=plan_parameters(job.plan),
        )  # fmt: skip

    def _failed(self, job: Job, exc: ImggenError) -> None:
        self.failures.append(exc)
        self.on_failure_counted()
        status = exc.status if isinstance(exc, GenerationError) else None
        self._record(job, {"status": "failed", "error": error_line(exc), "error_status": status})
        self.on_failed(job, exc, status)


# The Python API: imggen.run and imggen.arun.


@dataclass
class Result:
    """One image saved, or one failure, of a run: `job` is the place of its prompt among the jobs
    given (0-based), `index` the image's number among that prompt's images (1-based)."""

    job: int
    prompt: str
    model: str
    path: Path | None = None  # where the image was saved
    image: ImageData | None = None
    error: ImggenError | None = None  # why the image (or `images` of them) was not made

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def index(self) -> int | None:
        return self.image.index if self.image is not None else None


class JobList:
    """Jobs given from Python as prompts (str) or dicts with a JSONL line's keys, read twice as a
    prompts file is; a mistake names the job (`jobs[2]`)."""

    name = "jobs"
    path: Path | None = None

    def __init__(self, jobs: Iterable[str | Mapping[str, Any]]) -> None:
        from .prompts import line_of

        if isinstance(jobs, str | bytes | Mapping):
            raise UsageError("jobs must be a list of prompts (str) or of dicts with a 'prompt'")
        self.lines = [line_of(job, number, self.where(number)) for number, job in enumerate(jobs, 1)]
        if not self.lines:
            raise UsageError("no jobs given", hint="Give a list of prompts, e.g. imggen.run(['a sea otter']).")

    def where(self, line: int) -> str:
        return f"jobs[{line - 1}]"

    def first_pass(self) -> Iterator[PromptLine]:
        return iter(self.lines)

    def __iter__(self) -> Iterator[PromptLine]:
        return iter(self.lines)

    def close(self) -> None:
        pass


class _Streamed(Runner):
    """A run whose images and failures go to a queue as they complete."""

    def __init__(self, batch: Batch, **options: Any) -> None:
        super().__init__(batch, **options)
        self.results: asyncio.Queue[Result | None] = asyncio.Queue()

    def _result(self, job: Job, **fields: Any) -> Result:
        plan = job.plan
        return Result(job.number, plan.prompt, plan.settings.model.name, **fields)

    def on_saved(self, job: Job, path: Path, image: ImageData) -> None:
        self.results.put_nowait(self._result(job, path=path, image=image))

    def on_failed(self, job: Job, exc: ImggenError, status: int | None) -> None:
        self.results.put_nowait(self._result(job, error=exc))

    def on_unsent(self, job: Job, images: int) -> None:
        refused = self.session.refused
        assert refused is not None
        self.results.put_nowait(self._result(job, error=NotSentError(refused, images)))


def arun(
    jobs: Iterable[str | Mapping[str, Any]],
    *,
    model: str | None = None,
    output_dir: str | Path = ".",
    name: str | None = None,
    concurrency: int = 4,
    rpm: float | None = None,
    retries: int = 2,
    resume: bool = False,
    max_cost: float | None = None,
    overwrite: bool = False,
    metadata: bool = False,
    profile: str | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **options: Any,
) -> AsyncIterator[Result]:
    """Make the images of many prompts and save them in `output_dir`, yielding each saved image or
    failure as it completes: `async for result in imggen.arun([...]): ...`.

    `jobs` are prompts, or dicts with the keys of a --prompts-file JSONL line (prompt, model, n, size,
    quality, seed, name, params, …) that override the keywords for their job. `options` are the
    generation options every job starts from (n=, size=, quality=, seed=, params={…}, …).
    Everything is checked before this returns (UsageError), nothing sent: every job, the names,
    the output directory, and `max_cost` (USD) against the estimate of what is left to make. As
    `imggen generate` does, it writes a manifest in `output_dir`, and with `resume=True` skips the
    images it lists as saved. At most `concurrency` requests are in flight, started at most `rpm` a
    minute; a 429 pauses every start. A 401/403 stops the requests not yet sent (their results carry
    a NotSentError)."""
    runner = _prepare(jobs, locals(), options)
    return _stream(runner, retries, concurrency, rpm)


def _synchronous(function: Callable[P, AsyncIterator[Result]]) -> Callable[P, Iterator[Result]]:
    """The same function for synchronous code: its parameters, each result yielded as it completes."""

    @functools.wraps(function)
    def synchronous(*args: P.args, **kwargs: P.kwargs) -> Iterator[Result]:
        return _in_thread(function(*args, **kwargs))  # checked here, in the caller's thread; run in a worker

    synchronous.__name__ = synchronous.__qualname__ = function.__name__[1:]
    signature = inspect.signature(function).replace(return_annotation="Iterator[Result]")
    synchronous.__signature__ = signature  # type: ignore[attr-defined]
    return synchronous


run = _synchronous(arun)
run.__doc__ = """`arun`, for synchronous code: the same parameters, each result yielded as it completes (the
run goes on in a worker thread while the caller handles a result). Leaving the loop early stops the
run: requests in flight are cancelled, images saved so far stay."""


RUN_KEYWORDS = (
    "model", "output_dir", "name", "concurrency", "rpm", "retries", "resume", "max_cost", "overwrite", "metadata",
    "profile", "api_key", "api_base", "api_version", "timeout",
)  # fmt: skip


def _prepare(jobs: Iterable[str | Mapping[str, Any]], given: dict[str, Any], options: dict[str, Any]) -> Runner:
    from .api import _check_text, check_run_numbers
    from .plan import OPTIONS, Options

    _check_options(options)
    values = {key: given[key] for key in RUN_KEYWORDS}
    optional = {key: values[key] for key in ("rpm", "max_cost", "timeout") if values[key] is not None}
    check_run_numbers(retries=values["retries"], concurrency=values["concurrency"], **optional)
    _check_text(model=values["model"], profile=values["profile"], api_key=values["api_key"],
                api_base=values["api_base"], api_version=values["api_version"], name=values["name"])  # fmt: skip
    given_options = Options(**{k: v for k, v in options.items() if k in OPTIONS})
    output = values["output_dir"]
    flags = {
        "api_key": values["api_key"], "api_base": values["api_base"], "api_version": values["api_version"],
        "timeout": values["timeout"], "output_dir": str(output) if output is not None else None, "rpm": values["rpm"],
    }  # fmt: skip
    source = JobList(jobs)
    batch = Batch(source, None, model=values["model"], profile=values["profile"], options=given_options, flags=flags,
                  name=values["name"])  # fmt: skip
    runner = _Streamed(batch, overwrite=values["overwrite"], metadata=values["metadata"], resume=values["resume"])
    runner.check()
    runner.check_budget(values["max_cost"])
    return runner


def _check_options(options: dict[str, Any]) -> None:
    """Keywords that are not generation options are a TypeError, naming the one meant when close."""
    import difflib

    from .plan import OPTIONS

    for key in options:
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, [*OPTIONS, *RUN_KEYWORDS], n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]!r}?" if close else " (provider parameters go in params={...})"
            raise TypeError(f"run() got an unexpected keyword argument {key!r}{hint}")


async def _stream(runner: Runner, retries: int, concurrency: int, rpm: float | None) -> AsyncIterator[Result]:
    assert isinstance(runner, _Streamed)
    rate = runner.totals.first.settings.get("rpm") if runner.totals.first else None  # a profile's rpm too
    task = asyncio.ensure_future(runner.main(retries, concurrency, float(rate) if rate else rpm))
    task.add_done_callback(lambda _task: runner.results.put_nowait(None))
    try:
        while (result := await runner.results.get()) is not None:
            yield result
        task.result()  # a configuration error or a bug stops the run
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner.batch.close()


def _in_thread(stream: AsyncIterator[Result]) -> Iterator[Result]:
    """An async iterator's items, made on a private loop in a worker thread, for synchronous code."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

    async def pump() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.append((asyncio.get_running_loop(), task))
        try:
            async for item in stream:
                items.put(("item", item))
        except BaseException as exc:
            items.put(("error", exc))
        else:
            items.put(("done", None))

    thread = threading.Thread(target=asyncio.run, args=(pump(),), name="imggen-run", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            try:
                kind, value = items.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "item":
                yield value
                continue
            finished = True
            if kind == "error" and not isinstance(value, asyncio.CancelledError):
                raise value
            return
    finally:
        if not finished and running:
            loop, task = running[0]
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        thread.join()


__all__ = ["Result", "Runner", "arun", "run"]
