"""One real HTTP server on 127.0.0.1 that plays xAI, Recraft and Together AI, each by its own rules.

Each answers under its own prefix (`/xai/v1/…`, `/recraft/v1/…`, `/together/v1/…`), checks the bearer
key, the content type and every body field as the real API takes it (refusing what it refuses: a
`size` sent to xAI, an unknown field to Recraft's typed request, `b64_json` to Together), answers in
its own shape, and serves result URLs under `/files/` (recording whether a download carried a key).
`script(path_part, Reply…)` makes the next matching requests misbehave: an error, a delay, a broken
body. The rules and their sources are the provider modules' docstrings (cli/imggen/providers/).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

from fakeserver import TINY_JPEG, TINY_PNG

XAI_KEY = "xai-test-key-ABCDEF0123456789"
RECRAFT_KEY = "recraft-test-token-0123456789abcdef"
TOGETHER_KEY = "tg-test-key-0123456789abcdef"

XAI_RATIOS = {
    "1:1",
    "3:4",
    "4:3",
    "9:16",
    "16:9",
    "2:3",
    "3:2",
    "9:19.5",
    "19.5:9",
    "9:20",
    "20:9",
    "1:2",
    "2:1",
    "auto",
}
XAI_FIELDS = {"model", "prompt", "n", "response_format", "aspect_ratio", "resolution", "quality", "user"}
XAI_EDIT_FIELDS = XAI_FIELDS | {"image", "images", "mask"}
RECRAFT_FIELDS = {"prompt", "model", "n", "style", "substyle", "style_id", "size", "response_format", "negative_prompt",
                  "random_seed", "controls", "text_layout", "image_format", "block_nsfw", "expire",
                  "calculate_features"}  # fmt: skip
RECRAFT_EDIT_FIELDS = (RECRAFT_FIELDS - {"size"}) | {"image_url", "strength"}
RECRAFT_V3_SIZES = {"1024x1024", "1365x1024", "1024x1365", "1536x1024", "1024x1536", "1820x1024", "1024x1820",
                    "1024x2048", "2048x1024", "1434x1024", "1024x1434", "1024x1280", "1280x1024", "1024x1707",
                    "1707x1024"}  # fmt: skip
RECRAFT_V4_RATIOS = {"1:1", "2:1", "1:2", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "6:10", "14:10", "10:14", "16:9",
                     "9:16"}  # fmt: skip
TOGETHER_FIELDS = {"model", "prompt", "width", "height", "n", "steps", "seed", "negative_prompt", "response_format",
                   "output_format", "guidance_scale", "image_url", "reference_images", "image_loras",
                   "disable_safety_checker", "aspect_ratio"}  # fmt: skip
DATA_URI = re.compile(r"^data:image/(png|jpeg|webp);base64,([A-Za-z0-9+/=]+)$")


@dataclass
class Reply:
    """A scripted answer: JSON (`json`) or raw `body`, after `delay` seconds; `truncate` cuts the body
    short of its Content-Length (the connection closes mid-answer)."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None


