"""`imggen serve`: the OpenAI-compatible images proxy (needs the `serve` extra: `pip install '.[serve]'`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError
from . import render

if TYPE_CHECKING:
    import socket

# module: package (python-multipart: starlette's form parser, for uploads to /v1/images/edits)
SERVE_MODULES = {
    "starlette": "starlette", "uvicorn": "uvicorn", "yaml": "PyYAML", "python_multipart": "python-multipart"
}  # fmt: skip


def serve(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", metavar="FILE", help="LiteLLM proxy config (YAML).", show_default=False
    ),
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST", help="Address to listen on."),
    port: int = typer.Option(4000, "--port", metavar="PORT", help="Port to listen on (1-65535)."),
    allow_origin: list[str] = typer.Option(
        [], "--allow-origin", metavar="ORIGIN",
        help="A browser origin (e.g. http://localhost:3000) whose pages may call the proxy (repeatable).",
    ),
    strict: bool = typer.Option(
        False, "--strict",
        help="Refuse to start (exit 3) when an os.environ/ reference is unset or Redis cannot be reached, "
        "instead of disabling that deployment or counting limits in this instance's memory.",
    ),
) -> None:  # fmt: skip
    """Serve the OpenAI images API (generations, edits, variations) for the deployments in a LiteLLM proxy config."""
    import importlib.util  # here, not at the top: every other command starts without them

    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise UsageError("Missing option '--config' / '-c'.", hint="See: imggen serve -h.")
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is out of range", hint="Give a port from 1 to 65535.")
    missing = [package for module, package in SERVE_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        # imggen is installed from a checkout (it is not on PyPI): 'imggen[serve]' would look for it there.
        raise UsageError(
            f"imggen serve needs {', '.join(missing)}",
            hint="Install the serve extra from imggen's source directory: pip install '.[serve]'.",
        )
    import uvicorn

    from ..catalog import all_models
    from ..proxy.app import create_app
    from ..proxy.config import load

    origins = [_origin(text) for text in allow_origin]
    all_models()  # a bad overlay (models.json in the config directory) is said as every command says it
    proxy_config = load(config, strict=strict)
    for text in proxy_config.warnings:
        render.warn(text)
    if strict and proxy_config.router.redis:
        _reach_redis(proxy_config.router.redis)
    import asyncio

    from ..proxy.teams import check_database

    asyncio.run(check_database(proxy_config.database_url))  # before listening: a bad database is one line
    sock = _listen(host, port)
    groups = proxy_config.groups()
    shared = proxy_config.router.redis
    where = f", limits shared through Redis at {shared['host']}:{shared['port']}" if shared else ""
    sys.stderr.write(
        f"imggen serve: {_address(sock)} - {len(proxy_config.deployments)} deployment(s) "
        f"in {len(groups)} model(s){where}\n"
    )
    fast = {name: importlib.util.find_spec(name) is not None for name in ("uvloop", "httptools")}
    settings = uvicorn.Config(
        create_app(proxy_config, origins), log_level="warning", access_log=False, server_header=False,
        loop="uvloop" if fast["uvloop"] else "asyncio", http="httptools" if fast["httptools"] else "h11",
    )  # fmt: skip
    uvicorn.Server(settings).run(sockets=[sock])


def _reach_redis(redis: dict[str, Any]) -> None:
    """--strict: Redis unreachable at start is exit 3, as it was before the fallback to memory."""
    import asyncio

    from ..errors import ConfigError
    from ..proxy.state import RedisState
    from ..secrets import redact

    async def ping() -> None:
        state = RedisState(str(redis["host"]), int(redis["port"]), redis["password"])
        try:
            await state.ping()
        finally:
            await state.aclose()

    try:
        asyncio.run(ping())
    except Exception as exc:
        raise ConfigError(
            f"cannot reach Redis at {redis['host']}:{redis['port']}: {redact(str(exc))}",
            hint="Start Redis or fix router_settings.redis_host/redis_port, or start without --strict.",
        ) from exc


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
            f"cannot listen on {f'[{host}]' if ':' in host else host}:{port}: {exc.strerror or exc}",
            hint="Pick another --port or --host.",
        ) from exc
    return sock


def _address(sock: socket.socket) -> str:
    """The address really listening (--host localhost may be ::1 or 127.0.0.1), IPv6 in brackets."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _origin(text: str) -> str:
    """An --allow-origin value as browsers send Origin: scheme://host[:port], nothing more."""
    from ..proxy.app import origin_key

    if origin_key(text) is None:
        raise UsageError(
            f"--allow-origin {text!r} is not an origin", hint="Give scheme://host[:port], e.g. http://localhost:3000."
        )
    return text.strip()


def spend(
    config: Path = typer.Option(
        ..., "--config", "-c", metavar="FILE", help="LiteLLM proxy config (YAML): its database.", show_default=False
    ),
    by: str = typer.Option("key", "--by", metavar="key|model|day", help="Group the totals by key, model or day."),
    since: str | None = typer.Option(None, "--since", metavar="DATE", help="From this UTC day on (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", metavar="DATE", help="Up to this UTC day, included."),
    json_out: bool = typer.Option(False, "--json", help="JSON Lines on stdout instead of a table."),
) -> None:
    """Spend from the proxy's spend log: requests, images and cost per key, model or day."""
    import asyncio
    import json

    missing = [package for module, package in TEAM_MODULES.items() if importlib_find(module) is None]
    if missing:
        raise UsageError(
            f"imggen serve spend needs {', '.join(missing)}",
            hint="Install the serve extra from imggen's source directory: pip install '.[serve]'.",
        )
    if by not in ("key", "model", "day"):
        raise UsageError(f"--by {by!r} is not key, model or day", hint="See: imggen serve spend -h.")
    from ..proxy.config import database_url_of
    from ..proxy.teams import spend_report

    try:
        rows = asyncio.run(spend_report(database_url_of(config), by, since, until))
    except ValueError as exc:
        raise UsageError(str(exc), hint="Give dates as YYYY-MM-DD.") from exc
    if json_out:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    width = max([len(by), *(len(str(r[by])) for r in rows)])
    sys.stdout.write(f"{by.upper():<{width}}  {'REQUESTS':>8}  {'IMAGES':>6}  {'SPEND (USD)':>12}\n")
    for r in rows:
        sys.stdout.write(f"{r[by]!s:<{width}}  {r['requests']:>8}  {r['images']:>6}  {r['spend']:>12.4f}\n")
    total = sum(r["spend"] for r in rows)
    sys.stdout.write(f"{'total':<{width}}  {sum(r['requests'] for r in rows):>8}  "
                     f"{sum(r['images'] for r in rows):>6}  {total:>12.4f}\n")  # fmt: skip


TEAM_MODULES = {"sqlalchemy": "SQLAlchemy", "aiosqlite": "aiosqlite", "yaml": "PyYAML"}


def importlib_find(module: str) -> object:
    import importlib.util

    return importlib.util.find_spec(module)
