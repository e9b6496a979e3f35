"""Ctrl-C and SIGTERM: finished images are kept, no partial file is left, exit 130 / 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import openai_env, run_cli
from fakeserver import FakeProvider, Reply


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_finished_images(fake: FakeProvider, tmp_path: Path, sig: int, code: int) -> None:
    fake.script("/images/generations", Reply(), Reply(delay=30), Reply(delay=30))
    args = ["generate", "otter", "-m", "dall-e-3", "-n", "3", "-j", "1", "-o", "out", "--name", "o-{index}.{ext}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggen", *args], env={**os.environ, **openai_env(fake)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline().decode().strip()
    assert first == "out/o-1.png"
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err.decode()
    assert rest == b""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".imggen-manifest.jsonl", "o-1.png"]
    assert b"interrupted" in err
    fake.clear_scripts()
    before = len(fake.requests)
    resumed = run_cli(*args, "--resume", env=openai_env(fake))
    assert resumed.code == 0, resumed.stderr
    assert sorted(resumed.lines) == ["out/o-2.png", "out/o-3.png"]
    assert len(fake.requests) - before == 2  # only the two missing images were paid for
