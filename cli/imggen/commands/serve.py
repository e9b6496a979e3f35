"""`imggen serve`: the OpenAI-compatible images proxy (needs `pip install 'imggen[serve]'`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import UsageError
from . import render

if TYPE_CHECKING:
    import socket

SERVE_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn", "yaml": "PyYAML"}  # module: package


def serve(
    config: Path = typer.Option(..., "--config", "-c", help="LiteLLM proxy config (YAML).", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(4000, "--port", help="Port to listen on."),
) -> None:
    """Serve POST /v1/images/generations for the deployments in a LiteLLM proxy config."""
    import importlib.util  # here, not at the top: every other command starts without them

    missing = [package for module, package in SERVE_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(
            f"imggen serve needs {', '.join(missing)}", hint="Install the extra: pip install 'imggen[serve]'."
        )
    import uvicorn

    from ..proxy.app import create_app
    from ..proxy.config import load

    proxy_config = load(config)
    for text in proxy_config.warnings:
        render.warn(text)
    sock = _listen(host, port)
    groups = proxy_config.groups()
    shared = proxy_config.router.redis
    where = f", limits shared through Redis at {shared['host']}:{shared['port']}" if shared else ""
    sys.stderr.write(
        f"imggen serve: http://{host}:{port} - {len(proxy_config.deployments)} deployment(s) "
        f"in {len(groups)} model(s){where}\n"
    )
    fast = {name: importlib.util.find_spec(name) is not None for name in ("uvloop", "httptools")}
    settings = uvicorn.Config(
        create_app(proxy_config), log_level="warning", access_log=False, server_header=False,
        loop="uvloop" if fast["uvloop"] else "asyncio", http="httptools" if fast["httptools"] else "h11",
    )  # fmt: skip
    uvicorn.Server(settings).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """Bind before starting the server, so a taken port is one clear line and exit 2."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="Pick another --port or --host."
        ) from exc
    return sock
