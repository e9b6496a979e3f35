"""A real HTTP server on 127.0.0.1 standing in for the Gemini API's batch mode and Files API.

It accepts only what the real API accepts (see imggen/batches/gemini.py for the sources): the key in
`x-goog-api-key` (never `?key=`), `batchGenerateContent` bodies of `{"batch": {"displayName",
"inputConfig"}}` with either inline `requests.requests[]` (`{"request", "metadata"}`, at most 20 MB in
all) or a `fileName` uploaded here through the resumable protocol, each request checked as
`generateContent` checks it (fakegoogle.content_problem), Gemini image models only. Each batch then
acts out the states its script names, one per status poll (PENDING, RUNNING, SUCCEEDED, FAILED,
CANCELLED, EXPIRED), answers per request (an image, an error status, a blocked prompt, a text-only
candidate), and serves its results inline or as a responses file, which can be made to expire.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fakegoogle import GEMINI_KEY, content_problem
from fakeserver import TINY_PNG, Reply
from localhttp import LocalHandler, LocalHttp

INLINE_LIMIT = 20_000_000
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
CREATE = re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$")
BATCH = re.compile(r"^/v1beta/batches/([^/:]+)(:cancel)?$")
DOWNLOAD = re.compile(r"^(?:/download)?/v1beta/files/([^/:]+):download$")
BATCH_FIELDS = {"displayName", "inputConfig", "priority"}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}


@dataclass
class Batch:
    id: str
    model: str
    display_name: str
    keys: list[str]
    requests: list[dict[str, Any]]
    inline: bool
    script: list[str]  # the states still to report, one per poll; the last one stays
    state: str = "PENDING"
    responses_file: str | None = None


@dataclass
class FakeGeminiBatch(LocalHttp):
    # The states every new batch walks through, one per status poll (the last stays).
    script: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    # What a request answers, by key: "error" (a Status), "blocked" (promptFeedback), "text" (no image).
    outcomes: dict[str, str] = field(default_factory=dict)
    image: bytes = TINY_PNG
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers
    batches: dict[str, Batch] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    expired_files: set[str] = field(default_factory=set)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunk_sizes: list[int] = field(default_factory=list)
    # The answers of the next creates: 429 refuses (nothing made); 5xx makes the batch, then fails (a
    # lost answer, as a proxy or Google's front end can give after the work is done).
    create_failures: list[int] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._listen(_Handler)

    @property
    def api_base(self) -> str:
        return f"{self.root}/v1beta"

    def expire_file(self, name: str) -> None:
        self.expired_files.add(name.removeprefix("files/"))

    # --- answers -------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append((method, path, headers))
        if path == "/upload/v1beta/files" and "upload_id" in query:
            return self._chunk(query["upload_id"], headers, body)  # the upload id is the credential
        if "key" in query or headers.get("x-goog-api-key") != GEMINI_KEY:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        if method == "POST" and path == "/upload/v1beta/files":
            return self._start_upload(headers, body)
        if method == "POST" and (match := CREATE.match(path)):
            return self._create(match.group(1), headers, body)
        if (match := BATCH.match(path)) and (batch := self.batches.get(match.group(1))) is not None:
            if match.group(2) and method == "POST":
                return _cancel(batch, TERMINAL, f"Batch is already {batch.state}.")
            if not match.group(2) and method == "GET":
                return Reply(json=self._operation(batch, advance=True))
        if method == "GET" and (match := DOWNLOAD.match(path)):
            if query.get("alt") != "media":
                return _error(400, "INVALID_ARGUMENT", "alt=media is required to download a file")
            name = match.group(1)
            if name in self.expired_files or name not in self.files:
                return _error(404, "NOT_FOUND", f"File files/{name} not found.")
            return Reply(body=self.files[name], headers={"Content-Type": "application/octet-stream"})
        return _error(404, "NOT_FOUND", f"no route {method} {path}")

    def _start_upload(self, headers: dict[str, str], body: bytes) -> Reply:
        wanted = {"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start"}
        if any(headers.get(k, "").lower() != v for k, v in wanted.items()):
            return _error(400, "INVALID_ARGUMENT", "Upload protocol headers are missing.")
        size = headers.get("x-goog-upload-header-content-length", "")
        if not size.isdigit():
            return _error(400, "INVALID_ARGUMENT", "X-Goog-Upload-Header-Content-Length is required.")
        try:
            meta = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if set(meta) - {"file"} or set(meta.get("file", {})) - {"displayName", "mimeType", "name"}:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name.")
        upload_id = f"u{next(self._ids)}"
        self.uploads[upload_id] = {"size": int(size), "data": bytearray(), "done": False,
                                   "mime": headers.get("x-goog-upload-header-content-type", "")}  # fmt: skip
        url = f"{self.root}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
        return Reply(json={}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"})

    def _chunk(self, upload_id: str, headers: dict[str, str], body: bytes) -> Reply:
        upload = self.uploads.get(upload_id)
        if upload is None or upload["done"]:
            return _error(404, "NOT_FOUND", "No such upload session.")
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").split(",")}
        if "upload" not in command or headers.get("x-goog-upload-offset") != str(len(upload["data"])):
            return _error(400, "INVALID_ARGUMENT", "Bad upload command or offset.")
        upload["data"] += body
        self.chunk_sizes.append(len(body))
        if "finalize" not in command:
            return Reply(json={}, headers={"x-goog-upload-status": "active"})
        if len(upload["data"]) != upload["size"]:
            return _error(400, "INVALID_ARGUMENT", "Upload size does not match the declared length.")
        upload["done"] = True
        name = f"in{next(self._ids)}"
        self.files[name] = bytes(upload["data"])
        file = {"name": f"files/{name}", "mimeType": upload["mime"], "sizeBytes": str(upload["size"]),
                "state": "ACTIVE", "source": "UPLOADED"}  # fmt: skip
        return Reply(json={"file": file}, headers={"x-goog-upload-status": "final"})

    def _create(self, model: str, headers: dict[str, str], body: bytes) -> Reply:
        if not headers.get("content-type", "").startswith("application/json"):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected content type.")
        if "image" not in model or not model.startswith("gemini"):
            return _error(400, "INVALID_ARGUMENT", f"Model {model} does not support batch generation.")
        try:
            top = json.loads(body)
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        batch = top.get("batch") if isinstance(top, dict) and set(top) == {"batch"} else None
        if not isinstance(batch, dict) or set(batch) - BATCH_FIELDS:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name at 'batch'.")
        if not batch.get("displayName"):
            return _error(400, "INVALID_ARGUMENT", "* batch.display_name: required field is not specified")
        config = batch.get("inputConfig")
        if not isinstance(config, dict) or len(config) != 1 or next(iter(config)) not in ("fileName", "requests"):
            return _error(400, "INVALID_ARGUMENT", "* batch.input_config: exactly one source is required")
        if "requests" in config:
            if len(body) > INLINE_LIMIT:
                return _error(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes.")
            items = _dict(config["requests"]).get("requests")
            if set(_dict(config["requests"])) != {"requests"} or not isinstance(items, list) or not items:
                return _error(400, "INVALID_ARGUMENT", "* batch.input_config.requests.requests: required")
            pairs = []
            for item in items:
                if not isinstance(item, dict) or set(item) - {"request", "metadata"}:
                    return _error(400, "INVALID_ARGUMENT", "Unknown name in InlinedRequest.")
                pairs.append((_dict(item.get("metadata")).get("key"), item.get("request")))
            inline = True
        else:
            name = str(config["fileName"]).removeprefix("files/")
            if name not in self.files:
                return _error(404, "NOT_FOUND", f"File {config['fileName']} not found.")
            pairs = []
            for raw in self.files[name].splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    return _error(400, "INVALID_ARGUMENT", "The input file holds a line that is not JSON.")
                if not isinstance(line, dict) or set(line) - {"key", "request"}:
                    return _error(400, "INVALID_ARGUMENT", "An input file line has unknown fields.")
                pairs.append((line.get("key"), line.get("request")))
            inline = False
        for key, request in pairs:
            problem = content_problem(request, model) if isinstance(request, dict) else "request is not an object"
            if problem:
                return _error(400, "INVALID_ARGUMENT", f"request {key}: {problem}")

        def make() -> dict[str, Any]:
            batch_id = f"b{next(self._ids)}"
            keys = [str(k) if k is not None else "" for k, _ in pairs]
            made = Batch(batch_id, model, batch["displayName"], keys, [r for _, r in pairs], inline, list(self.script))
            self.batches[batch_id] = made
            return self._operation(made, advance=False)

        return _create(self.create_failures, make, "Resource has been exhausted (e.g. check quota).",
                       "An internal error has occurred.")  # fmt: skip

    def _operation(self, batch: Batch, advance: bool) -> dict[str, Any]:
        if advance:
            _step(batch)
        done = batch.state in TERMINAL
        ran = len(batch.keys) if batch.state == "SUCCEEDED" else 0
        failed = sum(self._outcome(k) == "error" for k in batch.keys) if ran else 0
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE, "model": f"models/{batch.model}", "displayName": batch.display_name,
            "state": f"BATCH_STATE_{batch.state}", "name": f"batches/{batch.id}",
            "batchStats": {"requestCount": str(len(batch.keys)), "successfulRequestCount": str(ran - failed),
                           "failedRequestCount": str(failed), "pendingRequestCount": str(len(batch.keys) - ran)},
        }  # fmt: skip
        operation: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": metadata}
        if batch.state == "SUCCEEDED":
            output = self._output(batch)
            metadata["output"] = output
            operation["response"] = {"@type": "type.googleapis.com/...GenerateContentBatchOutput", **output}
        elif batch.state == "FAILED":
            operation["error"] = {"code": 13, "message": "The batch failed: internal error."}
        if done:
            operation["done"] = True
        return operation

    def _output(self, batch: Batch) -> dict[str, Any]:
        answers = [self._response(k, r) for k, r in zip(batch.keys, batch.requests, strict=True)]
        if batch.inline:
            items = [{**a, "metadata": {"key": k}} if k else a for k, a in zip(batch.keys, answers, strict=True)]
            return {"inlinedResponses": {"inlinedResponses": items}}
        if batch.responses_file is None:
            name = f"out{next(self._ids)}"
            lines = [json.dumps({"key": k, **a}) for k, a in zip(batch.keys, answers, strict=True)]
            self.files[name] = ("\n".join(lines) + "\n").encode()
            batch.responses_file = name
        return {"responsesFile": f"files/{batch.responses_file}"}

    def _outcome(self, key: str) -> str:
        return self.outcomes.get(key, "image")

    def _response(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        outcome = self._outcome(key)
        if outcome == "error":
            return {"error": {"code": 8, "message": "Resource has been exhausted (e.g. check quota).",
                              "status": "RESOURCE_EXHAUSTED"}}  # fmt: skip
        if outcome == "blocked":
            return {"response": {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}}
        if outcome == "text":
            return {"response": TEXT_ONLY}
        usage = {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}
        return {"response": {"candidates": _candidates(self.image, request), "usageMetadata": usage}}


TEXT_ONLY = {"candidates": [{"content": {"role": "model", "parts": [{"text": "I can't draw that."}]},
                              "finishReason": "IMAGE_SAFETY"}]}  # fmt: skip


def _candidates(image: bytes, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The image candidates a request asks for (generationConfig.candidateCount)."""
    b64 = base64.b64encode(image).decode()
    parts = [{"text": "Here it is."}, {"inlineData": {"mimeType": "image/png", "data": b64}}]
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
    return [candidate] * int(_dict(request.get("generationConfig")).get("candidateCount", 1))


