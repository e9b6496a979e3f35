"""sockets.py: a request's head and body leave in one write; long bodies still arrive whole; an idle
connection the server closed is not reused."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import httpcore
import httpx

from imggen.sockets import HOLD_BYTES, HeldWrites, hold_writes

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


class Recording(httpcore.AsyncNetworkStream):
    """A connection that keeps each write and answers one canned response."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.answer = ANSWER

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        answer, self.answer = self.answer, b""
        return answer

    async def aclose(self) -> None:
        pass

    def get_extra_info(self, info: str) -> Any:
        return None


def send(body: bytes) -> Recording:
    """One POST through httpcore's HTTP/1.1 connection over HeldWrites on a recording stream."""
    recording = Recording()

    async def main() -> None:
        origin = httpcore.Origin(b"http", b"127.0.0.1", 80)
        async with httpcore.AsyncHTTP11Connection(origin, HeldWrites(recording)) as connection:
            response = await connection.request(
                "POST", "http://127.0.0.1/v1/images/generations", headers={"Content-Type": "application/json"},
                content=body,
            )  # fmt: skip
            assert response.status == 200

    asyncio.run(main())
    return recording


def test_a_request_head_and_body_leave_in_one_write() -> None:
    body = json.dumps({"model": "m", "prompt": "an otter"}).encode()
    recording = send(body)
    assert len(recording.writes) == 1
    assert recording.writes[0].startswith(b"POST /v1/images/generations HTTP/1.1\r\n")
    assert recording.writes[0].endswith(b"\r\n\r\n" + body)


def test_a_long_body_is_not_held_whole_and_arrives_intact() -> None:
    body = bytes(range(256)) * (3 * HOLD_BYTES // 256)
    recording = send(body)
    assert len(recording.writes) >= 2
    assert max(len(w) for w in recording.writes) <= len(body)
    sent = b"".join(recording.writes)
    assert sent.endswith(b"\r\n\r\n" + body)


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    """The server answers each connection once and closes it without saying so (no Connection: close):
    the next request must go on a new connection, not fail on the closed one."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        for _ in range(2):
            conn, _address = listener.accept()
            accepted.append(1)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(ANSWER)

    threading.Thread(target=serve, daemon=True).start()

    async def main() -> list[int]:
        async with hold_writes(httpx.AsyncClient()) as client:
            first = await client.get(f"http://127.0.0.1:{port}/")
            await asyncio.sleep(0.2)  # the server has closed the idle connection by now
            second = await client.get(f"http://127.0.0.1:{port}/")
            return [first.status_code, second.status_code]

    try:
        assert asyncio.run(main()) == [200, 200]
        assert len(accepted) == 2
    finally:
        listener.close()


def test_an_upstream_cookie_never_rides_on_the_next_request() -> None:
    """One client serves every caller of a proxy: a Set-Cookie from one answer must not be sent with the
    next request (transport.NoCookies)."""
    from imggen.transport import Transport

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    heads: list[bytes] = []

    def serve() -> None:
        conn, _address = listener.accept()
        with conn:
            for answer in (b"Set-Cookie: session=caller-a; Path=/\r\n", b""):
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                heads.append(data)
                conn.sendall(ANSWER.replace(b"\r\n\r\n", b"\r\n" + answer + b"\r\n", 1))

    threading.Thread(target=serve, daemon=True).start()

    async def main() -> None:
        transport = Transport(timeout=10).open()
        client = transport.client_for(f"http://127.0.0.1:{port}/")
        first = await client.get(f"http://127.0.0.1:{port}/")
        assert first.headers["set-cookie"].startswith("session=caller-a")
        await client.get(f"http://127.0.0.1:{port}/")
        await transport.aclose()

    try:
        asyncio.run(main())
        assert len(heads) == 2 and b"cookie" not in heads[1].lower()
    finally:
        listener.close()
