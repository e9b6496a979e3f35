"""Running the jobs of `imggen generate` (one per prompt): one scheduler for all, images saved as they
arrive, a manifest line per image or failure, a report, and the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..api import execute, plan_parameters
from ..batch import Session
from ..errors import GenerationError, ImggenError, NotSentError, OutputError, UsageError
from ..manifest import Manifest, sha256_of
from ..output import (
    EXTENSIONS,
    KINDS,
    Namer,
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
from ..plan import Plan
from ..secrets import redact_upstream
from ..types import ImageData, ImageResponse
from . import render
from .progress import Progress

if TYPE_CHECKING:
    from .jobs import Batch

JOBS_PER_SLOT = 2  # prompts made ready per request slot: enough to start the next request at once


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


T = TypeVar("T")


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


class Run:
    stdout_failed = False  # stdout was closed or full: the run goes on, saying so once
    said_file_type = False  # -o out.png got another type of image: said once
    file: Path | None = None  # -o out.png
    file_template = ""  # -o out.png: the --name template it stands for
    manifest_failed = False  # a manifest line could not be written: said once

    def __init__(
        self,
        batch: Batch,
        *,
        overwrite: bool,
        metadata: bool,
        json_lines: bool,
        quiet: bool,
        resume: bool,
        verbose: bool = False,
    ) -> None:
        self.batch = batch
        self.verbose = verbose
        self.overwrite, self.metadata, self.json_lines, self.quiet = overwrite, metadata, json_lines, quiet
        self.saved: Tally[Path] = Tally()
        self.failures: Tally[ImggenError] = Tally()
        self.costs = Costs()
        self.not_sent = [0, 0]  # images, prompts
        self.refused: ImggenError | None = None
        self.terminated = False
        self.created = int(time.time())
        self.manifest: Manifest | None = None
        self.totals = batch.check(lambda first: self._locate(first, resume))  # every line, before anything
        if self.totals.refusal is not None:  # a retired model: the whole run is refused, nothing sent
            raise self.totals.refusal
        self.skipped = self.totals.skipped
        self.progress = Progress(self.totals.prompts, self.totals.images, self.totals.rows, enabled=not quiet)
        self.progress.traced = verbose  # -v says each retry itself
        self._check_names()
        self._check_target()

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
        if not self.to_stdout:
            prepare_directory(self.directory)
            Manifest(self.directory).check()
            removed = remove_leftovers(self.directory)
            if removed and not self.quiet:
                render.note(f"removed {removed} temporary file(s) left by an interrupted run in {self.given_dir}")
            return
        if self.totals.prompts != 1 or self.totals.first is None or self.totals.first.n != 1:
            raise UsageError("-o - writes exactly one image to stdout", hint="Use -o DIR for more.")
        if self.json_lines or self.metadata:
            raise UsageError("-o - cannot be combined with --json or --metadata", hint="Use -o DIR.")
        if render.STDOUT_CLOSED:
            raise UsageError("-o - writes the image to stdout, and stdout is closed", hint="Redirect it to a file.")
        if sys.stdout.isatty():
            raise UsageError("-o - would write image bytes to the terminal", hint="Redirect stdout to a file.")

    def _check_names(self) -> None:
        """No two images of the run get one file; with --overwrite, none replaces one made earlier."""
        from ..output import check_names

        check_names(self.totals.names, overwrite=self.overwrite and not self.to_stdout, metadata=self.metadata)
        self.batch.taken = set() if self.overwrite else None

    def check_budget(self, max_cost: float | None) -> None:
        """--max-cost: refuse before sending when the estimate of what is left to make is above it."""
        from .jobs import budget_refusal

        refusal = budget_refusal(self.totals, max_cost)
        if refusal is not None:
            raise refusal

    def _warn_bad_lines(self, numbers: list[int]) -> None:
        if numbers:
            shown = ", ".join(map(str, numbers[:10])) + (f", … ({len(numbers)} in all)" if len(numbers) > 10 else "")
            lines = "line" if len(numbers) == 1 else "lines"
            verb = "is not a readable record" if len(numbers) == 1 else "are not readable records"
            render.warn(f"{self.manifest.path if self.manifest else ''} {lines} {shown} {verb}; skipped")

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
                if not self.quiet:
                    render.note(f"--resume: {name} was saved but its manifest line was cut short; kept, not made again")
                found.add(index)
                break
        return found

    def start(self, *, retries: int, concurrency: int, rpm: float | None) -> int:
        """Run to completion; returns the exit code."""
        self._say_notes()
        started = time.monotonic()
        try:
            asyncio.run(self._main(retries, concurrency, rpm))
        except KeyboardInterrupt:
            return self._interrupted(130)
        except asyncio.CancelledError:
            return self._interrupted(143 if self.terminated else 130)
        finally:
            self.batch.close()
        if self.not_sent[0]:
            self._say_not_sent()
        if not self.quiet:
            self._summary(time.monotonic() - started)
        code = self._exit_code()
        if code == 4:
            self._say_how_to_finish()
        return code

    def _say_notes(self) -> None:
        for text, (warning, line) in self.totals.notes.items():
            if warning or not self.quiet:
                where = f"line {line}: " if line is not None and self.totals.prompts > 1 else ""
                (render.warn if warning else render.note)(where + text)
        if self.skipped and not self.quiet:
            render.note(f"--resume: {self.skipped} image(s) already in {self.given_dir}, skipped")

    def _where(self, job: Job) -> str:
        return f"line {job.line}: " if job.line is not None and self.totals.prompts > 1 else ""

    async def _main(self, retries: int, concurrency: int, rpm: float | None) -> None:
        task = asyncio.current_task()
        assert task is not None

        def on_term() -> None:
            self.terminated = True
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        # Images stream to a hidden folder in the output directory, so saving one is a rename, and
        # memory stays flat whatever their size; the folder goes when the run ends, however it ends.
        spill_dir = self._spill_dir()
        if self.verbose:
            from ..transport import current_trace

            current_trace.set(render.trace)  # this task's context, inherited by the tasks it starts
        try:
            with self.progress:
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
        """Not sent because the credentials were refused: counted for one line at the end, and not
        in the manifest, so --resume sends them once the key is fixed."""
        self.not_sent[0] += images
        self.not_sent[1] += 1
        if self.json_lines:
            status = getattr(self.session.refused, "status", None)
            message = f"{images} image(s) not sent: the credentials were refused ({status}); fix them, then --resume"
            self._print_error_json(job, {"type": NotSentError.kind, "message": message, "status": None})

    def _say_not_sent(self) -> None:
        images, prompts = self.not_sent
        status = getattr(self.refused, "status", None)
        render.print_error(ImggenError(
            f"{images} image{'s' if images != 1 else ''} of {prompts} prompt{'s' if prompts != 1 else ''} "
            f"not sent: the provider refused the credentials ({status})",
            hint="Fix them, then run the same command with --resume to finish.",
        ))  # fmt: skip

    async def _execute(self, job: Job, session: Session) -> ImageResponse:
        async def save_all(images: list[ImageData]) -> None:
            for image in images:
                await self._save_one(job, image)

        hook = self.progress.hook(job.number, job.plan)
        return await execute(job.plan, on_event=hook, on_images=save_all, session=session)

    async def _save_one(self, job: Job, image: ImageData) -> None:
        try:
            await self._save(job, image)
        except (GenerationError, OutputError) as exc:
            self._failed(job, exc)
        self.progress.saved(job.number)

    def _spill_dir(self) -> Path:
        """The run's folder for streamed images; in the output directory it stays locked while the run
        lives, so the next run there removes it only if this one was killed (output.remove_leftovers)."""
        if self.to_stdout:
            return Path(tempfile.mkdtemp(prefix=".imggen-"))
        path, self.spill_lock = run_folder(self.directory)
        return path

    async def _save(self, job: Job, image: ImageData) -> None:
        if self.to_stdout:
            self._write_image_to_stdout(image.image_bytes())
            self.saved.append(Path("-"))
            return
        downloads = self.session.transport((), float(job.plan.settings.get("timeout", 600)))

        def record(name: str, sha256: str, size: int) -> None:
            fields = {"status": "saved", "index": image.index, "path": name, "cost_usd": image.cost_usd}
            self._record(job, {**fields, "sha256": sha256, "bytes": size})

        token = before_publish.set(record)  # the line goes in just before the file takes its name
        try:
            path = await save_image(image, job.plan.prompt, self.directory, job.namer, self.overwrite, downloads)
        finally:
            before_publish.reset(token)
        self.saved.append(path)
        self.costs.append(image.cost_usd)
        shown = path.name if self.given_dir in (".", "") else str(Path(self.given_dir) / path.name)
        if self.file is not None:
            self._say_file_type(path, shown)
        if self.json_lines:
            self._print_json(job, redact_upstream(self._image_json(job, shown, image)))
        else:
            self._print(shown)
        if self.metadata:
            write_sidecar(path, redact_upstream(metadata_for(self._response_stub(job), image)))

    def _say_file_type(self, path: Path, shown: str) -> None:
        """-o out.png and the provider sent a JPEG: the file is out.jpg, named for what it holds."""
        assert self.file is not None
        asked, got = KINDS[self.file.suffix[1:].lower()], KINDS[path.suffix[1:].lower()]
        if asked != got and not self.quiet and not self.said_file_type:
            self.said_file_type = True
            render.note(f"the provider sent a {got.upper()} image, not {asked.upper()}: saved as {shown}")

    def _write_image_to_stdout(self, data: bytes) -> None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as exc:
            render.silence_stdout()
            raise OutputError(f"cannot write the image to stdout: {exc.strerror or exc}") from exc

    def _print(self, line: str) -> None:
        """A line on stdout. Once stdout fails (a closed pipe, a full disk) the run goes on: images are
        still saved and recorded in the manifest, and the failure is said once."""
        if self.stdout_failed or self.progress.show(line):
            return
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except OSError as exc:
            self.stdout_failed = True
            render.silence_stdout()
            self._report(OutputError(
                f"cannot write to stdout: {exc.strerror or exc}",
                hint=f"The images are still saved in {self.given_dir} and listed in its manifest.",
            ))  # fmt: skip

    def _report(self, exc: ImggenError) -> None:
        """A failure of the run itself rather than of one image: counted once, said once."""
        self.failures.append(exc)
        render.print_error(exc)

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
                self._report(exc)

    def _response_stub(self, job: Job) -> ImageResponse:
        return ImageResponse(
            created=self.created, data=[], model=job.plan.settings.model.name, prompt=job.plan.prompt,
            parameters=plan_parameters(job.plan),
        )  # fmt: skip

    def _image_json(self, job: Job, shown: str, image: ImageData) -> dict[str, Any]:
        data = {
            "path": shown, "prompt": job.plan.prompt, "model": job.plan.settings.model.name, "index": image.index,
            "revised_prompt": image.revised_prompt, "url": image.url, "seed": image.seed,
            "size": image.size or job.plan.size, "cost_usd": image.cost_usd, "created": self.created,
            "text": image.text,
        }  # fmt: skip
        return data

    def _print_error_json(self, job: Job, error: dict[str, Any]) -> None:
        self._print_json(job, {"prompt": job.plan.prompt, "model": job.plan.settings.model.name, "error": error})

    def _print_json(self, job: Job, data: dict[str, Any]) -> None:
        """One --json line; in a batch it also says the prompt's input line."""
        self._print(json.dumps(data if job.line is None else {**data, "line": job.line}, ensure_ascii=False))

    def _failed(self, job: Job, exc: ImggenError) -> None:
        self.failures.append(exc)
        self.progress.failure()
        status = exc.status if isinstance(exc, GenerationError) else None
        self._record(job, {"status": "failed", "error": render.error_line(exc), "error_status": status})
        if self.json_lines:
            self._print_error_json(job, {"type": exc.kind, "message": render.error_line(exc), "status": status})
        render.print_error(exc, job.plan.prompt, self._where(job) + job.plan.settings.model.name)

    def _summary(self, elapsed: float) -> None:
        saved = len(self.saved)
        parts = [f"saved {saved} image{'s' if saved != 1 else ''}"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.not_sent[0]:
            parts.append(f"{self.not_sent[0]} not sent")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (--resume)")
        cost = None if self.costs.unknown else self.costs.total
        parts += [f"{elapsed:.1f} s", render.money(cost)]
        sys.stderr.write(" · ".join(parts) + "\n")

    def _exit_code(self) -> int:
        if self.refused is not None:
            return self.refused.exit_code  # the rest waits for a fixed key and --resume
        if not self.failures:
            return 0
        if self.saved:
            return 4
        return self.failures[0].exit_code

    def _interrupted(self, code: int) -> int:
        kept = len(self.saved)
        sys.stderr.write(f"interrupted: kept {kept} finished image{'s' if kept != 1 else ''}, no partial files\n")
        self._say_how_to_finish()
        return code

    def _say_how_to_finish(self) -> None:
        """The last line of an interrupted or partial run with a manifest: the command that finishes it."""
        if self.manifest is None:
            return
        from ..secrets import redact

        from_stdin = self.batch.source is not None and self.batch.source.path is None
        sys.stderr.write(redact(finish_line(sys.argv[1:], from_stdin)) + "\n")
        sys.stderr.flush()


def finish_line(args: list[str], from_stdin: bool) -> str:
    """`to finish: imggen generate … --resume`, the same arguments with --resume added once. stdin
    cannot be read again: its file is named when stdin was one, else the user is asked for the same input."""
    command = shlex.join(["imggen", *args, *([] if "--resume" in args else ["--resume"])])
    if not from_stdin:
        return f"to finish: {command}"
    known = stdin_file()
    if known is None:
        return "to finish: run the same command with the same input and --resume"
    return f"to finish: {command} < {shlex.quote(known)}"


def stdin_file() -> str | None:
    """The path of the regular file stdin was read from (`< prompts.txt`), when the system says it."""
    try:
        status = os.fstat(0)
        path = os.readlink("/proc/self/fd/0")
        same = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(status.st_mode) or (same.st_dev, same.st_ino) != (status.st_dev, status.st_ino):
        return None
    return path
