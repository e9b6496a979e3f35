"""imggen with stdout or stderr (or both) a pseudo-terminal, as a user at a terminal runs it."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from dataclasses import dataclass


@dataclass
class AtTerminal:
    code: int
    screen: str  # what the terminal showed (the streams given to it, in order, \r\n as \n)
    stdout: str  # stdout when it was a pipe
    stderr: str  # stderr when it was a pipe


def at_terminal(
    *args: str, columns: int = 80, env: dict[str, str] | None = None, streams: tuple[str, ...] = ("stdout",)
) -> AtTerminal:
    """`python -m imggen ARGS` with `streams` on a pseudo-terminal of `columns` columns (its real window
    size, not $COLUMNS), the others on pipes; TERM=xterm unless `env` says otherwise."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    chunks: list[bytes] = []

    def drain() -> None:  # read while it writes: more than the pty's buffer would block it
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        where = {name: (slave if name in streams else subprocess.PIPE) for name in ("stdout", "stderr")}
        full_env = {**clean, "TERM": "xterm", **(env or {})}
        command = [sys.executable, "-m", "imggen", *args]
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, env=full_env, timeout=60, **where)  # type: ignore[call-overload]
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    text = [(stream or b"").decode("utf-8", "replace") for stream in (proc.stdout, proc.stderr)]
    return AtTerminal(proc.returncode, screen, *text)