@dataclass
class FakeLookalikes:
    image: bytes = TINY_PNG
    requests: list[Seen] = field(default_factory=list)
    downloads: list[Seen] = field(default_factory=list)
    _scripts: list[tuple[str, list[Reply]]] = field(default_factory=list)
    _files: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: count(1))

    def __enter__(self) -> FakeLookalikes:
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def base(self, provider: str) -> str:
        """The api_base to give imggen: Recraft's is its host root (paths are /v1/…), the others' end in /v1."""
        return f"{self.base_url}/{provider}" + ("" if provider == "recraft" else "/v1")

    def script(self, path_part: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.append((path_part, list(replies)))

    def scripted(self, path: str) -> Reply | None:
        with self._lock:
            for part, replies in self._scripts:
                if part in path and replies:
                    return replies.pop(0)
        return None

    def add_file(self, data: bytes, suffix: str = "png") -> str:
        with self._lock:
            name = f"img{next(self._ids)}.{suffix}"
            self._files[name] = data
        return f"{self.base_url}/files/{name}"

    def images(self, n: int, response_format: str, b64_name: str = "b64_json") -> list[dict[str, Any]]:
        if response_format == "url":
            return [{"url": self.add_file(self.image)} for _ in range(n)]
        return [{b64_name: base64.b64encode(self.image).decode()} for _ in range(n)]


def _bad(status: int, payload: Any) -> Reply:
    return Reply(status, json=payload) if not isinstance(payload, str) else Reply(status, body=payload)


def _xai_error(message: str, status: int = 400) -> Reply:
    return _bad(status, {"code": "Client specified an invalid argument", "error": message})


def xai(fake: FakeLookalikes, path: str, headers: dict[str, str], body: Any) -> Reply:
    if headers.get("authorization") != f"Bearer {XAI_KEY}":
        message = "Incorrect API key provided. You can obtain an API key from https://console.x.ai."
        return _bad(401, {"code": "The caller does not have permission to execute the specified operation",
                          "error": message})  # fmt: skip
    if path not in ("/xai/v1/images/generations", "/xai/v1/images/edits"):
        return _bad(404, {"code": "Some requested entity was not found", "error": f"no route {path}"})
    if not headers.get("content-type", "").startswith("application/json") or not isinstance(body, dict):
        return _xai_error("The request body must be JSON (multipart edits are not supported).", 415)
    edit = path.endswith("/edits")
    for key in body:
        if key not in (XAI_EDIT_FIELDS if edit else XAI_FIELDS):
            return _xai_error(f"Argument not supported: {key}")
    model, n = body.get("model"), body.get("n", 1)
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return _xai_error("prompt is required")
    if not isinstance(n, int) or not 1 <= n <= 10:
        return _xai_error("n must be between 1 and 10")
    if body.get("aspect_ratio", "1:1") not in XAI_RATIOS | (
        {"21:9", "5:2"} if model == "grok-imagine-image-2.0" else set()
    ):
        return _xai_error(f"Invalid aspect ratio: {body.get('aspect_ratio')}")
    if body.get("resolution", "1k") not in ("1k", "2k"):
        return _xai_error(f"Invalid resolution: {body.get('resolution')}")
    if "quality" in body and (model != "grok-imagine-image-2.0" or body["quality"] not in ("low", "medium")):
        return _xai_error(f"Argument not supported: quality={body['quality']}")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        return _xai_error("response_format must be url or b64_json")
    if edit:
        parts = [body["image"]] if "image" in body else body.get("images")
        if ("image" in body and "images" in body) or not isinstance(parts, list) or not parts:
            return _xai_error("Provide either image or images")
        if len(parts) > (5 if model == "grok-imagine-image-2.0" else 3):
            return _xai_error("Too many source images")
        for part in parts:
            if not isinstance(part, dict) or part.get("type") != "image_url" or not _data_uri(part.get("url")):
                return _xai_error("each image must be {url, type: image_url} with a URL or a base64 data URI")
    if "moderate" in body["prompt"]:
        return _xai_error("Generated image rejected by content moderation.")
    items = fake.images(n, body.get("response_format", "url"))
    for item in items:
        item.update(mime_type="image/png", revised_prompt="")
    return Reply(json={"data": items, "usage": {"cost_in_usd_ticks": 200_000_000 * n}},
                 headers={"x-request-id": f"xai-{next(fake._ids)}"})  # fmt: skip


def recraft(fake: FakeLookalikes, path: str, headers: dict[str, str], body: Any) -> Reply:
    if headers.get("authorization") != f"Bearer {RECRAFT_KEY}":
        return Reply(401, body="request unauthorized", headers={"Content-Type": "text/plain"})
    if path not in ("/recraft/v1/images/generations", "/recraft/v1/images/imageToImage"):
        return Reply(404, body="404 page not found", headers={"Content-Type": "text/plain"})
    if not isinstance(body, dict):
        return _bad(400, {"code": "invalid_json", "message": "the body is not a JSON object"})
    edit = path.endswith("imageToImage")
    for key in body:
        if key not in (RECRAFT_EDIT_FIELDS if edit else RECRAFT_FIELDS):
            return _bad(400, {"code": "invalid_request", "message": f'json: unknown field "{key}"'})
    model, n = str(body.get("model", "recraftv4_1")), body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 6:
        return _bad(400, {"code": "invalid_n", "message": "n must be between 1 and 6"})
    size = body.get("size")
    if size is not None:
        allowed = RECRAFT_V4_RATIOS if model.startswith("recraftv4") else RECRAFT_V3_SIZES
        if size not in allowed:
            return _bad(400, {"code": "invalid_size", "message": f"size {size} is not supported by {model}"})
    if model.startswith("recraftv4") and "negative_prompt" in body:
        return _bad(400, {"code": "not_supported", "message": "negative_prompt is not supported by this model"})
    if edit:
        strength = body.get("strength")
        if not _data_uri(body.get("image_url")) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            return _bad(400, {"code": "invalid_request", "message": "image_url and strength in [0, 1] are required"})
    vector = model.endswith("_vector") or body.get("style") in ("vector_illustration", "icon")
    fmt = body.get("response_format", "url")
    if vector:
        svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
        items = [{"url": fake.add_file(svg, "svg")} if fmt == "url" else {"b64_json": base64.b64encode(svg).decode()}]
    else:
        items = fake.images(n, fmt)
    for item in items:
        item["image_id"] = f"00000000-0000-4000-8000-{next(fake._ids):012d}"
    return Reply(json={"created": int(time.time()), "credits": 40 * len(items), "data": items})


def together(fake: FakeLookalikes, path: str, headers: dict[str, str], body: Any) -> Reply:
    def error(status: int, message: str, code: str | None = None) -> Reply:
        return _bad(
            status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        )

    if headers.get("authorization") != f"Bearer {TOGETHER_KEY}":
        return error(401, "Invalid API key provided.", "invalid_api_key")
    if path != "/together/v1/images/generations":
        return error(404, f"Unknown endpoint {path}")
    if not isinstance(body, dict):
        return error(400, "Input validation error: the body is not JSON")
    for key in body:
        if key not in TOGETHER_FIELDS:
            return error(400, f"Input validation error: unknown parameter `{key}`")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 4:
        return error(400, "Input validation error: `n` must be between 1 and 4")
    for side in ("width", "height"):
        value = body.get(side, 1024)
        if not isinstance(value, int) or value % 8 or not 64 <= value <= 2048:
            return error(400, f"Input validation error: `{side}` must be a multiple of 8")
    fmt = body.get("response_format", "url")
    if fmt not in ("base64", "url"):
        return error(400, f"Input validation error: response_format must be base64 or url, not {fmt}")
    if "image_url" in body and not _data_uri(body["image_url"]):
        return error(400, "Input validation error: image_url must be a URL")
    items = [dict(item, index=i, type="url" if fmt == "url" else "b64_json")
             for i, item in enumerate(fake.images(n, "url" if fmt == "url" else "b64_json"))]  # fmt: skip
    return Reply(json={"id": f"tg-{next(fake._ids)}", "model": body.get("model"), "object": "list", "data": items})


def _data_uri(value: Any) -> bool:
    """A data URI of a real image (its bytes start as the type says), or an http(s) URL."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return True
    match = DATA_URI.match(value) if isinstance(value, str) else None
    if not match:
        return False
    data = base64.b64decode(match[2])
    return data.startswith({"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}[match[1]])


ROUTES = {"/xai/": xai, "/recraft/": recraft, "/together/": together}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLookalikes
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen("GET", self.path, headers)
        with self.fake._lock:
            self.fake.downloads.append(seen)
        reply = self.fake.scripted(self.path)
        name = self.path.removeprefix("/files/")
        data = self.fake._files.get(name)
        if reply is None and data is None:
            reply = Reply(404, body="not found")
        if reply is None and not headers.get("user-agent"):  # Together's CDN refuses a blank User-Agent
            reply = Reply(403, body="forbidden")
        if reply is None:
            kind = "image/svg+xml" if name.endswith(".svg") else "image/png"
            reply = Reply(body=data, headers={"Content-Type": kind})
        self._send(reply)

    def do_POST(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(headers.get("content-length", "0") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.fake._lock:
            self.fake.requests.append(Seen("POST", self.path, headers, body))
        reply = self.fake.scripted(self.path)
        if reply is None:
            route = next((f for prefix, f in ROUTES.items() if self.path.startswith(prefix)), None)
            reply = route(self.fake, self.path, headers, body) if route else Reply(404, body="no such provider")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.json is not None:
            data, kind = json.dumps(reply.json).encode(), "application/json"
        else:
            body = reply.body or b""
            data, kind = (body.encode() if isinstance(body, str) else body), "text/plain"
        headers = {"Content-Type": kind, **reply.headers}
        self.send_response(reply.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        if reply.truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if reply.truncate else data)
        if reply.truncate:
            self.close_connection = True


__all__ = ["TINY_JPEG", "FakeLookalikes", "Reply"]
