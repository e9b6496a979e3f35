"""A fake Black Forest Labs API on 127.0.0.1: `POST /v1/<model>` checked as BFL checks it (the `x-key`
header, the model's own body fields and their types, FastAPI's 422 for anything else), an answer
`{"id", "polling_url", "cost", …}`, `GET /v1/get_result?id=` answering Pending until the job is ready
(after `ready_after` seconds, or a scripted list of statuses), then Ready with a signed result URL that
expires after `url_ttl` seconds. The result is served from another host name (`localhost` rather
than `127.0.0.1`), so tests can check the key never goes there.

Misbehaviour on demand: `poll_replies` (answers to the next polls: a 429 or a 202 with Retry-After, a
503), `result_failures` (the result URL answers 503 that many times first), `moderate` (prompts with
that word end "Request Moderated"), `polling_host` (a polling URL on a host that is not BFL's),
`delay` (every answer slow). Everything received is in `requests`.

Wire facts as in cli/imggen/providers/bfl.py (BFL's API reference and integration guide)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakeserver import TINY_PNG
from localhttp import LocalHandler, LocalHttp

KEY = "bfl-test-key-0123456789abcdef"
SIGNING = b"fake-blob-signing-key"
COMMON = {"prompt": str, "seed": int, "output_format": str, "safety_tolerance": int, "webhook_url": str,
          "webhook_secret": str, "prompt_upsampling": bool}  # fmt: skip
# Each model's body fields beyond COMMON (its OpenAPI schema in BFL's API reference).
MODELS: dict[str, dict[str, Any]] = {
    "flux-pro-1.1": {"width": int, "height": int, "image_prompt": str},
    "flux-pro-1.1-ultra": {"aspect_ratio": str, "raw": bool, "image_prompt": str, "image_prompt_strength": float},
    "flux-kontext-pro": {"aspect_ratio": str, **{f"input_image{s}": str for s in ("", "_2", "_3", "_4")}},
    "flux-kontext-max": {"aspect_ratio": str, **{f"input_image{s}": str for s in ("", "_2", "_3", "_4")}},
    "flux-2-pro": {
        "width": int,
        "height": int,
        **{f"input_image{s}": str for s in ("", *(f"_{i}" for i in range(2, 9)))},
    },
    "flux-2-max": {
        "width": int,
        "height": int,
        **{f"input_image{s}": str for s in ("", *(f"_{i}" for i in range(2, 9)))},
    },
}
PRICES = {"flux-pro-1.1": 4, "flux-pro-1.1-ultra": 6, "flux-kontext-pro": 4, "flux-kontext-max": 8, "flux-2-pro": 3,
          "flux-2-max": 7}  # fmt: skip


@dataclass
class Received:
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    stamp: float = 0.0  # time.monotonic() when it came


@dataclass
class Job:
    model: str
    body: dict[str, Any]
    created: float
    statuses: list[str] = field(default_factory=list)  # scripted answers to its polls, then Ready
    polls: int = 0


@dataclass
class FakeBfl(LocalHttp):
    ready_after: float = 0.0  # seconds from the submit until the job is Ready
    url_ttl: float = 600.0  # the signed result URL's life (BFL: 10 minutes)
    statuses: list[str] = field(default_factory=list)  # each new job's poll answers before Ready
    poll_replies: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)  # (status, headers, json)
    result_failures: int = 0
    moderate: str | None = None
    polling_host: str | None = None
    delay: float = 0.0
    cancellable: bool = False  # a test-only route (BFL documents none): POST /v1/_test/cancel?id=
    requests: list[Received] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._listen(type("Handler", (_Handler,), {"fake": self}), _Server)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base(self) -> str:
        return f"{self.root}/v1"

    def env(self) -> dict[str, str]:
        return {"BFL_API_KEY": KEY, "BFL_API_BASE": self.base}

    def submits(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and r.path.removeprefix("/v1/") in MODELS]

    def polls(self) -> list[Received]:
        return [r for r in self.requests if r.path == "/v1/get_result"]

    @property
    def poll_stamps(self) -> list[float]:
        return [r.stamp for r in self.polls()]

    def downloads(self) -> list[Received]:
        return [r for r in self.requests if r.path.startswith("/results/")]

    # The answers.

    def answer(self, got: Received) -> tuple[int, dict[str, str], Any]:
        if got.path.startswith("/results/"):
            return self._result(got)
        if got.headers.get("x-key") != KEY:
            return 403, {}, {"detail": "Not authenticated - Invalid Authentication"}
        if got.method == "POST" and got.path.removeprefix("/v1/") in MODELS:
            return self._submit(got.path.removeprefix("/v1/"), got)
        if got.method == "GET" and got.path == "/v1/get_result":
            return self._poll(got)
        if got.method == "POST" and got.path == "/v1/_test/cancel" and self.cancellable:
            self.cancelled.append(got.query.get("id", ""))
            return 200, {}, {"status": "cancelled"}
        return 404, {}, {"detail": "Not Found"}

    def _submit(self, model: str, got: Received) -> tuple[int, dict[str, str], Any]:
        body = got.body
        if not isinstance(body, dict):
            return 422, {}, {"detail": [_problem("model_attributes_type", None, "Input should be a valid dictionary")]}
        allowed = {**COMMON, **MODELS[model]}
        problems = []
        for name, value in body.items():
            kind = allowed.get(name)
            if kind is None:
                problems.append(_problem("extra_forbidden", name, "Extra inputs are not permitted"))
            elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                problems.append(_problem(f"{kind.__name__}_type", name, f"Input should be a valid {kind.__name__}"))
        if not isinstance(body.get("prompt"), str) and model != "flux-pro-1.1-ultra":
            problems.append(_problem("missing", "prompt", "Field required"))
        if body.get("output_format", "jpeg") not in ("jpeg", "png"):
            problems.append(_problem("enum", "output_format", "Input should be 'jpeg' or 'png'"))
        multiple = 32 if model == "flux-pro-1.1" else 16
        for side in ("width", "height"):
            value = body.get(side)
            if isinstance(value, int) and (value < 64 or value % multiple):
                problems.append(_problem("value_error", side, f"must be a multiple of {multiple}"))
        if problems:
            return 422, {}, {"detail": problems}
        task = str(uuid.uuid4())
        with self.lock:
            self.jobs[task] = Job(model, body, time.monotonic(), list(self.statuses))
        host = self.polling_host or f"127.0.0.1:{self.port}"
        polling = f"http://{host}/v1/get_result?id={task}"
        return 200, {}, {"id": task, "polling_url": polling, "cost": PRICES[model], "input_mp": 0, "output_mp": 1.05}

    def _poll(self, got: Received) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if self.poll_replies:
                return self.poll_replies.pop(0)
            task = got.query.get("id", "")
            job = self.jobs.get(task)
            if job is None:
                return 200, {}, {"id": task, "status": "Task not found", "result": None, "progress": None}
            job.polls += 1
            if job.statuses:
                status = job.statuses.pop(0)
                progress = 40.0 if status == "Pending" and job.polls > 1 else None
                return 200, {}, {"id": task, "status": status, "result": None, "progress": progress, "details": None}
        prompt = str(job.body.get("prompt", ""))
        if self.moderate and self.moderate in prompt:
            return 200, {}, {"id": task, "status": "Request Moderated", "result": None, "progress": None,
                             "details": {"Moderation Reasons": ["Sexual"]}}  # fmt: skip
        if time.monotonic() - job.created < self.ready_after:
            return 200, {}, {"id": task, "status": "Pending", "result": None, "progress": None, "details": None}
        expires = int(time.time() + self.url_ttl)
        signature = hmac.new(SIGNING, f"{task}:{expires}".encode(), hashlib.sha256).hexdigest()
        sample = f"http://localhost:{self.port}/results/{task}/sample.png?se={expires}&sig={signature}"
        seed = job.body.get("seed", 1234)
        return 200, {}, {"id": task, "status": "Ready", "progress": None, "details": None,
                         "result": {"sample": sample, "prompt": prompt, "seed": seed,
                                    "start_time": job.created, "end_time": time.monotonic()}}  # fmt: skip

    def _result(self, got: Received) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if self.result_failures > 0:
                self.result_failures -= 1
                return 503, {"Content-Type": "application/xml"}, b"<Error><Code>ServerBusy</Code></Error>"
        task = got.path.split("/")[2]
        expires = got.query.get("se", "0")
        good = hmac.new(SIGNING, f"{task}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, got.query.get("sig", "")):
            return 403, {"Content-Type": "application/xml"}, b"<Error><Code>AuthenticationFailed</Code></Error>"
        if int(expires) < time.time():
            expired = (
                b"<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed</Message></Error>"
            )
            return 403, {"Content-Type": "application/xml"}, expired
        return 200, {"Content-Type": "image/png"}, TINY_PNG


def _problem(kind: str, name: str | None, msg: str) -> dict[str, Any]:
    """One FastAPI 422 detail item (`loc` ["body"] or ["body", name])."""
    return {"type": kind, "loc": ["body", name] if name else ["body"], "msg": msg}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(LocalHandler):
    fake: FakeBfl

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        raw = self._body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        got = Received(
            self.command, self.headers.get("Host", ""), parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(),
        )  # fmt: skip
        with self.fake.lock:
            self.fake.requests.append(got)
        if self.fake.delay:
            time.sleep(self.fake.delay)
        status, headers, payload = self.fake.answer(got)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        if not isinstance(payload, bytes):
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
