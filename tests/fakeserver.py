"""A real HTTP server on 127.0.0.1 standing in for OpenAI and Azure OpenAI in tests.

It checks what the real APIs check (path, auth header, api-version, body shape), answers with their
response and error shapes, records every request, and can be scripted to answer with errors.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit


def png_of(width: int, height: int, rows: bytes, alpha: bool = False) -> bytes:
    """A PNG of 8-bit RGB (RGBA with `alpha`) made of `rows`: each row its filter byte, then its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6 if alpha else 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def solid_png(width: int, height: int, alpha: bool, pixel: bytes) -> bytes:
    """A PNG of one colour: `pixel` is 3 bytes (RGB) or, with `alpha`, 4 (RGBA)."""
    return png_of(width, height, b"".join(b"\x00" + pixel * width for _ in range(height)), alpha)


def _png(width: int = 2, height: int = 2) -> bytes:
    return solid_png(width, height, False, b"\xff\x80\x00")


TINY_PNG = _png()
# A 1x1 baseline JPEG: SOI, APP0, DQT, SOF0, DHT, SOS, EOI (only the first bytes matter to sniffing).
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001"
    "000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffda0008010100003f"
    "00d2cf20ffd9"
)
TINY_WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
CONTENT_POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. "
    "Your prompt may contain text that is not allowed by our safety system."
)


