"""The engine's send path (engine.py, transport.py) with an in-process HTTP mock: image bodies come back
byte for byte, base64 spilling only for providers that opt in, multipart bodies, and polled jobs."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from imggen import engine, spill
from imggen.errors import NetworkError
from imggen.providers.contract import ErrorFields, HttpProvider, Pending, ProviderResult
from imggen.transport import Transport, current_trace, request_lines
from imggen.types import FilePart, HttpRequest, ImageData, ImageRequest, ModelRef

URL = "http://api.test/v1/images"
# A PNG-like body full of quotes and long quote-free runs: what the JSON spiller used to rewrite.
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 600 + b'"' + b"A" * 70000 + b'"' + bytes(range(255, -1, -1))
REQUEST = ImageRequest("a lighthouse", ModelRef("fake", "model-1"), size="64x64", seed=3)


def transport(handler: Any, tmp_path: Path | None = None, timeout: float = 5) -> Transport:
    """A Transport whose plain-http client answers from `handler`, spilling to tmp_path when given."""
    sender = Transport(timeout=timeout, retries=0).open()
    sender.clients[False] = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender.spill_dir = tmp_path
    return sender


def no_error(response: httpx.Response) -> Any:
    raise AssertionError(f"unexpected error answer {response.status_code}")


async def send(sender: Transport, request: HttpRequest, *, spill: bool) -> httpx.Response:
    try:
        return await sender.send(request, no_error, spill=spill)
    finally:
        await sender.aclose()


@pytest.mark.parametrize("spilling", [True, False])
def test_a_binary_image_body_comes_back_byte_identical(tmp_path: Path, spilling: bool) -> None:
    answer = httpx.Response(200, headers={"Content-Type": "image/png"}, content=BINARY)
    spills = tmp_path / "spill"
    spills.mkdir()
    sender = transport(lambda request: answer, spills)
    response = asyncio.run(send(sender, HttpRequest("POST", URL, {}, {"prompt": "x"}), spill=spilling))
    assert response.content == BINARY
    assert list(spills.iterdir()) == []  # nothing was spilled


def test_json_bodies_spill_only_for_providers_that_opt_in(tmp_path: Path) -> None:
    b64 = base64.b64encode(BINARY).decode()
    body = json.dumps({"data": [{"b64_json": b64}]}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=body)

    kept = asyncio.run(send(transport(handler, tmp_path), HttpRequest("POST", URL, {}, {}), spill=False))
    assert kept.json()["data"][0]["b64_json"] == b64
    spilled = asyncio.run(send(transport(handler, tmp_path), HttpRequest("POST", URL, {}, {}), spill=True))
    marker = spilled.json()["data"][0]["b64_json"]
    found = spill.lookup(marker)
    assert found is not None and found.path.read_bytes() == BINARY
    assert ImageData.from_b64(marker).image_bytes() == BINARY
    spill.release(found)


def test_multipart_requests_are_sent_as_forms_and_shown_without_their_bytes() -> None:
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["type"] = request.headers["content-type"]
        seen["body"] = request.read()
        return httpx.Response(200, json={"ok": True})

    files = [("image[]", FilePart("a.png", BINARY, "image/png")), ("image[]", FilePart("b.png", b"png2", "image/png"))]
    http = HttpRequest.multipart("POST", URL, {"Authorization": "Bearer sk-multipart-secret-123"},
                                 {"prompt": "add a boat", "n": "1"}, files)  # fmt: skip
    asyncio.run(send(transport(handler), http, spill=False))
    assert seen["type"].startswith("multipart/form-data; boundary=")
    assert b'name="prompt"\r\n\r\nadd a boat' in seen["body"]
    assert BINARY in seen["body"] and b'filename="b.png"' in seen["body"]
    shown = [f"<a.png, image/png, {len(BINARY):,} bytes>", "<b.png, image/png, 4 bytes>"]
    assert http.json == {"prompt": "add a boat", "n": "1", "image[]": shown}
    lines = request_lines(http)
    assert "sk-multipart-secret-123" not in "\n".join(lines)
    assert lines[-1].startswith('> {"prompt": "add a boat"') and "bytes>" in lines[-1]


class Polled(HttpProvider):
    """A queue API: the submit answers a job id, the status URL answers `running` twice, then the image."""

    image_bodies = True

    def __init__(self, wait: float = 0.01) -> None:
        self.wait = wait
        self.authorized: list[str] = []

    def build_request(self, request: ImageRequest, settings: Any, *, dry_run: bool = False) -> HttpRequest:
        return HttpRequest("POST", URL, {}, {"prompt": request.prompt})

    async def authorize(self, http: HttpRequest, settings: Any, credentials: Any) -> None:
        self.authorized.append(http.url)
        http.headers["Authorization"] = "Key fake"

    def error_fields(self, response: httpx.Response, settings: Any) -> ErrorFields:
        return ErrorFields(response.text)

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        job = response.json()["job"]
        return Pending(HttpRequest("GET", f"{URL}/jobs/{job}", {}), wait=self.wait, state=job)

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        assert response.json()["status"] == "running"
        return Pending(job.request, wait=self.wait, state=job.state)


def queue(calls: list[str], done_after: int = 2) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path} {request.headers.get('authorization')}")
        if request.method == "POST":
            return httpx.Response(200, json={"job": "j1"})
        if len(calls) <= done_after + 1:
            return httpx.Response(200, json={"status": "running"})
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=BINARY)

    return handler


def test_the_engine_polls_a_job_until_its_image_comes() -> None:
    calls: list[str] = []
    provider = Polled()
    sender = transport(queue(calls))
    result = asyncio.run(engine.run(provider, REQUEST, None, sender))  # type: ignore[arg-type]
    assert calls == ["POST /v1/images Key fake"] + ["GET /v1/images/jobs/j1 Key fake"] * 3
    assert provider.authorized == [URL] + [f"{URL}/jobs/j1"] * 3  # each poll is authorised again
    [image] = result.images
    assert image.image_bytes() == BINARY and (image.index, image.size, image.seed) == (1, "64x64", 3)


def test_a_job_is_held_to_the_requests_deadline() -> None:
    calls: list[str] = []
    sender = transport(queue(calls, done_after=100), timeout=0.05)
    with pytest.raises(NetworkError, match=r"the job at api.test did not finish within 0.05 s"):
        asyncio.run(engine.run(Polled(wait=0.02), REQUEST, None, sender))  # type: ignore[arg-type]
    assert 2 <= len(calls) <= 4


def test_v_shows_each_poll_like_any_request() -> None:
    lines: list[str] = []
    current_trace.set(lines.append)
    try:
        asyncio.run(engine.run(Polled(), REQUEST, None, transport(queue([]))))  # type: ignore[arg-type]
    finally:
        current_trace.set(None)
    assert [line for line in lines if line.startswith("> GET")] == [f"> GET {URL}/jobs/j1"] * 3
