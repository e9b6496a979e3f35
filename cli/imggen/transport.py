"""The one HTTP client: timeouts, proxies and CA bundles, and the retry loop."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import math
import os
import random
import socket
import ssl
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from .errors import BadResponseError, ConfigError, GenerationError, NetworkError, ProviderError
from .secrets import shown_fields, shown_url
from .types import HttpRequest

RETRY_STATUSES = frozenset({408, 409, 429})
_HTTP_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_BODY_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})
MAX_RETRY_AFTER = 120.0  # like the OpenAI SDK: a longer wait is not worth holding the run for
MIB = 1 << 20
MAX_TEXT = 16 * MIB  # a JSON answer without its image strings
MAX_ERROR_BODY = 64 * 1024  # an error answer is read this far, then cut: its message is at the start
DEFAULT_MAX_IMAGE_MB = 256
MAX_REDIRECTS = 5  # for image downloads; API calls never follow one
NETWORK_HINT = "Check the network, HTTPS_PROXY and --api-base."
_INFLATED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + zlib.MAX_WBITS}
# Cloud metadata services that are not in 169.254.0.0/16 or fe80::/10 (AWS over IPv6, Alibaba).
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))

RetryHook = Callable[[int, float, GenerationError], None]
# The hook of the request being sent, set per task so a shared Transport reports to the right prompt.
current_retry_hook: ContextVar[RetryHook | None] = ContextVar("current_retry_hook", default=None)
# `-v`: each request, its answer and timing and each retry, as lines to show. Set by the CLI for its
# run (tasks inherit it); the library says nothing without it.
Trace = Callable[[str], None]
current_trace: ContextVar[Trace | None] = ContextVar("current_trace", default=None)
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
    """Seconds the server asked us to wait: `retry-after-ms`, then `Retry-After` (seconds or a date).
    Anything else (not a number nor a date, negative, nan, inf) counts as not said: backoff applies."""
    if (ms := _finite(headers.get("retry-after-ms"))) is not None:
        return ms / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    if (seconds := _finite(value)) is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _finite(value: str | None) -> float | None:
    """A finite, non-negative number, or None."""
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


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


class NoCookies(httpx.Cookies):
    """A jar that keeps nothing. One client serves every request of a run, and of a proxy every caller:
    an upstream's Set-Cookie must not ride along on another caller's request (no provider API needs
    cookies), and reading each answer's cookies cost the proxy 4 % of its CPU per request."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Transport:
    """An httpx.AsyncClient with imggen's retry policy; use as `async with Transport(...) as t`."""

    def __init__(self, timeout: float = 600, retries: int = 2, ca_env: tuple[str, ...] = ()) -> None:
        self.ca_env = ca_env
        self.timeout = timeout
        self.retries = retries
        self.clients: dict[bool, httpx.AsyncClient] = {}  # by "needs TLS", each made on first use
        self.opened = False
        self.proxied = False  # an HTTP(S) proxy is set in the environment (read at open)
        self.spill_dir: Path | None = None  # set: image strings in 2xx bodies go to files here
        self.max_image = max_image_bytes()

    def open(self) -> Transport:
        self.opened = True
        # Read once: a proxy between imggen and a plain-http endpoint needs the CA bundle too (below).
        self.proxied = any(os.environ.get(v) for v in _HTTP_PROXY_VARS)
        return self

    def client_for(self, url: str) -> httpx.AsyncClient:
        """The client for `url`. Plain-http endpoints (local servers) skip loading the CA bundle, which
        costs tens of milliseconds, unless a proxy may sit in between."""
        assert self.opened, "Transport used outside 'async with'"
        tls = not url.startswith("http://") or self.proxied
        if tls not in self.clients:
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            verify: ssl.SSLContext | bool = ca_verify(self.ca_env) if tls else False
            client = httpx.AsyncClient(timeout=timeout, limits=limits, verify=verify, trust_env=True)
            client._cookies = NoCookies()  # httpx 0.28 has no switch for its jar (the `cookies` setter copies)
            from .sockets import hold_writes  # and with it httpcore, which httpx loads at its first client too

            self.clients[tls] = hold_writes(client)  # a request's head and body in one write (sockets.py)
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

    async def send(
        self,
        request: HttpRequest,
        map_error: ErrorMapper,
        *,
        spill: bool = False,
        retry_when: Callable[[GenerationError], bool] | None = None,
    ) -> httpx.Response:
        """Send with retries; returns a 2xx response (body read) or raises a GenerationError. With
        `spill`, long base64 strings of a JSON answer go to files in `spill_dir` (see `_parsed`). With
        `retry_when`, only the errors it accepts are retried (a request that must not run twice)."""

        async def attempt() -> Outcome:
            error, wait = await self._attempt(request, map_error, spill)
            if error is not None and retry_when is not None and not retry_when(error):
                return error, False
            return error, wait

        response = await self.retrying(attempt)
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
            if trace := current_trace.get():
                trace(f"* retry {number + 1} of {self.retries} in {delay:.1f} s: {error.message}")
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, request: HttpRequest, map_error: ErrorMapper, spill: bool) -> Outcome:
        trace = current_trace.get()
        if trace is None:
            return await self._attempt_once(request, map_error, spill)
        for line in request_lines(request):
            trace(line)
        started = time.monotonic()
        outcome = await self._attempt_once(request, map_error, spill)
        trace(answer_line(outcome, time.monotonic() - started))
        return outcome

    async def _attempt_once(self, request: HttpRequest, map_error: ErrorMapper, spill: bool) -> Outcome:
        """One try under one deadline for all of it: connect, send and the whole body (httpx's own
        timeout is per read, so a server trickling a byte a second would never end)."""
        client = self.client_for(request.url)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(client, request, map_error, spill)
        except (TimeoutError, httpx.TimeoutException):
            return deadline_error(request.url, self.timeout), None
        except httpx.TransportError as exc:
            return network_error(exc, request.url), None

    async def _exchange(
        self, client: httpx.AsyncClient, request: HttpRequest, map_error: ErrorMapper, spill: bool
    ) -> Outcome:
        built = client.build_request(request.method, request.url, headers=request.headers, **_body(request))
        if _is_loopback_name(built.url.host):
            _LOCAL_APIS.add(built.url.host)
        response = await client.send(built, stream=True)  # never follows a redirect: the key stays here
        try:
            if 300 <= response.status_code < 400:
                return _redirected(response), False
            if response.status_code < 400:
                return None, await self._parsed(response, spill)
            answer = await _error_body(response)
        finally:
            await response.aclose()
        error = map_error(answer)
        return error, (retry_after(answer.headers) if _retryable(answer) else False)

    async def _parsed(self, response: httpx.Response, spill: bool) -> httpx.Response:
        """Read a 2xx body within the size limits. An image body is kept as it came; in any other,
        long base64 strings are measured as images and, with `spill` and a spill directory, decoded
        to files as they arrive (see spill.py)."""
        if is_image(response):
            return _rebuilt(response, await _image_body(response, self.max_image))
        from .spill import SpillingParser

        parser = SpillingParser(self.spill_dir if spill else None, self.max_image)
        try:
            async with aclosing(body_chunks(response)) as chunks:
                async for chunk in chunks:
                    parser.feed(chunk)
        except BaseException:
            parser.abandon()
            raise
        return _rebuilt(response, parser.document())

    async def open_stream(self, request: HttpRequest, map_error: ErrorMapper) -> httpx.Response:
        """Send once and return the open 2xx answer, its body not read (server-sent events the caller
        relays as they come; it must `aclose()` it). An error answer raises its GenerationError, as
        `send` would, with the Retry-After it gave; no retries here (the proxy's router retries)."""
        client = self.client_for(request.url)
        try:
            async with asyncio.timeout(self.timeout):  # until the answer's head; each read has httpx's own
                built = client.build_request(request.method, request.url, headers=request.headers, **_body(request))
                response = await client.send(built, stream=True)
                if response.status_code < 300:
                    return response
                try:
                    if response.status_code < 400:
                        raise _redirected(response)
                    answer = await _error_body(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise deadline_error(request.url, self.timeout) from None
        except httpx.TransportError as exc:
            raise network_error(exc, request.url) from exc
        error = map_error(answer)
        error.retry_after = retry_after(answer.headers) if _retryable(answer) else None
        raise error

    @asynccontextmanager
    async def stream(self, url: str) -> AsyncIterator[httpx.Response]:
        """GET a result URL as a stream (no auth headers: result URLs are pre-signed), following up to
        five redirects, each checked before connecting (see `check_download_address`)."""
        try:
            for _ in range(MAX_REDIRECTS + 1):
                await check_download_address(url)
                if trace := current_trace.get():
                    trace(f"> GET {shown_url(url)} (the image)")
                async with self.client_for(url).stream("GET", url) as response:
                    if trace:
                        trace(f"< {response.status_code} {response.reason_phrase}")
                    location = response.headers.get("location")
                    if not (300 <= response.status_code < 400 and location):
                        yield response
                        return
                url = str(response.url.join(location))  # httpx checked it
            raise BadResponseError(f"the image URL redirected more than {MAX_REDIRECTS} times")
        except httpx.TimeoutException as exc:
            raise deadline_error(url, self.timeout) from exc
        except httpx.TransportError as exc:
            raise network_error(exc, url, "cannot download the image: ") from exc


def max_image_bytes() -> int:
    """The largest image accepted, from IMGGEN_MAX_IMAGE_MB (MiB, default 256)."""
    raw = os.environ.get("IMGGEN_MAX_IMAGE_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_MB * MIB
    megabytes = _finite(raw)
    if not megabytes:
        raise ConfigError(f"IMGGEN_MAX_IMAGE_MB must be a positive number of MiB, not '{raw}'")
    return int(megabytes * MIB)


def image_too_large(limit: int) -> BadResponseError:
    return BadResponseError(f"the image is larger than {limit / MIB:g} MiB (IMGGEN_MAX_IMAGE_MB)")


def text_too_large() -> BadResponseError:
    return BadResponseError(f"the response is larger than {MAX_TEXT // MIB} MiB")


async def body_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The decoded body in chunks. gzip and deflate are inflated here at most 64 KiB at a time, so
    that a small bomb meets the caller's size check before it fills memory (httpx would inflate each
    network read whole)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _INFLATED:
        async for chunk in response.aiter_bytes(1 << 16):
            yield chunk
        return
    inflater = zlib.decompressobj(_INFLATED[encoding])
    started = False
    async for raw in response.aiter_raw(1 << 16):
        data = raw
        while data and not inflater.eof:
            try:
                out = inflater.decompress(data, 1 << 16)
            except zlib.error as exc:
                if started or encoding != "deflate":
                    raise BadResponseError(f"the response's {encoding} body is corrupt: {exc}") from exc
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent without its zlib header
                continue
            started, data = True, inflater.unconsumed_tail
            if out:
                yield out
        if inflater.eof:
            break  # whatever follows the compressed stream is not part of the body
    if rest := inflater.flush():  # output zlib held back when a 64 KiB slice ended with the input
        yield rest


def is_image(response: httpx.Response) -> bool:
    """The body is an image itself (`image/png`, …), not a JSON document about one."""
    return str(response.headers.get("content-type", "")).strip().lower().startswith("image/")


async def _image_body(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async with aclosing(body_chunks(response)) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
                raise image_too_large(limit)
    return bytes(body)


def _body(request: HttpRequest) -> dict[str, Any]:
    """httpx's keyword for the body: exact (signed) bytes, a multipart form, or JSON."""
    if request.content is not None:
        return {"content": request.content}
    if request.files is not None:
        files = [(name, (part.filename, part.content, part.content_type)) for name, part in request.files]
        return {"data": request.form or {}, "files": files}
    return {"json": request.json}


async def _error_body(response: httpx.Response) -> httpx.Response:
    """An error answer cut at MAX_ERROR_BODY: enough for its message, never a flood."""
    body = bytearray()
    async with aclosing(body_chunks(response)) as chunks:
        async for chunk in chunks:
            body += chunk[: MAX_ERROR_BODY - len(body)]
            if len(body) >= MAX_ERROR_BODY:
                break
    return _rebuilt(response, bytes(body))


def _rebuilt(response: httpx.Response, content: bytes) -> httpx.Response:
    """A read response holding `content`, already decoded."""
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=content, request=response.request)


def _redirected(response: httpx.Response) -> GenerationError:
    """API calls never follow a redirect (the key must not go to another host): say where it points."""
    location = response.headers.get("location")
    status = response.status_code
    if not location:
        return ProviderError(f"the endpoint answered HTTP {status} without a location", status=status)
    target = str(response.url.join(location))  # httpx checked it
    return ProviderError(f"the endpoint redirected to {target}", hint="Set --api-base to it.", status=status)


# Whether this process has sent an API call to a loopback address: then result URLs on loopback are
# the same local server's (a download's Transport is not the API call's, and ImageResponse.save makes its own).
_LOCAL_APIS: set[str] = set()


async def check_download_address(url: str) -> None:
    """Refuse, before connecting, a result URL whose host is link-local or a cloud metadata service,
    or loopback while the API is not: a provider's answer must not make us fetch from inside the host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadResponseError(f"the image URL is not a valid URL: {url[:200]!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadResponseError(f"the image URL is not an http(s) URL: {url[:200]!r}; not downloaded")
    for address in await _addresses(parsed.host, parsed.port):
        if address.is_link_local or address in _METADATA:
            raise BadResponseError(f"the image URL points to a link-local or cloud metadata address ({address})"
                                   "; not downloaded")  # fmt: skip
        if (address.is_loopback or address.is_unspecified) and not _LOCAL_APIS:
            raise BadResponseError(f"the image URL points to this machine ({address}) but the API is not "
                                   "local; not downloaded")  # fmt: skip


async def _addresses(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses `host` stands for; none when it does not resolve (the connection then fails,
    or a proxy resolves it)."""
    try:
        found = [ipaddress.ip_address(host.split("%")[0])]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return [a.ipv4_mapped or a if isinstance(a, ipaddress.IPv6Address) else a for a in found]


def _is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def deadline_error(url: str, timeout: float) -> NetworkError:
    """One attempt's whole deadline passed (the proxy answers 504 for "within")."""
    return NetworkError(f"no complete answer from {_host(url)} within {timeout:g} s", hint=NETWORK_HINT)


def network_error(exc: Exception, url: str, prefix: str = "") -> NetworkError:
    """What really happened, from the cause under httpx's wrapper: refused, reset, DNS or TLS."""
    host = _host(url)
    cause = _cause(exc)
    if isinstance(cause, socket.gaierror):
        message = f"cannot resolve {host}"
    elif isinstance(cause, ConnectionRefusedError):
        message = f"{host} refused the connection"
    elif isinstance(cause, ConnectionResetError | BrokenPipeError):
        message = f"the connection was reset by {host}"
    elif isinstance(cause, ssl.SSLCertVerificationError):
        message = f"TLS with {host} failed: its certificate is not trusted ({cause.verify_message})"
    elif isinstance(cause, ssl.SSLError):
        message = f"TLS with {host} failed: {getattr(cause, 'reason', None) or cause}"
    elif isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc):
        message = f"{host} closed the connection without a complete answer"
    elif isinstance(exc, httpx.RemoteProtocolError):
        message = f"{host} answered with broken HTTP: {_reason(exc)}"
    elif isinstance(exc, httpx.ProxyError):
        message = f"the proxy did not connect to {host}: {_reason(exc)}"
    else:
        message = f"cannot reach {host}: {_reason(exc)}"
    return NetworkError(prefix + message, hint=NETWORK_HINT)


