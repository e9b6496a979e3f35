"""A real HTTP server on 127.0.0.1 standing in for OpenAI's Files and Batches APIs (openai-python 3.57.0
resources/files.py and resources/batches.py; the line shapes of batches/openai.py's docstring).

Each GET of a batch moves it one step along its script, so tests act out the lifecycle without
sleeping: validating → in_progress → finalizing → completed by default, or `failed` (validation
errors), `expired` (part done, the rest in the error file as `batch_expired`), and cancel →
cancelling → cancelled. A prompt holding FAIL is answered with a 400 in the error file. `faults`
makes the next calls of a kind go wrong: "500" answers a 500 having done nothing, "reset" drops the
connection having done nothing, "lost" does the work and then drops the connection (an answer lost on
the way back); "hold" keeps the call waiting until `release` is set. The server lives in the test
process, so its state outlives every imggen process the test starts."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from itertools import count
from typing import Any

from fakeserver import TINY_PNG, parse_multipart
from localhttp import LocalHttp

KEY = "sk-test-openai-0123456789"
SCRIPTS = {
    "completed": ["validating", "in_progress", "finalizing", "completed"],
    "failed": ["validating", "failed"],
    "expired": ["validating", "in_progress", "expired"],
}


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    script: list[str]
    step: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    metadata: dict[str, str] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})

    @property
    def status(self) -> str:
        return self.script[self.step]


class FakeBatches(LocalHttp):
    def __init__(self, outcome: str = "completed") -> None:
        self.outcome = outcome  # the script of batches created from now on
        self.image = TINY_PNG  # each image of the output file
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.uploads: list[int] = []  # requests per uploaded file
        self.ids = count(1)
        self.faults: dict[str, list[str]] = {
            "upload": [],
            "create": [],
            "content": [],
        }  # the next calls' faults, in turn
        self.release = threading.Event()  # a "hold" fault waits for it
        self.lock = threading.Lock()
        self._listen(self._handler())

    @property
    def base(self) -> str:
        return f"{self.root}/v1"

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": KEY, "OPENAI_API_BASE": self.base}

    # -- the API --------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.ids):04d}"

    def upload(self, form: dict[str, Any]) -> tuple[int, Any]:
        if form.get("purpose") != "batch" or "file" not in form:
            return 400, _error("purpose must be batch, with a file", "invalid_request_error")
        content: bytes = form["file"]
        lines = [json.loads(x) for x in content.splitlines() if x.strip()]
        for line in lines:
            if set(line) != {"custom_id", "method", "url", "body"} or line["url"] != "/v1/images/generations":
                return 400, _error(f"bad line {line!r}", "invalid_request_error")
        file_id = self._new_id("file")
        self.files[file_id] = content
        self.uploads.append(len(lines))
        return 200, {"id": file_id, "object": "file", "bytes": len(content), "purpose": "batch",
                     "filename": "imggen-batch.jsonl", "created_at": int(time.time())}  # fmt: skip

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("endpoint") != "/v1/images/generations" or body.get("completion_window") != "24h":
            return 400, _error("bad endpoint or completion_window", "invalid_request_error")
        if body.get("input_file_id") not in self.files:
            return 404, _error("no such file", "not_found")
        batch = FakeBatch(self._new_id("batch"), body["input_file_id"], list(SCRIPTS[self.outcome]))
        batch.metadata = body.get("metadata")
        batch.counts["total"] = len(self.files[batch.input_file_id].splitlines())
        self.batches[batch.id] = batch
        return 200, self.shown(batch)

    def advance(self, batch: FakeBatch) -> None:
        if batch.step + 1 < len(batch.script):
            batch.step += 1
            if batch.status in ("completed", "expired", "cancelled"):
                self._finish(batch)

    def cancel(self, batch: FakeBatch) -> None:
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.script = [*batch.script[: batch.step], "cancelling", "cancelled"]

    def _finish(self, batch: FakeBatch) -> None:
        """The output and error files: on expiry or cancel, the first half is done and the rest is not."""
        lines = [json.loads(x) for x in self.files[batch.input_file_id].splitlines() if x.strip()]
        done = len(lines) if batch.status == "completed" else len(lines) // 2
        out, err = [], []
        for i, line in enumerate(lines):
            rid = f"req_{batch.id}_{i}"
            record: dict[str, Any] = {"id": f"batch_req_{i}", "custom_id": line["custom_id"]}
            if i >= done:
                record.update(response=None, error={"code": f"batch_{batch.status}",
                                                    "message": f"This request could not be executed before the batch was {batch.status}."})  # fmt: skip  # noqa: E501
                err.append(record)
            elif "FAIL" in line["body"].get("prompt", ""):
                record.update(
                    response={
                        "status_code": 400,
                        "request_id": rid,
                        "body": _error("Invalid prompt", "invalid_request_error"),
                    },
                    error=None,
                )
                err.append(record)
            else:
                n = int(line["body"].get("n") or 1)
                data = [{"b64_json": base64.b64encode(self.image).decode()} for _ in range(n)]
                record.update(
                    response={
                        "status_code": 200,
                        "request_id": rid,
                        "body": {"created": int(time.time()), "data": data},
                    },
                    error=None,
                )
                out.append(record)
        batch.counts.update(completed=len(out), failed=len(err))
        if out:
            batch.output_file_id = self._new_id("file")
            self.files[batch.output_file_id] = b"".join(json.dumps(r).encode() + b"\n" for r in out)
        if err:
            batch.error_file_id = self._new_id("file")
            self.files[batch.error_file_id] = b"".join(json.dumps(r).encode() + b"\n" for r in err)

    def shown(self, batch: FakeBatch) -> dict[str, Any]:
        errors = None
        if batch.status == "failed":
            error = {"code": "invalid_request", "line": 1, "message": "Not supported.", "param": "model"}
            errors = {"object": "list", "data": [error]}
        return {"id": batch.id, "object": "batch", "endpoint": "/v1/images/generations", "errors": errors,
                "input_file_id": batch.input_file_id, "completion_window": "24h", "status": batch.status,
                "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
                "created_at": 0, "request_counts": dict(batch.counts), "metadata": batch.metadata}  # fmt: skip

    def listed(self) -> dict[str, Any]:
        """`GET /batches`: the newest first, as OpenAI lists them."""
        data = [self.shown(b) for b in reversed(self.batches.values())]
        return {"object": "list", "data": data, "has_more": False, "first_id": None, "last_id": None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                body = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _route(self, method: str) -> None:
                body = self._body() if method == "POST" else b""
                fake.requests.append((method, self.path))
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    return self._send(401, _error("Incorrect API key provided", "invalid_api_key"))
                parts = self.path.split("?")[0].strip("/").split("/")
                kind = {("POST", "files"): "upload", ("POST", "batches"): "create", ("GET", "content"): "content"}.get(
                    (method, parts[-1])
                )
                fault = fake.faults[kind].pop(0) if kind and fake.faults[kind] else None
                if fault == "hold":
                    fake.release.wait(30)
                if fault == "500":
                    return self._send(500, _error("The server had an error", "server_error"))
                if fault == "reset":
                    self.close_connection = True
                    return None
                if fault == "lost":
                    with fake.lock:
                        self._answer(method, parts, body)
                    self.close_connection = True
                    return None
                with fake.lock:
                    self._send(*self._answer(method, parts, body))
                return None

            def _answer(self, method: str, parts: list[str], body: bytes) -> tuple[Any, ...]:
                """(status, payload) or (status, None, raw bytes) for _send."""
                if parts[:2] != ["v1", "files"] and parts[:2] != ["v1", "batches"]:
                    return 404, _error("no route", "not_found")
                if method == "POST" and parts == ["v1", "files"]:
                    return fake.upload(_multipart(self.headers.get("Content-Type", ""), body))
                if method == "POST" and parts == ["v1", "batches"]:
                    return fake.create(json.loads(body))
                if method == "GET" and parts == ["v1", "batches"]:
                    return 200, fake.listed()
                if method == "GET" and len(parts) == 4 and parts[1] == "files" and parts[3] == "content":
                    if parts[2] not in fake.files:
                        return 404, _error("No such File object", "not_found")
                    return 200, None, fake.files[parts[2]]
                batch = fake.batches.get(parts[2]) if len(parts) >= 3 and parts[1] == "batches" else None
                if batch is None:
                    return 404, _error("No such batch", "not_found")
                if method == "GET" and len(parts) == 3:
                    fake.advance(batch)
                    return 200, fake.shown(batch)
                if method == "POST" and parts[3:] == ["cancel"]:
                    fake.cancel(batch)
                    return 200, fake.shown(batch)
                return 404, _error("no route", "not_found")

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    fields, files = parse_multipart(content_type, body)
    return {**fields, **{name: data for name, _, _, data in files}}
