"""The CLI tests' fork server (tests/forkserver.py) is a faithful `python -m imggen`: the same exit code,
stdout and stderr, byte for byte, as a fresh interpreter, for each kind of run the tests make."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import forkserver

RUNS = [
    (["--help"], None),
    (["--version"], None),
    (["generate", "--bogus"], None),  # a usage error: exit 2
    (["serve"], None),  # a missing option
    (["models", "show", "dall-e-3"], None),
    (["generate", "-", "-m", "placeholder", "--dry-run", "--json"], b"otter\nheron\n"),  # stdin
    (["config", "path"], None),
    (["generate", "otter", "-m", "dall-e-3", "--dry-run"], None),  # no key: exit 3, its hint
]


@pytest.mark.skipif(forkserver.DISABLED, reason="no fork server on this platform (or turned off)")
@pytest.mark.parametrize(("argv", "stdin"), RUNS, ids=[" ".join(a) for a, _ in RUNS])
def test_a_forked_run_is_a_fresh_run(tmp_path: Path, argv: list[str], stdin: bytes | None) -> None:
    answers = []
    for way in ("forked", "fresh"):
        cwd = tmp_path / way
        cwd.mkdir()
        env = {**os.environ, "COLUMNS": "100"}  # the autouse fixture's HOME and config dir, shared
        if way == "forked":
            forked = forkserver.run(argv, env, str(cwd), stdin, 60)
            assert forked is not None
            answers.append(forked)
        else:
            how = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
            done = subprocess.run([sys.executable, "-m", "imggen", *argv], env=env, cwd=cwd, capture_output=True,
                                  timeout=60, **how)  # fmt: skip
            answers.append((done.returncode, done.stdout, done.stderr))
    forked_answer, fresh_answer = answers
    assert forked_answer == fresh_answer


@pytest.mark.skipif(forkserver.DISABLED, reason="no fork server on this platform (or turned off)")
def test_an_environment_the_interpreter_reads_at_start_gets_a_fresh_run() -> None:
    assert forkserver.run(["--version"], {**os.environ, "PYTHONIOENCODING": "latin-1"}, os.getcwd(), None, 60) is None
