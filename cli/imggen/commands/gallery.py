"""`imggen gallery DIR [-o FILE]`: a static HTML page of a folder's images (imggen/gallery.py writes it)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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

    try:
        written = write_page(items, page, title=title)
    except OSError as exc:
        raise UsageError(f"cannot write {page}: {exc.strerror or exc}") from exc
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
