"""An OpenAI-compatible server's `/images/edits` and `/images/variations` on 127.0.0.1, for the proxy's
tests: it reads the multipart body with the standard library's MIME parser (not the proxy's), accepts
only what OpenAI's API accepts and records what it got.

What it accepts is openai 3.57.0's `types/image_edit_params.py` and `types/image_create_variation_params.py`
as `_base_client._serialize_multipartform` sends them: files `image` or `image[]` (edits), `image`
(variations), `mask`; text fields by name, objects as `name[key]`; an unknown field is a 400
`unknown_parameter` as OpenAI answers one.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-compatible-server-key-123456"
EDIT_FIELDS = {
    "prompt", "background", "complexity", "frame_count", "frame_duration_ms", "input_fidelity", "model", "n",
    "output_compression", "output_format", "partial_images", "quality", "response_format", "safety_identifier",
    "size", "stream", "user",
}  # fmt: skip
EDIT_FILES = {"image", "image[]", "mask", "markup"}
VARIATION_FIELDS = {"model", "n", "response_format", "size", "user"}


def png(width: int = 16, height: int = 16, *, alpha: bool = False, clear: int = 0) -> bytes:
    """A PNG: RGB, or RGBA whose first `clear` rows are fully transparent (a mask)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    colour = 6 if alpha else 2
    rows = b""
    for y in range(height):
        pixel = (b"\x20\x60\xa0" + (b"\x00" if y < clear else b"\xff")) if alpha else b"\x20\x60\xa0"
        rows += b"\x00" + pixel * width
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:8]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    parts: list[Part]

    def field(self, name: str) -> str | None:
        found = [p.text for p in self.parts if p.name == name and p.filename is None]
        assert len(found) <= 1, f"{name} sent {len(found)} times"
        return found[0] if found else None

    def files(self, *names: str) -> list[Part]:
        return [p for p in self.parts if p.name in names and p.filename is not None]


@dataclass
class FakeCompatible:
    """An OpenAI-compatible image server. `fail` scripts answers (status, error code) for the next calls."""

    key: str = KEY
    received: list[Received] = field(default_factory=list)
    fail: list[tuple[int, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeCompatible:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, payload = fake.answer(self.path, dict(self.headers.items()), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-request-id", "req_fake_compatible")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {k.lower(): v for k, v in headers.items()}
        if headers.get("authorization") != f"Bearer {self.key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        kind = path.split("?", 1)[0].removeprefix("/v1/images/")
        if kind not in ("edits", "variations"):
            return _error(404, f"Invalid URL (POST {path})", "not_found")
        media = headers.get("content-type", "")
        if not media.startswith("multipart/form-data; boundary="):
            return _error(400, f"Invalid Content-Type header ({media}), expected multipart/form-data.", "invalid_value")
        parts = _parts(media, body)
        with self._lock:
            self.received.append(Received(path, headers, parts))
            scripted = self.fail.pop(0) if self.fail else None
        if scripted is not None:
            return _error(scripted[0], "scripted failure", scripted[1])
        fields, files = (EDIT_FIELDS, EDIT_FILES) if kind == "edits" else (VARIATION_FIELDS, {"image"})
        for part in parts:
            name = part.name.split("[", 1)[0] if part.name.startswith("svg[") else part.name
            allowed = files if part.filename is not None else fields | {"svg"}
            if name not in allowed:
                return _error(400, f"Unknown parameter: '{part.name}'.", "unknown_parameter", part.name)
        images = [p for p in parts if p.name in ("image", "image[]") and p.filename is not None]
        if not images:
            return _error(400, "Missing required parameter: 'image'.", "missing_required_parameter", "image")
        for image in images:
            if not image.content.startswith((b"\x89PNG", b"\xff\xd8", b"RIFF")):
                return _error(400, "Invalid image file or mode.", "invalid_image_file", "image")
        if kind == "edits" and not any(p.name == "prompt" for p in parts):
            return _error(400, "Missing required parameter: 'prompt'.", "missing_required_parameter", "prompt")
        n_text = next((p.text for p in parts if p.name == "n"), "1")
        if not n_text.isdigit() or not 1 <= int(n_text) <= 10:
            return _error(400, f"Invalid value: '{n_text}'.", "invalid_value", "n")
        first = images[0].content
        width, height = png_size(first) if first.startswith(b"\x89PNG") else (16, 16)
        made = base64.b64encode(png(width, height)).decode()
        return 200, {"created": int(time.time()), "data": [{"b64_json": made} for _ in range(int(n_text))]}


def _parts(content_type: str, body: bytes) -> list[Part]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    assert message.is_multipart(), "not a multipart body"
    parts = []
    for item in message.iter_parts():
        disposition = item.get("content-disposition", "")
        assert disposition.startswith("form-data"), disposition
        name = item.get_param("name", header="content-disposition")
        assert isinstance(name, str), disposition
        content = item.get_payload(decode=True)
        assert isinstance(content, bytes)
        parts.append(Part(name, item.get_filename(), item.get_content_type(), content))
    return parts


def _error(status: int, message: str, code: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
