"""Seeing what a run saved: `--open` (the system's viewer) and `--preview` (small pictures on stderr).

Who asked decides when: a flag given in the command is the user asking in that very command, so
`--open` opens even when stdout is a pipe; `open = true` in the config is a default for the terminal,
so it opens only when stdout is a terminal (a script's pipeline never gets windows from a user's
config). `--no-open` beats the config. Previews are drawn only when stderr is a terminal, whoever asked;
`--quiet` quiets the config's `preview = true`, not an explicit `--preview`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import render

MAX_OPEN = 20  # a viewer window per image: a hundred at once is never what was meant
MAX_PREVIEWS = 12
OPEN_WAIT = 2.0  # seconds to wait, in all, for the openers to say whether they failed


@dataclass
class Seeing:
    """What to do with a run's images once all are saved: open them, preview them (and say so when the
    terminal cannot: only when --preview itself was given)."""

    open: bool = False
    preview: bool = False
    hint: bool = False

    @property
    def paths_wanted(self) -> int:
        """How many saved paths the run keeps for this (it keeps none otherwise: memory stays flat)."""
        return max(self.open * MAX_OPEN, self.preview * MAX_PREVIEWS)


def choose(open_flag: bool | None, preview_flag: bool | None, config: object, *, quiet: bool) -> Seeing:
    """A flag given is the answer; else the config's default: `open` only when stdout is a terminal,
    `preview` unless --quiet. Previews need stderr to be a terminal, whoever asked."""
    opening = open_flag if open_flag is not None else bool(getattr(config, "open", None)) and sys.stdout.isatty()
    previewing = preview_flag if preview_flag is not None else bool(getattr(config, "preview", None)) and not quiet
    return Seeing(open=opening, preview=previewing and sys.stderr.isatty(), hint=preview_flag is True)


def show(seeing: Seeing, paths: list[Path], total: int) -> None:
    """Previews, then the viewer, for the first of the `total` images a run saved (not `-o -`'s stdout)."""
    files = [path for path in paths if str(path) != "-"]
    if files and seeing.preview:
        draw_previews(files, total, hint=seeing.hint)
    if files and seeing.open:
        open_files(files, total)


def draw_previews(files: list[Path], total: int, *, hint: bool) -> None:
    from ..preview import escapes, protocol

    kind = protocol(os.environ)
    if kind is None:
        if hint and os.environ.get("IMGGEN_PREVIEW", "").lower() != "none":
            render.note(
                "--preview: this terminal draws no pictures that imggen knows of (kitty, Ghostty, iTerm2, WezTerm, "
                "mintty and foot do); IMGGEN_PREVIEW=kitty, iterm or sixel names the one yours speaks"
            )
        return
    for path in files[:MAX_PREVIEWS]:
        try:
            drawn = escapes(path, kind)
        except Exception as exc:  # a file Pillow cannot read: the run's images are saved all the same
            render.warn(f"--preview: cannot draw {path.name}: {exc}")
            continue
        sys.stderr.write(f"{path.name}\n{drawn}")
        sys.stderr.flush()
    if total > MAX_PREVIEWS:
        render.note(f"--preview: drew the first {MAX_PREVIEWS} of {total} images")


def open_files(files: list[Path], total: int) -> None:
    """Each file with the system's viewer: xdg-open (Linux and the BSDs), open (macOS), the shell's
    association (Windows). A viewer that cannot be started is a warning: the images are saved."""
    shown = [path.absolute() for path in files[:MAX_OPEN]]  # never read as an option, whatever its name
    if total > MAX_OPEN:
        render.note(f"--open: opening the first {MAX_OPEN} of {total} images")
    if sys.platform == "win32":
        for path in shown:
            try:
                os.startfile(path)  # type: ignore[attr-defined,unused-ignore]  # Windows only
            except OSError as exc:
                render.warn(f"--open: cannot open {path}: {exc.strerror or exc}")
        return
    if sys.platform == "darwin":
        _launch([["open", *map(str, shown)]])  # one call: Preview takes them all in one window
    else:
        _launch([["xdg-open", str(path)] for path in shown])


def _launch(commands: list[list[str]]) -> None:
    """Start every opener in its own session (Ctrl-C in this terminal never reaches the viewer), with no
    terminal input or output, then wait a moment for those that fail at once to say so."""
    started = []
    for command in commands:
        try:
            started.append((command, subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.DEVNULL, start_new_session=True)))  # fmt: skip
        except OSError as exc:
            render.warn(f"--open: cannot run {command[0]}: {exc.strerror or exc}")
            return  # the same for every file
    deadline = time.monotonic() + OPEN_WAIT
    for command, process in started:
        try:
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue  # still running (some openers wait for the viewer): it was started
        if code:
            render.warn(f"--open: {command[0]} could not open {command[-1]} (exit {code})")