def _step(item: Any) -> None:
    """A status poll: the next state of the item's script (the last one stays)."""
    if item.script:
        item.state = item.script.pop(0) if len(item.script) > 1 else item.script[0]


def _create(failures: list[int], make: Callable[[], dict[str, Any]], quota: str, internal: str) -> Reply:
    """A create as both services answer one under `create_failures`: a 429 before anything is made; any
    other failure after the job is made (its answer lost: the job exists all the same); else the job."""
    failure = failures.pop(0) if failures else None
    if failure == 429:
        return _error(429, "RESOURCE_EXHAUSTED", quota)
    made = make()
    return Reply(json=made) if failure is None else _error(failure, "INTERNAL", internal)


def _cancel(item: Any, terminal: set[str], already: str) -> Reply:
    """A cancel: refused once the item has ended, else its next polls say CANCELLING, then CANCELLED."""
    if item.state in terminal:
        return _error(400, "FAILED_PRECONDITION", already)
    item.script = ["CANCELLING", "CANCELLED"]
    return Reply(json={})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error(status: int, name: str, message: str, reason: str | None = None) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com"}]  # fmt: skip
    return Reply(status=status, json={"error": error})


class _Handler(LocalHandler):
    def _handle(self) -> None:
        fake: FakeGeminiBatch = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake.answer(self.command, parts.path, dict(parse_qsl(parts.query)), headers, body)
        payload = json.dumps(reply.json).encode() if reply.json is not None else (reply.body or b"")
        self.send_response(reply.status)
        content_type = "application/json; charset=UTF-8" if reply.json is not None else "application/octet-stream"
        self.send_header("Content-Type", content_type)
        for name, value in (reply.headers or {}).items():
            if name.lower() != "content-type":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