def _cause(exc: BaseException) -> BaseException:
    """The innermost OS or TLS error under `exc`, else `exc`."""
    seen: BaseException | None = exc
    found: BaseException = exc
    for _ in range(10):  # chains are short; never loop on a cycle
        if seen is None:
            break
        if isinstance(seen, OSError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except httpx.InvalidURL:
        return url


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


SHOWN_B64 = 40  # characters of a long base64 string shown by -v
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\n")


def request_lines(request: HttpRequest) -> list[str]:
    """A request as -v shows it: method and URL, headers (secret ones masked), the body as one line of
    JSON with long base64 strings cut. The CLI redacts every line again before printing it."""
    lines = [f"> {request.method} {shown_url(request.url)}"]
    lines += [f"> {name}: {value}" for name, value in request.shown_headers().items()]
    body: Any = request.json
    if body is None and request.content is not None:
        try:
            body = json.loads(request.content)
        except ValueError:
            body = f"<{len(request.content)} bytes>"
    if body is not None:
        shown = body if isinstance(body, str) else json.dumps(_cut_b64(shown_fields(body)), ensure_ascii=False)
        lines.append("> " + shown)
    return lines


def answer_line(outcome: Outcome, seconds: float) -> str:
    """`< 200 OK in 1.24 s`, `< 429 in 0.20 s: rate limited`, `< no answer after 10.0 s: …`."""
    error, result = outcome
    if error is None and isinstance(result, httpx.Response):
        return f"< {result.status_code} {result.reason_phrase} in {seconds:.2f} s"
    status = getattr(error, "status", None)
    message = error.message if error is not None else ""
    head = f"< {status}" if status else "< no answer"
    return f"{head} {'in' if status else 'after'} {seconds:.2f} s: {message}"


def _cut_b64(value: Any) -> Any:
    """Long base64 strings (and data: URLs) cut to their first characters and their length."""
    if isinstance(value, dict):
        return {k: _cut_b64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_b64(v) for v in value]
    long = isinstance(value, str) and len(value) > 2 * SHOWN_B64
    if long and (value.startswith("data:") or _B64_CHARS.issuperset(value)):
        return f"{value[:SHOWN_B64]}…({len(value)} chars)"
    return value
