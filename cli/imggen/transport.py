"""The one HTTP client: timeouts, proxies and CA bundles, and the retry loop."""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from .errors import GenerationError, NetworkError
from .types import HttpRequest

RETRY_STATUSES = frozenset({408, 409, 429})
_HTTP_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_BODY_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})
MAX_RETRY_AFTER = 120.0  # like the OpenAI SDK: a longer wait is not worth holding the run for

RetryHook = Callable[[int, float, GenerationError], None]
# The hook of the request being sent, set per task so a shared Transport reports to the right prompt.
current_retry_hook: ContextVar[RetryHook | None] = ContextVar("current_retry_hook", default=None)
ErrorMapper = Callable[[httpx.Response], GenerationError]
Outcome = tuple[GenerationError | None, Any]  # (None, result) or (error, wait: seconds | None | False)


def ca_verify(ca_env: tuple[str, ...]) -> ssl.SSLContext:
    """A CA bundle from the provider's own variable (AWS_CA_BUNDLE), else the common ones."""
    bundle = next(
        (os.environ[name] for name in (*ca_env, "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE") if os.environ.get(name)), None
    )
    return _ssl_context(bundle)


@cache
def _ssl_context(bundle: str | None) -> ssl.SSLContext:
    """Loading a CA bundle costs tens of milliseconds: once per bundle and process."""
    return ssl.create_default_context(cafile=bundle) if bundle else httpx.create_ssl_context()


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, then `Retry-After` (seconds or a date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff(attempt: int) -> float:
    """0.5 s doubling per attempt, capped at 8 s, with up to 25 % jitter either way."""
    base = min(0.5 * 2**attempt, 8.0)
    return float(base * (1 + random.uniform(-0.25, 0.25)))


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def _retryable(response: httpx.Response) -> bool:
    should = response.headers.get("x-should-retry")
    if should in ("true", "false"):
        return bool(should == "true")
    return retryable_status(response.status_code)


class Transport:
    """An httpx.AsyncClient with imggen's retry policy; use as `async with Transport(...) as t`."""

    def __init__(self, timeout: float = 600, retries: int = 2, ca_env: tuple[str, ...] = ()) -> None:
        self.ca_env = ca_env
        self.timeout = timeout
        self.retries = retries
        self.clients: dict[bool, httpx.AsyncClient] = {}  # by "needs TLS", each made on first use
        self.opened = False
        self.spill_dir: Path | None = None  # set: image strings in 2xx bodies go to files here

    def open(self) -> Transport:
        self.opened = True
        return self

    def client_for(self, url: str) -> httpx.AsyncClient:
        """The client for `url`. Plain-http endpoints (local servers) skip loading the CA bundle, which
        costs tens of milliseconds, unless a proxy may sit in between."""
        assert self.opened, "Transport used outside 'async with'"
        tls = not url.startswith("http://") or any(os.environ.get(v) for v in _HTTP_PROXY_VARS)
        if tls not in self.clients:
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            verify: ssl.SSLContext | bool = ca_verify(self.ca_env) if tls else False
            self.clients[tls] = httpx.AsyncClient(timeout=timeout, limits=limits, verify=verify, trust_env=True)
        return self.clients[tls]

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()
        self.opened = False

    async def __aenter__(self) -> Transport:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, request: HttpRequest, map_error: ErrorMapper) -> httpx.Response:
        """Send with retries; returns a 2xx response (body read) or raises a GenerationError."""
        response = await self.retrying(lambda: self._attempt(request, map_error))
        assert isinstance(response, httpx.Response)
        return response

    async def retrying(self, attempt: Callable[[], Awaitable[Outcome]]) -> Any:
        """The one retry loop. `attempt` returns (None, result) or (error, seconds to wait | None for
        backoff | False to give up); retries are reported to the calling task's retry hook."""
        on_retry = current_retry_hook.get()
        for number in range(self.retries + 1):
            error, wait = await attempt()
            if error is None:
                return wait
            if isinstance(wait, float | int) and not isinstance(wait, bool):
                error.retry_after = float(wait)  # what the server asked, for whoever retries above us
            if number == self.retries or wait is False:
                raise error
            delay = backoff(number) if wait is None else float(wait)
            if delay > MAX_RETRY_AFTER:
                error.hint = f"The provider asked to wait {delay:.0f} s before retrying; try again later."
                raise error
            if on_retry:
                on_retry(number + 1, delay, error)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, request: HttpRequest, map_error: ErrorMapper) -> Outcome:
        client = self.client_for(request.url)
        try:
            body = {"content": request.content} if request.content is not None else {"json": request.json}
            built = client.build_request(request.method, request.url, headers=request.headers, **body)
            response = await client.send(built, stream=True)
            try:
                if response.status_code < 400 and self.spill_dir is not None:
                    return None, await self._spilled(response)
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            return NetworkError(f"no answer from {_host(request.url)} within {self.timeout:g} s"), None
        except httpx.TransportError as exc:
            return NetworkError(f"cannot reach {_host(request.url)}: {_reason(exc)}"), None
        if response.status_code < 400:
            return None, response
        error = map_error(response)
        return error, (retry_after(response.headers) if _retryable(response) else False)

    async def _spilled(self, response: httpx.Response) -> httpx.Response:
        """Read a 2xx body with long base64 strings decoded to files as they arrive (see spill.py)."""
        from .spill import SpillingParser

        assert self.spill_dir is not None
        parser = SpillingParser(self.spill_dir)
        try:
            async for chunk in response.aiter_bytes(1 << 16):
                parser.feed(chunk)
        except BaseException:
            parser.abandon()
            raise
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(parser.out), request=response.request
        )

    @asynccontextmanager
    async def stream(self, url: str) -> AsyncIterator[httpx.Response]:
        """GET a result URL as a stream (no auth headers: result URLs are pre-signed)."""
        try:
            async with self.client_for(url).stream("GET", url) as response:
                yield response
        except httpx.TimeoutException as exc:
            raise NetworkError(f"downloading {_host(url)} timed out after {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot download from {_host(url)}: {_reason(exc)}") from exc


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
