"""A real HTTP server on 127.0.0.1 standing in for an Azure AI Foundry resource with image deployments:
the Image API (`/openai/deployments/{d}/images/generations|edits`, FLUX.1), the BFL provider route
(`/providers/blackforestlabs/v1/flux-2-pro|flux-2-flex`, FLUX.2) and the MAI routes
(`/mai/v1/images/generations|edits`). It checks what Microsoft's pages say each takes (path,
api-version, key or Entra token, body fields, MAI's size bounds), answers `{"data": [{"b64_json"}]}`,
records every request, and misbehaves on demand (`script`: errors, slow, truncated or not JSON)."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fakeserver import TINY_PNG, Recorded

KEY = "azure-ai-test-key-ABCDEFGH12345678"
TOKEN = "azure-ai-entra-token-ZYXWVUTS87654321"
# Deployments of the resource: name -> what it serves (Foundry's default deployment name is the model's).
DEPLOYMENTS = {"FLUX-1.1-pro": "flux1", "FLUX.1-Kontext-pro": "kontext", "my-kontext": "kontext",
               "MAI-Image-2.6": "mai", "MAI-Image-2.5-Flash": "mai",
               "FLUX.2-pro": "flux2", "FLUX.2-flex": "flux2"}  # fmt: skip
IMAGE_API_FIELDS = {"prompt", "n", "size", "model", "output_format", "user", "response_format"}
BFL_FIELDS = {"model", "prompt", "width", "height", "num_images", "seed", "output_format", "safety_tolerance",
              "prompt_upsampling", "aspect_ratio", "input_image"}  # fmt: skip
BFL_FIELDS |= {f"input_image_{i}" for i in range(2, 11)}
BFL_FLEX_FIELDS = BFL_FIELDS | {"guidance", "steps"}
MAI_FIELDS = {"model", "prompt", "width", "height", "auto_aspect_ratio", "web_grounding"}
FILTER_WORD = "forbidden"  # a prompt with it is refused as Azure's content filter refuses


@dataclass
class Act:
    """A scripted answer: a status and JSON body, or raw bytes, after `delay` seconds; `cut` sends a
    Content-Length larger than the body and closes the connection."""

    status: int = 200
    json: Any = None
    raw: bytes | None = None
    delay: float = 0.0
    cut: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, **more: Any) -> Act:
    return Act(
        status, {"error": {"code": code, "message": message, **more}}, headers={"apim-request-id": f"apim-{status}"}
    )


def content_filter() -> Act:
    """Azure's content-filter refusal (LiteLLM users see it: BerriAI/litellm#16072)."""
    return error(400, "content_policy_violation", "Your request was rejected as a result of our safety system.",
                 inner_error={"code": "ResponsibleAIPolicyViolation"}, type="invalid_request_error")  # fmt: skip


