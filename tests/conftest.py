"""Tests are isolated by construction: a private config dir and HOME, no provider credentials from
the machine, and a real HTTP server on 127.0.0.1 standing in for each provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import forkserver
from fakeserver import FakeProvider

SCRUBBED_PREFIXES = ("OPENAI_", "AZURE_", "AWS_", "GOOGLE_", "GEMINI_", "VERTEX", "IMGGEN_", "HTTP_PROXY",
                     "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")  # fmt: skip
OPENAI_KEY = "sk-test-openai-0123456789"
AZURE_KEY = "azure-test-key-abcdef123456"
AZURE_AD_TOKEN = "eyJ-test-ad-token-xyz987"
SECRETS = (OPENAI_KEY, AZURE_KEY, AZURE_AD_TOKEN)
TODAY = "2026-11-30"  # the day the suite's lifecycle statuses are computed for (catalog.today())


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(SCRUBBED_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("IMGGEN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))  # the log, the batch ledger: the test's own
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # boto3's chain must never reach past loopback
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # nor google-auth's (the GCE metadata server)
    monkeypatch.setenv("IMGGEN_TODAY", TODAY)  # lifecycle statuses never follow the machine's clock
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


@pytest.fixture
def tls_fake(tmp_path: Path) -> Iterator[FakeProvider]:
    server = FakeProvider()
    server.start(tls_dir=tmp_path)
    yield server
    server.stop()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    raw: bytes

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def everything(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 60) -> Result:
    """imggen as a user runs it: a real process, its exit code, stdout and stderr (forked from a process that
    has done what every `python -m imggen` does first: tests/forkserver.py; IMGGEN_TESTS_FORKSERVER=0 for a
    plain `python -m imggen` each time)."""
    full_env = {**os.environ, **(env or {})}
    forked = forkserver.run(list(args), full_env, os.getcwd(), input, timeout)
    if forked is not None:
        code, stdout, stderr = forked
        return Result(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), stdout)
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}  # as in CI: no terminal
    proc = subprocess.run([sys.executable, "-m", "imggen", *args], env=full_env, capture_output=True, timeout=timeout,
                          **stdin)  # fmt: skip
    out = proc.stdout.decode("utf-8", "replace")
    return Result(proc.returncode, out, proc.stderr.decode("utf-8", "replace"), proc.stdout)


def wait_for(check: Any, seconds: float = 30) -> None:
    """Poll `check` every 50 ms until it is true; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """`imggen serve` on a private port with a config (servehelp.Served), stopped after the test."""
    from servehelp import Served

    started: list[Served] = []

    def run(config: dict[str, Any], env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Served:
        served = Served(tmp_path, config, env, args)
        started.append(served)
        return served

    yield run
    for served in started:
        served.stop()


def openai_env(fake: FakeProvider) -> dict[str, str]:
    return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.openai_base}


def azure_env(fake: FakeProvider) -> dict[str, str]:
    return {"AZURE_API_KEY": AZURE_KEY, "AZURE_API_BASE": fake.base_url}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
