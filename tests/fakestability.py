"""A fake Stability AI platform API on 127.0.0.1: real HTTP, real multipart parsing, and only what the real
API takes (the services, fields, enums and limits of https://platform.stability.ai/docs/api-reference as
the provider module cites them). It answers image bytes with the `finish-reason` and `seed` headers,
runs replace-background-and-relight as a job polled at /v2beta/results/{id}, and misbehaves on demand
(`script`): content moderation, a blurred image, no credits, rate limits, server errors, truncated or
wrong-typed bodies."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

from fakeserver import TINY_PNG
from localhttp import LocalHandler, LocalHttp

KEY = "sk-test-0123456789abcdefXYZ0"
MAX_BODY = 10 * 1024 * 1024  # "Note: maximum request size is 10MiB"
RATIOS = {"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}
FORMATS = {"png", "jpeg", "webp"}
SD3_MODELS = {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"}
STYLES = {"3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
          "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
          "pixel-art", "tile-texture"}  # fmt: skip
_GEN = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"}
_EDIT = {"image", "prompt", "negative_prompt", "seed", "output_format"}
# Each service: (every field it takes, the fields it requires, the file fields).
SERVICES: dict[str, tuple[set[str], set[str], set[str]]] = {
    "generate/ultra": (_GEN | {"image", "strength"}, {"prompt"}, {"image"}),
    "generate/core": (_GEN | {"style_preset"}, {"prompt"}, set()),
    "generate/sd3": (_GEN | {"model", "mode", "image", "strength", "cfg_scale"}, {"prompt"}, {"image"}),
    "edit/inpaint": (_EDIT | {"mask", "grow_mask", "style_preset"}, {"image", "prompt"}, {"image", "mask"}),
    "edit/erase": ({"image", "mask", "grow_mask", "seed", "output_format"}, {"image"}, {"image", "mask"}),
    "edit/outpaint": ({"image", "prompt", "left", "right", "up", "down", "creativity", "seed", "output_format",
                       "style_preset"}, {"image"}, {"image"}),
    "edit/search-and-replace": (_EDIT | {"search_prompt", "grow_mask", "style_preset"},
                                {"image", "prompt", "search_prompt"}, {"image"}),
    "edit/search-and-recolor": (_EDIT | {"select_prompt", "grow_mask", "style_preset"},
                                {"image", "prompt", "select_prompt"}, {"image"}),
    "edit/remove-background": ({"image", "output_format"}, {"image"}, {"image"}),
    "edit/replace-background-and-relight": (
        {"subject_image", "background_reference", "background_prompt", "foreground_prompt", "negative_prompt",
         "preserve_original_subject", "original_background_depth", "keep_original_background",
         "light_source_direction", "light_reference", "light_source_strength", "seed", "output_format"},
        {"subject_image"}, {"subject_image", "background_reference", "light_reference"}),
    "control/sketch": (_EDIT | {"control_strength", "style_preset"}, {"image", "prompt"}, {"image"}),
    "control/structure": (_EDIT | {"control_strength", "style_preset"}, {"image", "prompt"}, {"image"}),
    "control/style": (_EDIT | {"aspect_ratio", "fidelity", "style_preset"}, {"image", "prompt"}, {"image"}),
}  # fmt: skip
ASYNC = {"edit/replace-background-and-relight"}
MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")


@dataclass
class Answer:
    """A scripted answer: status, headers and body as they are sent (`truncate`: the connection drops
    after that many bytes of a body that claims its full length)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncate: int | None = None


def error(status: int, name: str, *errors: str) -> Answer:
    body = json.dumps({"id": f"err{status}0123456789abcdef", "name": name, "errors": list(errors)}).encode()
    return Answer(status, {"content-type": "application/json"}, body)


def image(seed: int = 7, reason: str = "SUCCESS", data: bytes = TINY_PNG) -> Answer:
    return Answer(200, {"content-type": "image/png", "finish-reason": reason, "seed": str(seed)}, data)


MODERATED = error(403, "content_moderation", "Your request was flagged by our content moderation system, as a "
                  "result your request was denied and you were not charged.")  # fmt: skip
NO_CREDITS = error(402, "payment_required", "You lack sufficient credits to make this request.")
RATE_LIMITED = error(429, "rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a 10 "
                     "second period.")  # fmt: skip
SERVER_ERROR = error(500, "internal_error", "An unexpected server error occurred, please try again.")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name -> (filename, type, bytes)


