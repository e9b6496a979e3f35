"""Running the jobs of `imggen generate` (one per prompt): one scheduler for all, images saved as they
arrive, a manifest line per image or failure, a report, and the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import execute, plan_parameters
from ..batch import Session
from ..errors import GenerationError, ImggenError, OutputError, UsageError
from ..manifest import Manifest, job_key, sha256_of
from ..output import (
    DEFAULT_NAME,
    EXTENSIONS,
    Namer,
    before_publish,
    check_template,
    is_image,
    metadata_for,
    prepare_directory,
    remove_leftovers,
    run_folder,
    save_image,
    write_sidecar,
)
from ..plan import Plan, skip_done
from ..types import ImageData, ImageResponse
from . import render
from .progress import Progress


@dataclass
class Job:
    """One prompt of the run; `line` is its input line number in a batch, None for a lone prompt."""

    plan: Plan
    line: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        check_template(self.name or DEFAULT_NAME)
        self.namer = Namer(self.name or DEFAULT_NAME, self.plan.settings.model.name)
        self.key = job_key(self.plan.prompt, self.plan.settings.model.name, plan_parameters(self.plan))
        self.saved = 0


class Run:
    stdout_failed = False  # stdout was closed or full: the run goes on, saying so once
    manifest_failed = False  # a manifest line could not be written: said once

    def __init__(
        self, jobs: list[Job], *, overwrite: bool, metadata: bool, json_lines: bool, quiet: bool, resume: bool
    ) -> None:
        self.jobs = jobs
        first = jobs[0].plan.settings
        self.overwrite, self.metadata, self.json_lines, self.quiet = overwrite, metadata, json_lines, quiet
        self.given_dir = str(first.get("output_dir", "."))
        self.to_stdout = self.given_dir == "-"
        self.directory = Path(self.given_dir)
        self.saved: list[Path] = []
        self.failures: list[ImggenError] = []
        self.costs: list[float | None] = []
        self.terminated = False
        self.created = int(time.time())
        self.progress = Progress([job.plan for job in jobs], enabled=not quiet)
        self._check_target()
        self.manifest = None if self.to_stdout else Manifest(self.directory)
        self.skipped = self._resume() if resume and self.manifest else 0

    def _check_target(self) -> None:
        if not self.to_stdout:
            prepare_directory(self.directory)
            Manifest(self.directory).check()
            removed = remove_leftovers(self.directory)
            if removed and not self.quiet:
                render.note(f"removed {removed} temporary file(s) left by an interrupted run in {self.given_dir}")
            return
        if len(self.jobs) != 1 or self.jobs[0].plan.n != 1:
            raise UsageError("-o - writes exactly one image to stdout", hint="Use -o DIR for more.")
        if self.json_lines or self.metadata:
            raise UsageError("-o - cannot be combined with --json or --metadata", hint="Use -o DIR.")
        if render.STDOUT_CLOSED:
            raise UsageError("-o - writes the image to stdout, and stdout is closed", hint="Redirect it to a file.")
        if sys.stdout.isatty():
            raise UsageError("-o - would write image bytes to the terminal", hint="Redirect stdout to a file.")

    def check_budget(self, max_cost: float | None) -> None:
        """--max-cost: refuse before sending when the estimate of what is left to make is above it."""
        if max_cost is None:
            return
        total = 0.0
        for job in self.jobs:
            left = sum(r.n for r in job.plan.requests)
            if left and job.plan.cost_usd is None:
                raise UsageError(
                    f"--max-cost cannot be checked: the catalog has no price for {job.plan.settings.model.name}",
                    hint="Leave out --max-cost, or pick a model with a known price.",
                )
            total += (job.plan.cost_usd or 0.0) * left / job.plan.n
        if total > max_cost:
            raise UsageError(
                f"the estimated cost ${total:.4f} is above --max-cost ${max_cost:g}", hint="Nothing was sent."
            )

    def _resume(self) -> int:
        assert self.manifest is not None
        done = self.manifest.done()
        self._warn_bad_lines(self.manifest.bad_lines)
        if self.manifest.bad_lines:  # lines cut short: their images may be on disk all the same
            for job in self.jobs:
                done.setdefault(job.key, set()).update(self._recover(job, done.get(job.key, set())))
        return sum(skip_done(job.plan, done.get(job.key, set())) for job in self.jobs)

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
            names = {job.namer.render(job.plan.prompt, index, seed, ext) for ext in EXTENSIONS.values()}
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
            responses = asyncio.run(self._main(retries, concurrency, rpm))
        except KeyboardInterrupt:
            return self._interrupted(130)
        except asyncio.CancelledError:
            return self._interrupted(143 if self.terminated else 130)
        for job, response in zip(self.jobs, responses, strict=True):
            for exc in response.errors:
                self._failed(job, exc)
        if not self.quiet:
            self._summary(time.monotonic() - started)
        return self._exit_code()

    def _say_notes(self) -> None:
        seen: set[str] = set()
        for job in self.jobs:
            for text in ([] if self.quiet else job.plan.notes) + job.plan.warnings:
                if text not in seen:
                    seen.add(text)
                    (render.warn if text in job.plan.warnings else render.note)(self._where(job) + text)
        if self.skipped and not self.quiet:
            render.note(f"--resume: {self.skipped} image(s) already in {self.given_dir}, skipped")

    def _where(self, job: Job) -> str:
        return f"line {job.line}: " if job.line is not None and len(self.jobs) > 1 else ""

    async def _main(self, retries: int, concurrency: int, rpm: float | None) -> list[ImageResponse]:
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
        try:
            with self.progress:
                async with Session(retries=retries, concurrency=concurrency, rpm=rpm, spill_dir=spill_dir) as session:
                    self.session = session
                    runs = [self._execute(job, session) for job in self.jobs]
                    return list(await asyncio.gather(*runs))
        finally:
            shutil.rmtree(spill_dir, ignore_errors=True)
            if self.manifest is not None:
                self.manifest.close()

    async def _execute(self, job: Job, session: Session) -> ImageResponse:
        async def save_all(images: list[ImageData]) -> None:
            for image in images:
                await self._save_one(job, image)

        return await execute(job.plan, on_event=self.progress.hook(job.plan), on_images=save_all, session=session)

    async def _save_one(self, job: Job, image: ImageData) -> None:
        try:
            await self._save(job, image)
        except (GenerationError, OutputError) as exc:
            self._failed(job, exc)
        self.progress.saved(job.plan)

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
        if self.json_lines:
            self._print(json.dumps(self._image_json(job, shown, image), ensure_ascii=False))
        else:
            self._print(shown)
        if self.metadata:
            write_sidecar(path, metadata_for(self._response_stub(job), image))

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
        if self.stdout_failed:
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
        return data if job.line is None else {**data, "line": job.line}

    def _failed(self, job: Job, exc: ImggenError) -> None:
        self.failures.append(exc)
        status = exc.status if isinstance(exc, GenerationError) else None
        self._record(job, {"status": "failed", "error": render.error_line(exc), "error_status": status})
        if self.json_lines:
            error = {"type": exc.kind, "message": render.error_line(exc), "status": status}
            line = {"prompt": job.plan.prompt, "model": job.plan.settings.model.name, "error": error}
            self._print(json.dumps(line if job.line is None else {**line, "line": job.line}, ensure_ascii=False))
        render.print_error(exc, job.plan.prompt, self._where(job) + job.plan.settings.model.name)

    def _summary(self, elapsed: float) -> None:
        saved = len(self.saved)
        parts = [f"saved {saved} image{'s' if saved != 1 else ''}"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (--resume)")
        cost = None if None in self.costs else sum(c for c in self.costs if c is not None)
        parts += [f"{elapsed:.1f} s", render.money(cost)]
        sys.stderr.write(" · ".join(parts) + "\n")

    def _exit_code(self) -> int:
        if not self.failures:
            return 0
        if self.saved:
            return 4
        return self.failures[0].exit_code

    def _interrupted(self, code: int) -> int:
        kept = len(self.saved)
        sys.stderr.write(f"interrupted: kept {kept} finished image{'s' if kept != 1 else ''}, no partial files\n")
        return code
