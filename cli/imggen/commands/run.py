"""Running a plan for `imggen generate`: save images as they arrive, report, pick the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..api import execute
from ..errors import GenerationError, ImggenError, OutputError, UsageError
from ..output import DEFAULT_NAME, Namer, check_template, metadata_for, prepare_directory, save_image, write_sidecar
from ..plan import Plan
from ..transport import Transport
from ..types import ImageData, ImageResponse
from . import render
from .progress import Progress


class Run:
    def __init__(
        self, plan: Plan, *, name: str | None, overwrite: bool, metadata: bool, json_lines: bool, quiet: bool
    ) -> None:
        self.plan = plan
        self.namer = Namer(name or DEFAULT_NAME, plan.settings.model.name)
        self.overwrite, self.metadata, self.json_lines, self.quiet = overwrite, metadata, json_lines, quiet
        self.to_stdout = str(plan.settings.get("output_dir")) == "-"
        self.directory = Path(str(plan.settings.get("output_dir", ".")))
        self.saved: list[Path] = []
        self.failures: list[ImggenError] = []
        self.terminated = False
        self.created = int(time.time())
        self.progress = Progress(plan, enabled=not quiet)
        check_template(name or DEFAULT_NAME)
        self._check_target()

    def _check_target(self) -> None:
        if not self.to_stdout:
            prepare_directory(self.directory)
            return
        if self.plan.n != 1:
            raise UsageError(f"-o - writes one image to stdout, but -n is {self.plan.n}", hint="Use -o DIR.")
        if self.json_lines or self.metadata:
            raise UsageError("-o - cannot be combined with --json or --metadata", hint="Use -o DIR.")
        if sys.stdout.isatty():
            raise UsageError("-o - would write image bytes to the terminal", hint="Redirect stdout to a file.")

    def start(self, *, retries: int, concurrency: int) -> int:
        """Run to completion; returns the exit code."""
        if not self.quiet:
            for text in self.plan.notes:
                render.note(text)
        for text in self.plan.warnings:
            render.warn(text)
        started = time.monotonic()
        try:
            response = asyncio.run(self._main(retries, concurrency))
        except KeyboardInterrupt:
            return self._interrupted(130)
        except asyncio.CancelledError:
            return self._interrupted(143 if self.terminated else 130)
        self._report(response, time.monotonic() - started)
        return self._exit_code()

    async def _main(self, retries: int, concurrency: int) -> ImageResponse:
        task = asyncio.current_task()
        assert task is not None

        def on_term() -> None:
            self.terminated = True
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        timeout = float(self.plan.settings.get("timeout", 600))
        with self.progress:
            async with Transport(timeout=timeout, retries=retries) as downloads:
                self.downloads = downloads
                return await execute(
                    self.plan, retries=retries, concurrency=concurrency,
                    on_event=self.progress.event, on_images=self._save_all,
                )  # fmt: skip

    async def _save_all(self, images: list[ImageData]) -> None:
        for image in images:
            try:
                await self._save(image)
            except (GenerationError, OutputError) as exc:
                self.failures.append(exc)
                self._report_failure(exc)
            self.progress.saved()

    async def _save(self, image: ImageData) -> None:
        if self.to_stdout:
            sys.stdout.buffer.write(image.image_bytes())
            sys.stdout.buffer.flush()
            self.saved.append(Path("-"))
            return
        path = await save_image(image, self.plan.prompt, self.directory, self.namer, self.overwrite, self.downloads)
        self.saved.append(path)
        shown = self._shown(path)
        if self.metadata:
            write_sidecar(path, metadata_for(self._response_stub(), image))
        if self.json_lines:
            render.print_json(self._image_json(shown, image))
        else:
            sys.stdout.write(f"{shown}\n")
            sys.stdout.flush()

    def _shown(self, path: Path) -> str:
        """The output directory as given, joined with the file name."""
        given = str(self.plan.settings.get("output_dir", "."))
        return path.name if given in (".", "") else str(Path(given) / path.name)

    def _response_stub(self) -> ImageResponse:
        from ..api import plan_parameters

        return ImageResponse(
            created=self.created, data=[], model=self.plan.settings.model.name, prompt=self.plan.prompt,
            parameters=plan_parameters(self.plan),
        )  # fmt: skip

    def _image_json(self, shown: str, image: ImageData) -> dict[str, Any]:
        return {
            "path": shown, "prompt": self.plan.prompt, "model": self.plan.settings.model.name,
            "index": image.index, "revised_prompt": image.revised_prompt, "url": image.url, "seed": image.seed,
            "size": image.size or self.plan.size, "cost_usd": image.cost_usd, "created": self.created,
            "text": image.text,
        }  # fmt: skip

    def _report_failure(self, exc: ImggenError) -> None:
        if self.json_lines:
            status = exc.status if isinstance(exc, GenerationError) else None
            error = {"type": exc.kind, "message": render.error_line(exc), "status": status}
            render.print_json({"prompt": self.plan.prompt, "model": self.plan.settings.model.name, "error": error})
        render.print_error(exc, self.plan.prompt, self.plan.settings.model.name)

    def _report(self, response: ImageResponse, elapsed: float) -> None:
        for exc in response.errors:
            self.failures.append(exc)
            self._report_failure(exc)
        if not self.quiet:
            self._summary(response, elapsed)

    def _summary(self, response: ImageResponse, elapsed: float) -> None:
        saved = len(self.saved)
        parts = [f"saved {saved} image{'s' if saved != 1 else ''}"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        parts += [f"{elapsed:.1f} s", render.money(_saved_cost(response))]
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


def _saved_cost(response: ImageResponse) -> float | None:
    costs = [image.cost_usd for image in response.data]
    if any(c is None for c in costs):
        return None
    return sum(c for c in costs if c is not None)
