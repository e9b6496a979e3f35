"""`imggen gallery DIR [-o FILE]`: a static HTML page of a folder's images (imggen/gallery.py writes it)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import UsageError

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
    from ..gallery import folder_items, write_page

    if not directory.is_dir():
        raise UsageError(f"{directory} is not a folder", hint="imggen gallery DIR: the folder the images are in.")
    page = output if output is not None else directory / PAGE_NAME
    if page.is_dir():
        raise UsageError(f"-o {page} is a folder", hint=f"Name the page's file, e.g. {page / PAGE_NAME}.")
    if not page.parent.is_dir():
        raise UsageError(f"cannot write {page}: {page.parent} does not exist")
    items = folder_items(directory)
    if not items:
        raise UsageError(f"no images in {directory}", hint="Generate some there: imggen generate PROMPT -o DIR")
    try:
        written = write_page(items, page, title=title or directory.absolute().name)
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
