"""httpcore's network streams with fewer system calls per request (a proxy's CPU per request is mostly
system calls: issue 14 item 14).

httpcore 1.0 sends an HTTP/1.1 request as two writes, its head and then its body
(`AsyncHTTP11Connection._send_request_headers`, then `_send_request_body`, each `_send_event` a
`network_stream.write`), and reads the answer only after both. Held until that read, the two leave as
one `send` (one syscall and one TCP segment, not two). A long body is not held whole: past
HOLD_BYTES, what is held goes first and the rest as httpcore gives it.

httpcore also asks every idle pooled connection whether its socket is readable (the server closed
it) each time it assigns a request (`AsyncConnectionPool._assign_requests_to_connections` ->
`has_expired` -> `get_extra_info("is_readable")`); its anyio stream looks the socket up through
anyio's typed attributes each time. Here the socket is looked up once per connection and polled as
httpcore polls it (`httpcore._utils.is_socket_readable`).
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

HOLD_BYTES = 64 * 1024  # a request up to this size leaves in one write


class HeldWrites(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self.stream = stream
        self.held: list[bytes] = []
        self.size = 0
        self.sock: socket.socket | None = stream.get_extra_info("socket")
        self.poll = poller(self.sock)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.size + len(buffer) > HOLD_BYTES:
            await self.flush(timeout)
            await self.stream.write(buffer, timeout)
            return
        self.held.append(buffer)
        self.size += len(buffer)

    async def flush(self, timeout: float | None) -> None:
        if self.held:
            data = b"".join(self.held)
            self.held, self.size = [], 0
            await self.stream.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self.flush(timeout)
        return await self.stream.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self.held, self.size = [], 0
        await self.stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        await self.flush(timeout)  # a proxy's CONNECT was answered (read) before: nothing is held here
        return HeldWrites(await self.stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable":
            return self.stream.get_extra_info(info)
        # As httpcore's is_socket_readable: data or EOF waiting. No socket, or a closed one (its fd may
        # be reused by then), counts as readable: the connection is not used again.
        if self.sock is None or self.sock.fileno() < 0:
            return True
        if self.poll is None:  # no poll() on this system
            return bool(select.select([self.sock], [], [], 0)[0])
        return bool(self.poll.poll(0))


def poller(sock: socket.socket | None) -> Any:
    """A poll object watching `sock` for data or EOF, made once per connection (httpcore asks before
    each request it might send on it); None where poll() is missing or there is no socket."""
    if sock is None or sock.fileno() < 0 or not hasattr(select, "poll"):
        return None
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    return poll


class HeldWritesBackend(httpcore.AsyncNetworkBackend):
    """The pool's own backend, its streams wrapped in HeldWrites."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self.backend = backend

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        stream = await self.backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return HeldWrites(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return HeldWrites(await self.backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


def hold_writes(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """`client` with HeldWrites streams on its default transport (httpx 0.28's AsyncHTTPTransport keeps
    its httpcore pool in `_pool`, the pool its backend in `_network_backend`; neither is a parameter
    of httpx's). Left as it is when those are not there (another httpx)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = HeldWritesBackend(pool._network_backend)
    return client
