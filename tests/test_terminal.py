"""At a real terminal (stderr a pty) with stdout a pipe, the progress display must not take stdout:
a pipeline receives every path or JSON line."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import openai_env
from fakeserver import FakeProvider


def run_at_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "imggen", *args], stdout=subprocess.PIPE, stderr=slave,
            stdin=subprocess.DEVNULL, env={**os.environ, "TERM": "xterm", **(env or {})}, timeout=60,
        )  # fmt: skip
    finally:
        os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    return proc.returncode, proc.stdout.decode(), screen.decode("utf-8", "replace")


def test_paths_reach_a_pipe_while_the_progress_display_is_on(tmp_path: Path) -> None:
    code, out, screen = run_at_terminal("generate", "otter", "-m", "placeholder", "-n", "3", "-o", "out")
    assert code == 0, screen
    assert len(out.splitlines()) == 3 and all(Path(p).is_file() for p in out.splitlines())
    assert "saved 3 images" in screen and "out/" not in screen


def test_json_lines_of_a_batch_reach_a_pipe(fake: FakeProvider, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\n")
    code, out, screen = run_at_terminal(
        "generate", "--prompts-file", str(prompts), "-m", "dall-e-2", "--json", "-o", "out", env=openai_env(fake)
    )
    assert code == 0, screen
    assert sorted(json.loads(line)["prompt"] for line in out.splitlines()) == ["one", "two"]