class FakeStability(LocalHttp):
    """`with FakeStability() as fake:`; `fake.url` is the api_base; `fake.seen` every request received."""

    def __init__(self, polls: int = 2) -> None:
        self.seen: list[Seen] = []
        self.scripted: deque[Answer] = deque()
        self.polls = polls  # 202s a job answers before its result
        self.jobs: dict[str, int] = {}
        self.lock = threading.Lock()
        self._listen(_Handler)

    @property
    def url(self) -> str:
        return self.root

    def script(self, *answers: Answer) -> None:
        """The next requests get these answers, in order, whatever they ask."""
        self.scripted.extend(answers)

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def answer(self, seen: Seen, body: bytes) -> Answer:
        with self.lock:
            self.seen.append(seen)
            if self.scripted:
                return self.scripted.popleft()
        if seen.headers.get("authorization") != f"Bearer {KEY}":
            return error(401, "unauthorized", "authorization: invalid or missing API key")
        if seen.method == "GET":
            return self._result(seen.path)
        return self._post(seen, body)

    def _result(self, path: str) -> Answer:
        job = path.removeprefix("/v2beta/results/")
        with self.lock:
            if not path.startswith("/v2beta/results/") or job not in self.jobs:
                return error(404, "not_found", f"generation {job} was not found")
            if self.jobs[job] > 0:
                self.jobs[job] -= 1
                answer = Answer(202, {"content-type": "application/json"},
                                json.dumps({"id": job, "status": "in-progress"}).encode())  # fmt: skip
                return answer
            del self.jobs[job]  # a result is collected once here (the real API keeps it 24 h)
        return image(seed=99)

    def _post(self, seen: Seen, body: bytes) -> Answer:
        service = seen.path.removeprefix("/v2beta/stable-image/")
        if not seen.path.startswith("/v2beta/stable-image/") or service not in SERVICES:
            return error(404, "not_found", f"{seen.path}: not found")
        if len(body) > MAX_BODY:
            return error(413, "payload_too_large", "body: payloads cannot be larger than 10MiB in size")
        accept = seen.headers.get("accept", "")
        if accept not in ("image/*", "application/json"):
            return error(400, "bad_request", "accept: must be image/* or application/json")
        if not seen.headers.get("content-type", "").startswith("multipart/form-data"):
            return error(400, "bad_request", "content-type: must be multipart/form-data")
        problem = _parse(seen, body) or _check(service, seen)
        if problem:
            return error(400, "bad_request", problem)
        prompt = seen.fields.get("prompt", "") + seen.fields.get("background_prompt", "")
        if "forbidden" in prompt:
            return MODERATED
        if service in ASYNC:
            job = f"job{len(self.seen):04d}" + "0" * 56
            with self.lock:
                self.jobs[job] = self.polls
            return Answer(200, {"content-type": "application/json"}, json.dumps({"id": job}).encode())
        seed = int(seen.fields.get("seed") or 0) or 1234567
        reason = "CONTENT_FILTERED" if "blurry" in prompt else "SUCCESS"
        if accept == "application/json":
            import base64

            payload = {"image": base64.b64encode(TINY_PNG).decode(), "finish_reason": reason, "seed": seed}
            return Answer(200, {"content-type": "application/json"}, json.dumps(payload).encode())
        return image(seed, reason)


def _parse(seen: Seen, body: bytes) -> str | None:
    head = f"Content-Type: {seen.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return "content-type: the body is not multipart/form-data"
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            return "a part has no name"
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            seen.files[name] = (filename, part.get_content_type(), data)
        else:
            seen.fields[name] = data.decode()
    return None


def _check(service: str, seen: Seen) -> str | None:
    """Why Stability would refuse these fields (400), or None."""
    allowed, required, file_fields = SERVICES[service]
    given = set(seen.fields) | set(seen.files)
    for name in sorted(given - allowed):
        return f"{name}: unknown field"
    for name in sorted(required - given):
        return f"{name}: is required"
    for name in sorted(set(seen.fields) & file_fields):
        return f"{name}: must be a file"
    for name, (_, _, data) in seen.files.items():
        if name not in file_fields:
            return f"{name}: must not be a file"
        if not data.startswith(MAGIC):
            return f"{name}: unsupported image format (png, jpeg, webp)"
    f = seen.fields
    if f.get("aspect_ratio") and f["aspect_ratio"] not in RATIOS:
        return f"aspect_ratio: must be one of {sorted(RATIOS)}"
    if f.get("output_format") and f["output_format"] not in FORMATS:
        return "output_format: must be one of jpeg, png, webp"
    if f.get("style_preset") and f["style_preset"] not in STYLES:
        return "style_preset: invalid"
    if "seed" in f and not (f["seed"].isdigit() and int(f["seed"]) <= 4294967294):
        return "seed: must be an integer from 0 to 4294967294"
    if len(f.get("prompt", "")) > 10000:
        return "prompt: at most 10000 characters"
    if service == "generate/sd3":
        if f.get("model", "sd3.5-large") not in SD3_MODELS:
            return "model: must be one of " + ", ".join(sorted(SD3_MODELS))
        if "turbo" in f.get("model", "") and "negative_prompt" in f:
            return "negative_prompt: not supported by sd3.5-large-turbo"
        image_to_image = f.get("mode") == "image-to-image"
        if image_to_image != ("image" in seen.files):
            return "mode: image-to-image requires image (and text-to-image takes none)"
    if "image" in seen.files and service.startswith("generate/"):
        if "strength" not in f:
            return "strength: is required with an image"
        if "aspect_ratio" in f:
            return "aspect_ratio: not allowed with an image"
    if service == "edit/outpaint" and not any(f.get(k) for k in ("left", "right", "up", "down")):
        return "one of left, right, up, down is required"
    if service.endswith("relight") and not (f.get("background_prompt") or "background_reference" in seen.files):
        return "background_prompt or background_reference is required"
    return None


class _Handler(LocalHandler):
    def _handle(self) -> None:
        fake: FakeStability = self.server.fake  # type: ignore[attr-defined]
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        answer = fake.answer(seen, self._body())
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        sent = answer.body if answer.truncate is None else answer.body[: answer.truncate]
        self.wfile.write(sent)
        if answer.truncate is not None:
            self.close_connection = True
