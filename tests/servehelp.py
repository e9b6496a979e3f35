"""`imggen serve` as a real subprocess for the proxy tests, and a real redis-server beside it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

MASTER_KEY = "sk-master-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """One `imggen serve --config` process; `stop()` sends SIGTERM and returns its exit code."""

    def __init__(
        self, tmp: Path, config: dict[str, Any], env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        path = tmp / f"proxy-{self.port}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = tmp / f"proxy-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imggen", "serve", "--config", str(path), "--port", str(self.port), *args],
            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )  # fmt: skip
        self._wait_up()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"imggen serve exited {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(self.base + "/health/liveliness", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("imggen serve did not come up: " + self.stderr())

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def post(self, body: dict[str, Any], key: str | None = MASTER_KEY, path: str = "/v1/images/generations",
             **kwargs: Any) -> httpx.Response:  # fmt: skip
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.base + path, json=body, headers=headers, timeout=30, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


class RedisServer:
    """A private redis-server on 127.0.0.1 (from the OS packages; .ci/run installs it)."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server; .ci/run does this)"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp), "--requirepass", "redis-test-password-1234"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def deployment(name: str, model: str, **params: Any) -> dict[str, Any]:
    info = params.pop("model_info", None)
    entry: dict[str, Any] = {"model_name": name, "litellm_params": {"model": model, **params}}
    if info:
        entry["model_info"] = info
    return entry


def proxy_config(*deployments: dict[str, Any], router: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"model_list": list(deployments), "general_settings": {"master_key": MASTER_KEY}}
    if router:
        config["router_settings"] = router
    return {**config, **more}