class FakeAzureAI:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripts: list[tuple[str, Act]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path_part: str, *acts: Act) -> None:
        """The next requests whose path holds `path_part` get these answers, in order."""
        with self._lock:
            self.scripts.extend((path_part, act) for act in acts)

    def scripted(self, path: str) -> Act | None:
        with self._lock:
            for i, (part, act) in enumerate(self.scripts):
                if part in path:
                    del self.scripts[i]
                    return act
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeAzureAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What the resource answers.
    def answer(self, seen: Recorded) -> Act:
        act = self.scripted(seen.path)
        if act is not None:
            return act
        if seen.headers.get("api-key") not in (None, KEY) or seen.headers.get("authorization") not in (
            None, f"Bearer {KEY}", f"Bearer {TOKEN}",
        ) or not (seen.headers.get("api-key") or seen.headers.get("authorization")):  # fmt: skip
            return error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        parts = seen.path.strip("/").split("/")
        if parts[:2] == ["openai", "deployments"] and len(parts) == 5 and parts[3] == "images":
            return self._image_api(seen, parts[2], parts[4])
        if parts[:3] == ["providers", "blackforestlabs", "v1"] and len(parts) == 4:
            return self._bfl(seen, parts[3])
        if parts[:3] == ["mai", "v1", "images"] and len(parts) == 4:
            return self._mai(seen, parts[3])
        return error(404, "404", "Resource not found")

    def _image_api(self, seen: Recorded, deployment: str, operation: str) -> Act:
        if "api-version" not in seen.query:
            return error(404, "404", "Resource not found")  # Azure's answer to a missing api-version
        kind = DEPLOYMENTS.get(deployment)
        if kind not in ("flux1", "kontext") or (operation == "edits" and kind != "kontext"):
            return error(404, "DeploymentNotFound", "The API deployment for this resource does not exist.")
        fields = seen.form if operation == "edits" else seen.json
        if operation == "edits" and [f[0] for f in seen.files or []] != ["image"]:
            return error(400, "invalid_request_error", "One image file named 'image' is required.")
        return self._checked(fields, IMAGE_API_FIELDS, lambda: None)

    def _bfl(self, seen: Recorded, path: str) -> Act:
        if seen.query.get("api-version") != "preview" or path not in ("flux-2-pro", "flux-2-flex"):
            return error(404, "404", "Resource not found")
        body = seen.json if isinstance(seen.json, dict) else {}
        if "model" not in body:  # model and prompt are required (Microsoft's examples always send both)
            return error(400, "BadRequest", "model is required")
        if DEPLOYMENTS.get(str(body["model"])) != "flux2":  # the deployment, named in the body (assumed, as MAI)
            return error(404, "DeploymentNotFound", "The API deployment for this resource does not exist.")
        allowed = BFL_FLEX_FIELDS if path == "flux-2-flex" else BFL_FIELDS
        for key in [k for k in body if k.startswith("input_image")]:
            try:
                base64.b64decode(body[key], validate=True)
            except (ValueError, TypeError):
                return error(400, "BadRequest", f"{key} is not base64")
        return self._checked(body, allowed, lambda: None)

    def _mai(self, seen: Recorded, operation: str) -> Act:
        fields = seen.form if operation == "edits" else seen.json
        if not isinstance(fields, dict) or DEPLOYMENTS.get(str(fields.get("model"))) != "mai":
            return error(404, "DeploymentNotFound", "The API deployment for this resource does not exist.")
        if operation == "edits" and [f[0] for f in seen.files or []] != ["image"]:
            return error(400, "BadRequest", "One image (JPEG or PNG) is required.")

        def bounds() -> Act | None:
            width, height = int(fields.get("width", 1024)), int(fields.get("height", 1024))
            if width < 768 or height < 768 or width * height > 1_048_576:
                return error(
                    400, "BadRequest", "width and height must each be at least 768 and their product at most 1048576."
                )
            return None

        return self._checked(fields, MAI_FIELDS if operation == "generations" else {"model", "prompt"}, bounds)

    def _checked(self, fields: Any, allowed: set[str], more: Any) -> Act:
        if not isinstance(fields, dict) or not fields.get("prompt"):
            return error(400, "invalid_request_error", "prompt is required")
        unknown = sorted(set(fields) - allowed)
        if unknown:
            return error(400, "unknown_parameter", f"Unrecognized request argument supplied: {unknown[0]}")
        if FILTER_WORD in str(fields["prompt"]):
            return content_filter()
        if (problem := more()) is not None:
            return problem
        item = {"b64_json": base64.b64encode(TINY_PNG).decode(), "content_filter_results": {}}
        return Act(200, {"created": int(time.time()), "data": [item]}, headers={"apim-request-id": "apim-ok"})


def _handler(fake: FakeAzureAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Recorded("POST", url.path, dict(parse_qsl(url.query)), headers, body, form={}, files=[])
            kind = seen.headers.get("content-type", "")
            if kind.startswith("application/json"):
                try:
                    seen.json = json.loads(body)
                except ValueError:
                    seen.json = None
            elif kind.startswith("multipart/form-data"):
                message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    payload = part.get_payload(decode=True) or b""
                    if part.get_filename():
                        seen.files.append((str(name), str(part.get_filename()), part.get_content_type(), payload))
                    else:
                        seen.form[str(name)] = payload.decode()
            with fake._lock:
                fake.requests.append(seen)
            self._send(fake.answer(seen))

        def _send(self, act: Act) -> None:
            if act.delay:
                time.sleep(act.delay)
            payload = act.raw if act.raw is not None else json.dumps(act.json).encode()
            self.send_response(act.status)
            self.send_header("Content-Type", "application/json" if act.raw is None else "text/html")
            self.send_header("Content-Length", str(len(payload) + (1000 if act.cut else 0)))
            for name, value in act.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            if act.cut:
                self.close_connection = True

    return Handler
