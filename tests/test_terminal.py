"""At a real terminal (stderr a pty) the progress display must not take stdout: a pipeline or a file
receives every path or JSON line, even after Ctrl-C; the display fits 80 columns; an interrupted run
says how to finish it; -v shows each request without a secret."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from conftest import OPENAI_KEY, assert_no_secret, openai_env
from fakeserver import FakeProvider, Reply

GENERATIONS = "/v1/images/generations"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Terminal:
    """imggen with stderr on a pseudo-terminal of `columns` x `rows`; stdout a pipe, a file (`stdout=`)
    or the same terminal (`stdout="tty"`). What the terminal received is read as it comes, so a long
    display never blocks the process."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, stdout: IO[bytes] | str | None = None,
                 stdin: IO[bytes] | None = None, columns: int = 80, rows: int = 40) -> None:  # fmt: skip
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        out: Any = slave if stdout == "tty" else (stdout or subprocess.PIPE)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imggen", *args], stdout=out, stderr=slave,
            stdin=stdin if stdin is not None else subprocess.DEVNULL, env={**environ, "TERM": "xterm", **(env or {})},
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.received = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.received += chunk

    @property
    def screen(self) -> str:
        return bytes(self.received).decode("utf-8", "replace")

    def wait_for(self, ready: Callable[[], bool], limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while not ready():
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}): {self.screen}"
            assert time.monotonic() < deadline, f"never ready: {self.screen}"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        out, _ = self.proc.communicate(timeout=60)
        self.reader.join(timeout=10)
        os.close(self.master)
        return self.proc.returncode, (out or b"").decode(), self.screen


def run_at_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return Terminal(*args, env=env).finish()


def plain_lines(screen: str) -> list[str]:
    """The text of what was drawn: escape sequences removed, split at every line or carriage return."""
    return [line for line in re.split(r"\r\n|\n|\r", CSI.sub("", screen)) if line.strip()]


def cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def prompts_file(tmp_path: Path, count: int, text: str = "prompt") -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"{text} {i}\n" for i in range(1, count + 1)))
    return path


# Item 1: stdout carries the paths or JSON Lines while the display is on


def test_paths_reach_a_pipe_while_the_progress_display_is_on(tmp_path: Path) -> None:
    code, out, screen = run_at_terminal("generate", "otter", "-m", "placeholder", "-n", "3", "-o", "out")
    assert code == 0, screen
    assert len(out.splitlines()) == 3 and all(Path(p).is_file() for p in out.splitlines())
    assert "saved 3 images" in screen and "out/" not in screen


def test_paths_reach_a_file_while_the_progress_display_is_on(tmp_path: Path) -> None:
    with open(tmp_path / "paths.txt", "wb") as target:
        code, _, screen = Terminal("generate", "otter", "-m", "placeholder", "-n", "3", "-o", "out",
                                   stdout=target).finish()  # fmt: skip
    paths = (tmp_path / "paths.txt").read_text().splitlines()
    assert code == 0, screen
    assert len(paths) == 3 and all(Path(p).is_file() for p in paths)
    assert "\x1b" not in (tmp_path / "paths.txt").read_text()


def test_json_lines_of_a_batch_reach_a_pipe(fake: FakeProvider, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\n")
    code, out, screen = run_at_terminal(
        "generate", "--prompts-file", str(prompts), "-m", "dall-e-2", "--json", "-o", "out", env=openai_env(fake)
    )
    assert code == 0, screen
    assert sorted(json.loads(line)["prompt"] for line in out.splitlines()) == ["one", "two"]


def test_json_lines_of_a_stdin_batch_reach_a_file(fake: FakeProvider, tmp_path: Path) -> None:
    with open(prompts_file(tmp_path, 14), "rb") as stdin, open(tmp_path / "out.jsonl", "wb") as target:
        code, _, screen = Terminal("generate", "-", "-m", "dall-e-2", "--json", "-o", "out", env=openai_env(fake),
                                   stdin=stdin, stdout=target).finish()  # fmt: skip
    assert code == 0, screen
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["prompt"] for r in records) == sorted(f"prompt {i}" for i in range(1, 15))
    assert all((tmp_path / r["path"]).is_file() for r in records)
    assert "saved 14 images" in screen


def test_image_bytes_to_a_file_with_nothing_of_the_display(tmp_path: Path) -> None:
    with open(tmp_path / "otter.png", "wb") as target:
        code, _, screen = Terminal("generate", "otter", "-m", "placeholder", "-o", "-", stdout=target).finish()
    data = (tmp_path / "otter.png").read_bytes()
    assert code == 0, screen
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"\x1b[" not in data and b"saved" not in data


def test_paths_at_the_terminal_itself_are_printed_above_the_bar(tmp_path: Path) -> None:
    code, out, screen = Terminal("generate", "otter", "-m", "placeholder", "-n", "2", "-o", "out",
                                 stdout="tty").finish()  # fmt: skip
    assert code == 0, screen
    assert out == ""
    shown = plain_lines(screen)
    paths = [line.strip() for line in shown if line.strip().startswith("out/")]
    assert len(paths) == 2 and all((tmp_path / p).is_file() for p in paths), shown
    assert shown[-1].startswith("saved 2 images")


def test_json_lines_at_the_terminal_itself(fake: FakeProvider, tmp_path: Path) -> None:
    code, _, screen = Terminal("generate", "--prompts-file", str(prompts_file(tmp_path, 3)), "-m", "dall-e-2",
                               "--json", "-o", "out", env=openai_env(fake), stdout="tty").finish()  # fmt: skip
    assert code == 0, screen
    records = [json.loads(line) for line in plain_lines(screen) if line.lstrip().startswith("{")]
    assert sorted(r["prompt"] for r in records) == ["prompt 1", "prompt 2", "prompt 3"]


def slow_after(fake: FakeProvider, fast: int, *more: Reply) -> None:
    """`fast` answers at once, then `more`, then answers that take 20 s (the test interrupts them)."""
    fake.script(GENERATIONS, *([Reply()] * fast), *more, *([Reply(delay=20)] * 20))


def test_ctrl_c_mid_batch_keeps_the_lines_of_saved_images(fake: FakeProvider, tmp_path: Path) -> None:
    slow_after(fake, 2)
    prompts = prompts_file(tmp_path, 6)
    target_path = tmp_path / "out.jsonl"
    with open(target_path, "wb") as target:
        term = Terminal("generate", "--prompts-file", str(prompts), "-m", "dall-e-2", "--json", "-o", "out",
                        "-j", "1", env=openai_env(fake), stdout=target)  # fmt: skip
        term.wait_for(lambda: len(target_path.read_text().splitlines()) == 2 and "in flight" in term.screen)
        term.wait_for(lambda: len(fake.requests) >= 3)  # the third, slow request is out
        term.proc.send_signal(signal.SIGINT)
        code, _, screen = term.finish()
    assert code == 130, screen
    records = [json.loads(line) for line in target_path.read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["prompt 1", "prompt 2"]
    assert all((tmp_path / r["path"]).is_file() for r in records)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".imggen-manifest")) == sorted(
        Path(r["path"]).name for r in records
    )
    last = plain_lines(screen)[-1]
    assert "interrupted: kept 2 finished images" in screen
    assert last == "to finish: " + shlex.join(["imggen", "generate", "--prompts-file", str(prompts), "-m", "dall-e-2",
                                               "--json", "-o", "out", "-j", "1", "--resume"])  # fmt: skip
