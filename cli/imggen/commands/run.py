"""Rendering a run of `imggen generate` (the library's runner.Runner: one scheduler for all, images
saved as they arrive, a manifest line per image or failure): progress, a line per image on stdout
(or --json), notes, errors, the summary, the exit code, and `-o -` (the image on stdout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ImggenError, NotSentError, OutputError, UsageError, error_line
from ..jobs import Batch, Job
from ..output import KINDS
from ..runner import Runner
from ..secrets import redact_upstream
from ..types import ImageData
from . import render
from .progress import Progress


class Run(Runner):
    stdout_failed = False  # stdout was closed or full: the run goes on, saying so once
    said_file_type = False  # -o out.png got another type of image: said once
    keep_paths = 0  # the first saved paths kept in `kept`, for --open and --preview (commands/show.py)

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
        log_as: str | None = None,
    ) -> None:
        self.verbose = verbose
        self.json_lines, self.quiet = json_lines, quiet
        self.terminated = False
        self.kept: list[Path] = []
        super().__init__(batch, overwrite=overwrite, metadata=metadata, resume=resume)
        self.progress = Progress(self.totals.prompts, self.totals.images, self.totals.rows, enabled=not quiet)
        self.progress.traced = verbose  # -v says each retry itself
        self.check()
        if log_as is not None:
            self._log_as(log_as)

    def _log_as(self, command: str) -> None:
        """Each saved image goes to the log (`imggen logs`) unless IMGGEN_NO_LOG or `log = false` says not."""
        from ..logdb import Recorder, enabled

        if enabled(self.batch.config.log):
            self.recorder = Recorder(command, render.warn)

    def finish_log(self, code: int) -> int:
        """The run's exit status, on its entries in the log."""
        if self.recorder is not None:
            self.recorder.finish(code)
        return code

    def note(self, text: str) -> None:
        if not self.quiet:
            render.note(text)

    def warn(self, text: str) -> None:
        render.warn(text)

    def _check_target(self) -> None:
        if not self.to_stdout:
            super()._check_target()
            return
        if self.file is not None:
            self._check_file()
        if self.totals.prompts != 1 or self.totals.first is None or self.totals.first.n != 1:
            raise UsageError("-o - writes exactly one image to stdout", hint="Use -o DIR for more.")
        if self.json_lines or self.metadata:
            raise UsageError("-o - cannot be combined with --json or --metadata", hint="Use -o DIR.")
        if render.STDOUT_CLOSED:
            raise UsageError("-o - writes the image to stdout, and stdout is closed", hint="Redirect it to a file.")
        if sys.stdout.isatty():
            raise UsageError("-o - would write image bytes to the terminal", hint="Redirect stdout to a file.")

    def start(self, *, retries: int, concurrency: int, rpm: float | None) -> int:
        """Run to completion; returns the exit code (also the log's, for this run's entries)."""
        return self.finish_log(self._start(retries, concurrency, rpm))

    def _start(self, retries: int, concurrency: int, rpm: float | None) -> int:
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
        if self.verbose:
            from ..transport import current_trace

            current_trace.set(render.trace)  # this task's context, inherited by the tasks it starts
        await self.main(retries, concurrency, rpm)

    def displaying(self) -> Progress:
        return self.progress

    def event_hook(self, job: Job) -> Any:
        return self.progress.hook(job.number, job.plan)

    def on_image_done(self, job: Job) -> None:
        self.progress.saved(job.number)

    def on_failure_counted(self) -> None:
        self.progress.failure()

    def on_unsent(self, job: Job, images: int) -> None:
        """Counted for one line at the end."""
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

    async def _save(self, job: Job, image: ImageData) -> None:
        if self.to_stdout:
            self._write_image_to_stdout(image.image_bytes())
            self.saved.append(Path("-"))
            return
        await super()._save(job, image)

    def on_saved(self, job: Job, path: Path, image: ImageData) -> None:
        shown = path.name if self.given_dir in (".", "") else str(Path(self.given_dir) / path.name)
        if len(self.kept) < self.keep_paths:
            self.kept.append(path)
        if self.file is not None:
            self._say_file_type(path, shown)
        if self.json_lines:
            self._print_json(job, redact_upstream(self._image_json(job, shown, image)))
        else:
            self._print(shown)

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
            self.report(OutputError(
                f"cannot write to stdout: {exc.strerror or exc}",
                hint=f"The images are still saved in {self.given_dir} and listed in its manifest.",
            ))  # fmt: skip

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

    def report(self, exc: ImggenError) -> None:
        """A failure of the run itself rather than of one image: counted once, said once."""
        self.failures.append(exc)
        render.print_error(exc)

    def on_failed(self, job: Job, exc: ImggenError, status: int | None) -> None:
        if self.json_lines:
            self._print_error_json(job, {"type": exc.kind, "message": error_line(exc), "status": status})
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
