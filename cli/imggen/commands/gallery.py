"""`imggen gallery DIR [-o FILE]`: a static HTML page of a folder's images (imggen/gallery.py writes it)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError

if TYPE_CHECKING:
    from ..gallery import Item

PAGE_NAME = "gallery.html"


def gallery(
    directory: Path = typer.Argument(..., metavar="DIR", help="The folder of images (its manifest and sidecars)."),
    output: Path | None = typer.Option(
        None, "-o", "--output", metavar="FILE", help=f"The page to write (default: DIR/{PAGE_NAME})."
    ),
    title: str | None = typer.Option(None, "--title", metavar="TEXT", help="The page's title (default: DIR's name)."),
    open_page: bool = typer.Option(False, "--open", help="Open the page in the system's browser."),
    quiet: bool = typer.Option(False, "--quiet", help="No summary on stderr."),
) -> None:
    """Write a self-contained HTML page of a folder's images: thumbnails with prompt, model, seed, size,
    cost and date, a filter box, the full image on a click, arrow keys to move. Works offline; the
    thumbnails are made once into .imggen-thumbs/ beside the page and reused."""
    from ..gallery import folder_items

    if not directory.is_dir():
        raise UsageError(f"{directory} is not a folder", hint="imggen gallery DIR: the folder the images are in.")
    page = output if output is not None else directory / PAGE_NAME
    check_page(page)
    items = folder_items(directory)
    if not items:
        raise UsageError(f"no images in {directory}", hint="Generate some there: imggen generate PROMPT -o DIR")
    publish(items, page, title or directory.absolute().name, quiet=quiet, open_page=open_page)


def check_page(page: Path) -> None:
    """Refuse a page that cannot be written before any work is done."""
    if page.is_dir():
        raise UsageError(f"-o {page} is a folder", hint=f"Name the page's file, e.g. {page / PAGE_NAME}.")
    if not page.parent.is_dir():
        raise UsageError(f"cannot write {page}: {page.parent} does not exist")


def publish(items: Sequence[Item], page: Path, title: str, *, quiet: bool, open_page: bool) -> None:
    """Write the page of `items` (`imggen gallery`, `imggen logs --html`): its path on stdout, what was
    done on stderr, then the browser if asked."""
    from ..gallery import write_page

    making = Making(enabled=not quiet)
    try:
        with terminated_as_interrupt():
            written = write_page(items, page, title=title, tick=making.tick)
    except OSError as exc:
        raise UsageError(f"cannot write {page}: {exc.strerror or exc}") from exc
    except (KeyboardInterrupt, Terminated) as exc:
        making.stop()
        made = making.done
        sys.stderr.write(
            f"interrupted: {made} thumbnail{'s' if made != 1 else ''} made and kept for the next run; no page written\n"
        )
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
    finally:
        making.stop()
    sys.stdout.write(f"{page}\n")
    if not quiet:
        parts = [f"{written.images} image{'s' if written.images != 1 else ''}",
                 f"{written.thumbs_made} thumbnail{'s' if written.thumbs_made != 1 else ''} made",
                 f"{written.thumbs_reused} reused"]  # fmt: skip
        if written.thumbs_failed:
            parts.append(f"{written.thumbs_failed} unreadable (shown full size)")
        sys.stderr.write(" · ".join(parts) + "\n")
    if open_page:
        from .show import open_files

        open_files([page], 1)


class Making:
    """A bar on stderr while thumbnails are made, at a terminal only: a first run over a big folder
    takes a while (a 1024x1024 PNG is ~17 ms of CPU to decode). Counts them for an interrupt's line."""

    def __init__(self, *, enabled: bool) -> None:
        from . import render

        self.enabled = enabled and render.live_stderr()
        self.done = 0
        self.bar: Any = None
        self.task: Any = None

    def tick(self, done: int, total: int) -> None:
        self.done = done
        if not self.enabled or total == 0:
            return
        if self.bar is None:
            self.bar = _bar()
            self.task = self.bar.add_task("making thumbnails", total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _bar() -> Any:
    """Rich's progress on stderr (never stdout: the page's path goes there), gone when it ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from . import render
    from .progress import BAR_WIDTH

    columns = (TextColumn("{task.description}"), BarColumn(bar_width=BAR_WIDTH), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    return Progress(*columns, console=render.stderr_console(), transient=True, redirect_stdout=False)


class Terminated(BaseException):
    """SIGTERM while thumbnails are made: ended like a Ctrl-C (the ones being made finish whole, no
    temporary file is left), exit 143."""


@contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise Terminated

    try:
        before = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a caller running the command in a thread): its own handling stands
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