@dataclass
class Reply:
    """A canned answer: JSON when `json` is set, else `body`; `delay` seconds before answering."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    default: bool = False  # answer as the fake normally would, after the delay
    trickle: float = 0.0  # hostile: the headers at once, then the body one byte every `trickle` seconds
    reset: bool = False  # hostile: reset the connection (RST) instead of answering
    events: list[tuple[str, Any]] | None = None  # server-sent events (name, data), sent chunked one by one

    def __post_init__(self) -> None:
        if self.json is None and self.body is None and self.status == 200:
            self.default = True


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    raw_path: str = ""
    # A multipart body (an edit): its text fields, and its files as (field, filename, type, bytes) in order
    form: dict[str, str] | None = None
    files: list[tuple[str, str, str, bytes]] | None = None


def openai_error(
    status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
    param: str | None = None, headers: dict[str, str] | None = None,
) -> Reply:  # fmt: skip
    error = {"message": message, "type": type, "param": param, "code": code}
    return Reply(status=status, json={"error": error}, headers=headers)


def content_policy() -> Reply:
    return openai_error(400, CONTENT_POLICY_MESSAGE, code="content_policy_violation")


def rate_limited(retry_after: str | None = "1", retry_after_ms: str | None = None) -> Reply:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return openai_error(
        429, "Rate limit reached for images per minute.", "requests", "rate_limit_exceeded", None, headers
    )


def server_error() -> Reply:
    return openai_error(500, "The server had an error while processing your request.", "server_error")


def not_json() -> Reply:
    return Reply(status=200, body="<html>Bad gateway</html>", headers={"Content-Type": "text/html"})


def bad_b64() -> Reply:
    return Reply(status=200, json={"created": int(time.time()), "data": [{"b64_json": "not base64!!"}]})


def html_error_page() -> Reply:
    return Reply(status=200, body="<!DOCTYPE html><html>Error</html>", headers={"Content-Type": "text/html"})


@dataclass
class FakeProvider:
    openai_key: str = "sk-test-openai-0123456789"
    azure_key: str = "azure-test-key-abcdef123456"
    azure_ad_token: str = "eyJ-test-ad-token-xyz987"
    require_key: bool = True
    # As openai-python's own test server (a prism mock of OpenAI's OpenAPI spec) for its tests/api_resources:
    # any bytes where the spec says `format: binary` (its tests upload b"Example data"; the real API reads
    # them), and answers whose values the spec allows (a GPT image `size` outside its enum is not echoed).
    prism: bool = False
    image_bytes: bytes = TINY_PNG
    requests: list[Recorded] = field(default_factory=list)
    _scripts: list[tuple[str, list[Reply]]] = field(default_factory=list)
    _files: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: count(1))
    expect_region: str | None = None  # the SigV4 region Bedrock requests must be signed for
    signed_regions: list[str] = field(default_factory=list)
    google_public_pem: bytes = b""
    tunnels: list[str] = field(default_factory=list)
    token_lifetime: int = 3600
    google_tokens: list[str] = field(default_factory=list)
    google_calls: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0  # the most image requests the fake was answering at once
    # Hostile: "error" answers every POST with a 400 quoting the credential it received (and echo_also),
    # "revised" answers with an image whose revised_prompt quotes them, each in every form of `leaked`.
    echo_key: str = ""
    echo_also: tuple[str, ...] = ()
    # What the model listings answer (`imggen models check`): OpenAI's and Azure's `data[]` items, the
    # Gemini API's `models[]`, Bedrock's `modelSummaries[]`, Vertex AI's publisher models by id.
    openai_models: list[dict[str, Any]] = field(default_factory=list)
    azure_models: list[dict[str, Any]] = field(default_factory=list)
    gemini_models: list[dict[str, Any]] = field(default_factory=list)
    bedrock_models: list[dict[str, Any]] = field(default_factory=list)
    vertex_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    gemini_page_cap: int = 1000  # the most models the Gemini API puts on one page, whatever pageSize asks

    def __enter__(self) -> FakeProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, tls_dir: Path | None = None) -> None:
        """Serve on 127.0.0.1; with tls_dir, over TLS with a fresh CA whose PEM is `self.ca_file`."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.scheme = "http"
        if tls_dir is not None:
            self._wrap_tls(tls_dir)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _wrap_tls(self, tls_dir: Path) -> None:
        import ssl

        import trustme

        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.ca_file = tls_dir / "fake-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https"

    def enable_proxy(self, tls_dir: Path) -> Path:
        """Act as an HTTPS proxy that answers for any host itself (never connecting out), with certificates
        from a fresh CA; returns the CA file for the client's CA-bundle variable."""
        import trustme

        self.proxy_ca = trustme.CA()
        ca_file = tls_dir / "proxy-ca.pem"
        self.proxy_ca.cert_pem.write_to_path(str(ca_file))
        return ca_file

    def tunnel_context(self, host: str) -> Any:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.proxy_ca.issue_cert(host).configure_cert(context)
        return context

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"

    def script(self, path_part: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.append((path_part, list(replies)))

    def clear_scripts(self) -> None:
        with self._lock:
            self._scripts.clear()

    def _scripted(self, path: str) -> Reply | None:
        with self._lock:
            for part, replies in self._scripts:
                if part in path and replies:
                    return replies.pop(0)
        return None

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add_file(self, data: bytes) -> str:
        name = f"img{self.next_id()}.png"
        with self._lock:
            self._files[name] = data
        return f"{self.base_url}/files/{name}"

    def file(self, name: str) -> bytes | None:
        with self._lock:
            return self._files.get(name)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst of connects, which then retry a second later

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) closes the socket under a late answer


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_CONNECT(self) -> None:
        """A tunnel that ends here: TLS with a certificate for the asked host, then the fake answers."""
        host = self.path.rsplit(":", 1)[0]
        self.fake.tunnels.append(self.path)
        self.send_response(200, "Connection established")
        self.end_headers()
        tls = self.fake.tunnel_context(host).wrap_socket(self.connection, server_side=True)
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()

    def _handle(self) -> None:
        recorded = self._read()
        self.fake.record(recorded)
        self.fake.enter(1)
        try:
            self._answer(recorded)
        finally:
            self.fake.enter(-1)

    def _answer(self, recorded: Recorded) -> None:
        if self.fake.echo_key and recorded.method == "POST" and recorded.path != "/token":
            self._send_reply(self._echo(recorded))
            return
        reply = self.fake._scripted(recorded.path)
        if reply is not None:
            time.sleep(reply.delay)
            if reply.reset:
                self._reset()
                return
            if not reply.default:
                # Real APIs tag error answers with a request id too.
                reply.headers = {"x-request-id": f"req_{self.fake.next_id()}", **(reply.headers or {})}
                self._send_reply(reply)
                return
        self._send_reply(self._default(recorded))

    def _read(self) -> Recorded:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = Recorded(
            self.command, unquote(parts.path), dict(parse_qsl(parts.query)), headers, body, parsed, self.path
        )
        if headers.get("content-type", "").startswith("multipart/form-data"):
            recorded.form, recorded.files = parse_multipart(headers["content-type"], body)
        return recorded

    def _default(self, req: Recorded) -> Reply:
        if req.method == "GET" and req.path.startswith("/files/"):
            data = self.fake.file(req.path.rsplit("/", 1)[1])
            if data is None:
                return openai_error(404, "no such file")
            return Reply(body=data, headers={"Content-Type": "image/png"})
        if req.method == "POST" and req.path == "/v1/images/generations":
            return self._openai(req)
        if req.method == "POST" and req.path == "/v1/images/edits":
            return self._openai_edit(req)
        if req.method == "POST" and req.path == "/v1/images/variations":
            return self._openai_variation(req)
        if req.method == "POST" and (
            req.path == "/openai/v1/images/edits"
            or (req.path.startswith("/openai/deployments/") and req.path.endswith("/images/edits"))
        ):
            return self._azure_edit(req)
        if req.method == "GET" and req.path in ("/v1/models", "/openai/models"):
            return self._model_list(req)
        if req.method == "GET" and req.path == "/v1beta/models":
            from fakegoogle import gemini_model_list

            return gemini_model_list(self.fake, req, Reply)
        if req.method == "GET" and req.path.startswith("/v1beta1/publishers/google/models/"):
            from fakegoogle import publisher_model

            return publisher_model(self.fake, req, Reply)
        if req.method == "GET" and req.path == "/foundation-models":
            from fakebedrock import foundation_models

            return foundation_models(self.fake, req, Reply, self.headers.get("Host", ""))
        if req.method == "POST" and req.path.startswith("/openai/deployments/"):
            return self._azure(req)
        if req.method == "POST" and req.path == "/token":
            from fakegoogle import token

            return token(self.fake, req, Reply)
        if req.method == "POST" and req.path.startswith("/v1/projects/"):
            from fakegoogle import vertex

            return vertex(self.fake, req, Reply)
        if req.method == "POST" and req.path.startswith("/v1beta/models/"):
            from fakegoogle import gemini_api

            return gemini_api(self.fake, req, Reply)
        if req.method == "POST" and req.path.startswith("/model/") and req.path.endswith("/invoke"):
            from fakebedrock import invoke

            return invoke(self.fake, req, Reply, self.headers.get("Host", ""))
        return openai_error(404, f"Unknown route {req.method} {req.path}", code="not_found")

    def _openai(self, req: Recorded) -> Reply:
        wanted = f"Bearer {self.fake.openai_key}"
        if self.fake.require_key and req.headers.get("authorization") != wanted:
            shown = req.headers.get("authorization", "")[-4:]
            return openai_error(401, f"Incorrect API key provided: sk-...{shown}.", code="invalid_api_key")
        return self._images(req, {"x-request-id": f"req_{self.fake.next_id()}"})

    def _openai_edit(self, req: Recorded) -> Reply:
        if self.fake.require_key and req.headers.get("authorization") != f"Bearer {self.fake.openai_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return edit_reply(self.fake, req, {"x-request-id": f"req_{self.fake.next_id()}"}, model_field=True)

    def _openai_variation(self, req: Recorded) -> Reply:
        if self.fake.require_key and req.headers.get("authorization") != f"Bearer {self.fake.openai_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        problem = variation_problem(req, self.fake.prism)
        if problem is not None:
            return problem
        assert req.form is not None
        n = int(req.form.get("n", "1"))
        body = {"prompt": "", "response_format": req.form.get("response_format")}
        data = [self._image(body) for _ in range(n)]
        return Reply(json={"created": int(time.time()), "data": data},
                     headers={"x-request-id": f"req_{self.fake.next_id()}"})  # fmt: skip

    def _azure_edit(self, req: Recorded) -> Reply:
        """Azure's edits: the deployment route (api-version 2025-04-01-preview or later, no `model`
        field) and the v1 surface (`model` names the deployment, no api-version needed)."""
        key_ok = req.headers.get("api-key") == self.fake.azure_key
        token_ok = req.headers.get("authorization") == f"Bearer {self.fake.azure_ad_token}"
        if self.fake.require_key and not (key_ok or token_ok):
            return Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}})
        headers = {"apim-request-id": f"apim-{self.fake.next_id()}"}
        if req.path.startswith("/openai/v1/"):
            return edit_reply(self.fake, req, headers, model_field=True)
        if req.query.get("api-version", "")[:10] < "2025-04-01":
            return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        return edit_reply(self.fake, req, headers, model_field=False)

    def _model_list(self, req: Recorded) -> Reply:
        """OpenAI's `GET /v1/models` (bearer key) and Azure's `GET /openai/models?api-version=` (api-key)."""
        if req.path == "/v1/models":
            if req.headers.get("authorization") != f"Bearer {self.fake.openai_key}":
                return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
            return Reply(json={"object": "list", "data": self.fake.openai_models})
        if req.headers.get("api-key") != self.fake.azure_key:
            return Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}})
        if "api-version" not in req.query:
            return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        return Reply(json={"data": self.fake.azure_models, "object": "list"})

    def _azure(self, req: Recorded) -> Reply:
        key_ok = req.headers.get("api-key") == self.fake.azure_key
        token_ok = req.headers.get("authorization") == f"Bearer {self.fake.azure_ad_token}"
        if self.fake.require_key and not (key_ok or token_ok):
            return Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}})
        if "api-version" not in req.query:
            return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        if isinstance(req.json, dict) and "model" in req.json:
            return openai_error(400, "Unknown parameter: 'model'.", code="unknown_parameter", param="model")
        return self._images(req, {"apim-request-id": f"apim-{self.fake.next_id()}"})

    def _images(self, req: Recorded, headers: dict[str, str]) -> Reply:
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return openai_error(400, "'prompt' is a required property", param="prompt")
        gpt_image = str(body.get("model", "")).startswith("gpt-image") or "/deployments/gpt-image" in req.path
        if body.get("stream") is True:
            if not gpt_image:
                return openai_error(400, "Streaming is not supported for this model.", param="stream")
            return Reply(events=stream_events(self.fake, body), headers=headers)
        data = [self._image(body) for _ in range(int(body.get("n", 1)))]
        payload: dict[str, Any] = {"created": int(time.time()), "data": data}
        if str(body.get("model", "")).startswith("gpt-image"):
            size = body.get("size", "auto")
            payload.update(
                usage={"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170,
                       "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                       "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0}},
                size="1024x1024" if size == "auto" else size, quality=body.get("quality", "high"),
                output_format=body.get("output_format", "png"), background=body.get("background", "opaque"),
            )  # fmt: skip
        return Reply(json=payload, headers=headers)

    def _image(self, body: dict[str, Any]) -> dict[str, Any]:
        revised = "revised: " + body["prompt"] if body.get("model") == "dall-e-3" else None
        if body.get("response_format") == "url":
            return {"url": self.fake.add_file(self.fake.image_bytes), "revised_prompt": revised}
        return {"b64_json": base64.b64encode(self.fake.image_bytes).decode(), "revised_prompt": revised}

    def _send_reply(self, reply: Reply) -> None:
        if reply.events is not None:
            self._send_events(reply)
            return
        if reply.json is not None:
            payload, kind = json.dumps(reply.json).encode(), "application/json"
        else:
            raw = reply.body or b""
            payload, kind = (raw.encode() if isinstance(raw, str) else raw), "application/octet-stream"
        headers = {"Content-Type": kind, **(reply.headers or {})}
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        lines += [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {len(payload)}", "", ""]
        if reply.trickle:
            self._trickle("\r\n".join(lines).encode("latin-1"), payload, reply.trickle)
            return
        # Headers and body in one write: split writes stall on delayed ACKs.
        self.wfile.write("\r\n".join(lines).encode("latin-1") + payload)
        self.wfile.flush()

    def _send_events(self, reply: Reply) -> None:
        """Server-sent events as OpenAI streams them: `event: <type>` and `data: <json>`, each event its own
        chunk of a chunked answer, written as it is ready."""
        headers = {"Content-Type": "text/event-stream", **(reply.headers or {}), "Transfer-Encoding": "chunked"}
        lines = [f"HTTP/1.1 {reply.status} OK", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.wfile.write("\r\n".join(lines).encode("latin-1"))
        self.wfile.flush()
        for name, data in reply.events or []:
            time.sleep(reply.delay)
            event = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _trickle(self, head: bytes, payload: bytes, every: float) -> None:
        self.wfile.write(head)
        self.wfile.flush()
        for index in range(len(payload)):
            time.sleep(every)
            self.wfile.write(payload[index : index + 1])
            self.wfile.flush()  # raises once the client has given up, which ends this thread

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the client sees ECONNRESET, not an orderly end."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _echo(self, req: Recorded) -> Reply:
        headers = req.headers
        received = headers.get("api-key") or headers.get("x-goog-api-key") or headers.get("authorization", "")
        text = " ".join(leaked(secret) for secret in (received.removeprefix("Bearer "), *self.fake.echo_also))
        if self.fake.echo_key == "error":
            return openai_error(400, f"Bad request from {text}", code="bad_request")
        image = {"b64_json": base64.b64encode(self.fake.image_bytes).decode(), "revised_prompt": text}
        return Reply(json={"created": int(time.time()), "data": [image]})


def stream_events(fake: FakeProvider, body: dict[str, Any], prefix: str = "image_generation") -> list[tuple[str, Any]]:
    """What OpenAI streams for `stream: true` (openai 3.57.0 types/image_gen_partial_image_event.py,
    image_gen_completed_event.py): `partial_images` partial images, then the completed image with usage."""
    size = body.get("size", "auto")
    common = {
        "background": body.get("background", "opaque"), "output_format": body.get("output_format", "png"),
        "quality": body.get("quality", "high"), "size": "1024x1024" if size == "auto" else size,
    }  # fmt: skip
    b64 = base64.b64encode(fake.image_bytes).decode()
    events: list[tuple[str, Any]] = []
    for index in range(int(body.get("partial_images") or 0)):
        kind = f"{prefix}.partial_image"
        events.append((kind, {"type": kind, "b64_json": b64, "created_at": int(time.time()),
                              "partial_image_index": index, **common}))  # fmt: skip
    kind = f"{prefix}.completed"
    usage = {"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170,
             "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}  # fmt: skip
    events.append((kind, {"type": kind, "b64_json": b64, "created_at": int(time.time()), "usage": usage, **common}))
    return events


def leaked(secret: str) -> str:
    """A secret in every form a careless upstream may quote it: raw, repr, JSON-escaped, URL-encoded, cut."""
    return f"raw {secret} repr {secret!r} json {json.dumps(secret)} url {quote(secret, safe='')} cut {secret[:11]}"


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """A multipart/form-data body: its text fields (a repeated text field keeps its last value and is
    reported as `<repeated>`) and its file parts, in order."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    form: dict[str, str] = {}
    files: list[tuple[str, str, str, bytes]] = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files.append((str(name), filename, part.get_content_type(), data))
        else:
            form[str(name)] = "<repeated>" if name in form else data.decode("utf-8")
    return form, files


# What /images/edits takes (openai 3.57.0 types/image_edit_params.py): text fields and file fields.
EDIT_TEXT_FIELDS = frozenset({
    "prompt", "background", "complexity", "frame_count", "frame_duration_ms", "input_fidelity", "model", "n",
    "output_compression", "output_format", "partial_images", "quality", "response_format", "safety_identifier",
    "size", "stream", "user", "svg[model]", "svg[reasoning][effort]",
})  # fmt: skip
EDIT_FILE_FIELDS = frozenset({"image", "image[]", "mask", "markup"})
EDIT_FORMATS = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8\xff", "image/webp": b"RIFF"}


def _sniff(data: bytes) -> str | None:
    for mime, magic in EDIT_FORMATS.items():
        if data.startswith(magic) and (mime != "image/webp" or data[8:12] == b"WEBP"):
            return mime
    return None


def edit_problem(req: Recorded, model_field: bool, prism: bool = False) -> Reply | None:
    """What the real edits endpoint refuses: a body that is not multipart (JSON included), unknown
    fields, text where a file goes (or a file where text goes), no image or prompt, more than 16
    images, an image that is not PNG, JPEG or WebP, a mask that is not a PNG; `model` where the
    route names the deployment (Azure's deployment route), or none where it must be given. With `prism`
    (FakeProvider.prism) only what OpenAI's spec refuses: any bytes as an upload, any model's input_fidelity."""
    if req.form is None or req.files is None:
        kind = req.headers.get("content-type", "no content type")
        return openai_error(400, f"Invalid Content-Type header ({kind}), expected multipart/form-data.",
                            code="invalid_content_type")  # fmt: skip
    form, files = req.form, req.files
    for name in form:
        if name in EDIT_FILE_FIELDS:
            return openai_error(400, f"Invalid value for '{name}': expected a file.", param=name, code="invalid_value")
        if name not in EDIT_TEXT_FIELDS:
            return openai_error(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
        if form[name] == "<repeated>":
            return openai_error(400, f"Duplicate parameter: '{name}'.", param=name, code="invalid_value")
    names = [name for name, *_ in files]
    for name in names:
        if name not in EDIT_FILE_FIELDS:
            return openai_error(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    if "image" in names and ("image[]" in names or names.count("image") > 1):
        return openai_error(400, "Give 'image' once, or several 'image[]'.", param="image", code="invalid_value")
    images = [f for f in files if f[0] in ("image", "image[]")]
    if not images:
        return openai_error(
            400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
        )
    if not form.get("prompt"):
        return openai_error(
            400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
        )
    if len(images) > 16:
        return openai_error(400, f"Too many images: {len(images)}; at most 16.", param="image", code="invalid_value")
    for _, filename, _, data in images:
        if _sniff(data) is None and not prism:
            return openai_error(400, f"Invalid file '{filename}': unsupported mimetype. Supported file formats are "
                                "'image/jpeg', 'image/png', and 'image/webp'.", param="image",
                                code="unsupported_file_mimetype")  # fmt: skip
    masks = [f for f in files if f[0] == "mask"]
    if len(masks) > 1 or (masks and _sniff(masks[0][3]) != "image/png" and not prism):
        return openai_error(400, "Invalid mask: it must be one PNG image.", param="mask", code="invalid_image_format")
    if model_field != ("model" in form):
        if model_field:
            return openai_error(400, "Missing required parameter: 'model'.", param="model",
                                code="missing_required_parameter")  # fmt: skip
        return openai_error(400, "Unknown parameter: 'model'.", param="model", code="unknown_parameter")
    model = form.get("model", "")
    fidelity = form.get("input_fidelity")
    if fidelity is not None and (fidelity not in ("low", "high") or (model.startswith("gpt-image-2") and not prism)
                                 or (model == "gpt-image-1-mini" and fidelity != "low" and not prism)):  # fmt: skip
        return openai_error(400, f"Invalid value for 'input_fidelity': '{fidelity}' is not supported with {model}.",
                            param="input_fidelity", code="invalid_value")  # fmt: skip
    return None


# What /images/variations took (openai 3.57.0 types/image_create_variation_params.py): "a valid PNG file,
# less than 4MB, and square"; "Only `dall-e-2` is supported"; n 1-10; sizes 256x256, 512x512, 1024x1024.
VARIATION_TEXT_FIELDS = frozenset({"model", "n", "response_format", "size", "user"})
VARIATION_SIZES = ("256x256", "512x512", "1024x1024")


def variation_problem(req: Recorded, prism: bool) -> Reply | None:
    """What the real variations endpoint refuses: not multipart, unknown fields, not one `image` file,
    an image that is not a square PNG under 4 MB, a model other than dall-e-2, n, size or
    response_format out of range."""
    if req.form is None or req.files is None:
        kind = req.headers.get("content-type", "no content type")
        return openai_error(400, f"Invalid Content-Type header ({kind}), expected multipart/form-data.",
                            code="invalid_content_type")  # fmt: skip
    form, files = req.form, req.files
    for name in [*form, *(f[0] for f in files)]:
        if name not in VARIATION_TEXT_FIELDS | {"image"} or (name == "image") == (name in form):
            return openai_error(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
        if form.get(name) == "<repeated>":
            return openai_error(400, f"Duplicate parameter: '{name}'.", param=name, code="invalid_value")
    if len(files) != 1:
        return openai_error(400, "Missing required parameter: 'image'.", param="image",
                            code="missing_required_parameter")  # fmt: skip
    data = files[0][3]
    if not prism and (not data.startswith(b"\x89PNG") or data[16:20] != data[20:24] or len(data) >= 4 * 1024 * 1024):
        return openai_error(400, "Uploaded image must be a PNG and less than 4 MB, and square.", param="image",
                            code="invalid_image_format")  # fmt: skip
    model = form.get("model", "dall-e-2")
    if model != "dall-e-2":
        return openai_error(400, f"Invalid value: '{model}'. Value must be 'dall-e-2'.", param="model",
                            code="invalid_value")  # fmt: skip
    n = form.get("n", "1")
    if not n.isdigit() or not 1 <= int(n) <= 10:
        return openai_error(400, f"Invalid value for 'n': {n!r}; it must be from 1 to 10.", param="n",
                            code="invalid_value")  # fmt: skip
    if form.get("size", "1024x1024") not in VARIATION_SIZES:
        return openai_error(400, f"Invalid value: '{form['size']}'. Supported values are: "
                            + ", ".join(f"'{s}'" for s in VARIATION_SIZES) + ".", param="size",
                            code="invalid_value")  # fmt: skip
    if form.get("response_format", "url") not in ("url", "b64_json"):
        return openai_error(400, f"Invalid value: '{form['response_format']}'.", param="response_format",
                            code="invalid_value")  # fmt: skip
    return None


GPT_IMAGE_SIZES = ("1024x1024", "1024x1536", "1536x1024")  # openai 3.57.0 types/images_response.py `size`


def edit_reply(fake: FakeProvider, req: Recorded, headers: dict[str, str], model_field: bool) -> Reply:
    """An edit's answer as GPT image models give it: base64 images, the size and quality used, and
    usage with the input images' tokens (194 each: one 512 px tile; 4,160 more each at high fidelity)."""
    problem = edit_problem(req, model_field, fake.prism)
    if problem is not None:
        return problem
    assert req.form is not None and req.files is not None
    form = req.form
    if form.get("stream") == "true":
        body = {k: int(v) if k == "partial_images" else v for k, v in form.items()}
        return Reply(events=stream_events(fake, body, "image_edit"), headers=headers)
    count = sum(1 for name, *_ in req.files if name in ("image", "image[]"))
    high = form.get("input_fidelity") == "high" or form.get("model", "").startswith("gpt-image-2")
    image_tokens = count * (194 + (4160 if high else 0))
    text_tokens = len(form["prompt"].split()) + 6
    n = int(form.get("n", "1"))
    data = [{"b64_json": base64.b64encode(fake.image_bytes).decode()} for _ in range(n)]
    size = form.get("size", "auto")
    if fake.prism and size not in GPT_IMAGE_SIZES:
        size = "auto"  # openai's ImagesResponse.size allows only these
    payload = {
        "created": int(time.time()), "background": form.get("background", "opaque"), "data": data,
        "output_format": form.get("output_format", "png"), "quality": form.get("quality", "medium"),
        "size": "1024x1024" if size == "auto" else size,
        "usage": {"input_tokens": image_tokens + text_tokens, "output_tokens": 1056 * n,
                  "total_tokens": image_tokens + text_tokens + 1056 * n,
                  "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens}},
    }  # fmt: skip
    return Reply(json=payload, headers=headers)
