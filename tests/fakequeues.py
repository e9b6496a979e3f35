"""The job APIs of fal and Replicate, faked on 127.0.0.1 with real HTTP: each accepts only the shapes the
real API accepts (paths, auth header, body keys, value ranges), keeps jobs that finish after a number of
polls, serves result files from a CDN path that must never see a credential, and misbehaves on demand.

fal (under /fal): `POST /fal/<owner>/<app>[/<path>]` → `{request_id, status_url, response_url,
cancel_url}`; `GET …/requests/<id>/status` (202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED); `GET
…/requests/<id>` (the result); `PUT …/requests/<id>/cancel`. Status, result and cancel use only owner/app.
Replicate (under /replicate): `POST /replicate/v1/models/<owner>/<name>/predictions` or
`/replicate/v1/predictions` (with `version`), `Prefer: wait[=N]`; `GET /replicate/v1/predictions/<id>`;
`POST /replicate/v1/predictions/<id>/cancel`.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from fakeserver import TINY_PNG
from imggen.providers.contract import Pending, ProviderResult, map_error
from localhttp import LocalHandler, LocalHttp

if TYPE_CHECKING:
    from imggen.providers.contract import Provider
    from imggen.settings import Resolved
    from imggen.types import ImageRequest

FAL_KEY = "8c1d0f3e-7a2b-4c9d-b1e2-0f3a4b5c6d7e:5f1e2d3c4b5a69788796a5b4c3d2e1f0"
REPLICATE_TOKEN = "r8_Qx7Lm2Vt9Kp4Zw8Rn3Bc6Hd1Yf5Js0Ga"
SECRETS = (FAL_KEY, REPLICATE_TOKEN, FAL_KEY.split(":")[1])

PRESETS = {"square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"}
# What fal's FLUX endpoints take (fal docs: Flux Dev API, Flux Pro V1.1 Ultra API input schemas).
FAL_KEYS = {"prompt", "image_size", "num_inference_steps", "guidance_scale", "seed", "num_images", "output_format",
            "enable_safety_checker", "sync_mode", "acceleration", "aspect_ratio", "safety_tolerance", "raw",
            "enhance_prompt", "image_url", "image_prompt_strength"}  # fmt: skip
FAL_RATIOS = {"21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"}
# What Replicate's FLUX models take (replicate.com model API schemas: flux-schnell, flux-dev, flux-1.1-pro-ultra).
REPLICATE_INPUT = {"prompt", "aspect_ratio", "num_outputs", "num_inference_steps", "seed", "output_format",
                   "output_quality", "disable_safety_checker", "go_fast", "megapixels", "guidance", "raw",
                   "safety_tolerance", "image_prompt", "image_prompt_strength", "width", "height"}  # fmt: skip
REPLICATE_RATIOS = {"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"}
REPLICATE_TOP = {"input", "version", "webhook", "webhook_completed", "webhook_events_filter", "stream"}
NSFW_ERROR = "All generated images contained NSFW content. Try running it again with a different prompt."


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Job:
    id: str
    app: str  # fal: owner/app; replicate: owner/name
    inputs: dict[str, Any]
    polls_left: int
    count: int = 1
    status: str = "queued"  # queued, running, done, canceled, failed
    polls: int = 0


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeQueues(LocalHttp):
    """Both APIs on one server. `polls` is how many status polls a job needs before it is done (0: done at
    submit; Replicate then answers the finished prediction to `Prefer: wait`). Misbehaviour: `script`
    answers the next requests whose path contains a part with canned answers; `nsfw` flags every image;
    `foreign_urls` gives poll URLs on another host; `forget` loses every job (a result kept no longer)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.jobs: dict[str, Job] = {}
        self.polls = 2
        self.nsfw = False
        self.foreign_urls = False
        self.forget = False
        self.scripts: list[tuple[str, str, Answer]] = []
        self.lock = threading.Lock()
        self._listen(_Handler)

    @property
    def fal_base(self) -> str:
        return f"{self.root}/fal"

    @property
    def replicate_base(self) -> str:
        return f"{self.root}/replicate"

    def script(self, method: str, path_part: str, *answers: Answer) -> None:
        with self.lock:
            self.scripts.extend((method, path_part, a) for a in answers)

    def calls(self, method: str | None = None, part: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and part in s.path]

    def _scripted(self, method: str, path: str) -> Answer | None:
        with self.lock:
            for number, (m, part, answer) in enumerate(self.scripts):
                if m == method and part in path:
                    del self.scripts[number]
                    return answer
        return None

    def cdn_url(self, job: Job, number: int) -> str:
        return f"{self.root}/cdn/{job.id}-{number}.png"


def _fal_error(status: int, msg: str, kind: str, loc: list[str] | None = None) -> Answer:
    return Answer(status, {"detail": [{"loc": loc or ["body"], "msg": msg, "type": kind}]})


def _replicate_error(status: int, title: str, detail: str) -> Answer:
    return Answer(status, {"title": title, "detail": detail, "status": status})


class _Handler(LocalHandler):
    def do_PUT(self) -> None:
        self._handle()

    @property
    def fake(self) -> FakeQueues:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def _handle(self) -> None:
        raw = self._body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = self.path.split("?", 1)[0]
        self.fake.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        answer = self.fake._scripted(self.command, path)
        if answer is None:
            if path.startswith("/cdn/"):
                return self._file(path)
            if path.startswith("/fal/"):
                answer = self._fal(path.removeprefix("/fal/"), body)
            elif path.startswith("/replicate/"):
                answer = self._replicate(path.removeprefix("/replicate"), body)
            else:
                answer = Answer(404, {"detail": "Not Found"})
        self._send(answer)

    def _send(self, answer: Answer, content: bytes | None = None, kind: str = "application/json") -> None:
        data = content if content is not None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _file(self, path: str) -> None:
        if "authorization" in {k.lower() for k in self.headers}:
            return self._send(Answer(400, {"detail": "a credential was sent to the CDN"}))
        self._send(Answer(200), TINY_PNG, "image/png")

    # fal ------------------------------------------------------------------------------------------------
    def _fal(self, path: str, body: Any) -> Answer:
        if self.headers.get("authorization") != f"Key {FAL_KEY}":
            return Answer(401, {"detail": "Invalid Key Authorization header format."})
        match = re.fullmatch(r"([\w.-]+/[\w.-]+)/requests/([\w-]+)(/status|/cancel)?", path)
        if match:
            return self._fal_job(match[1], match[2], match[3] or "")
        if self.command != "POST" or path.count("/") < 1:
            return Answer(405, {"detail": "Method Not Allowed"})
        problem = _fal_problem(body)
        if problem:
            return problem
        if "flagged" in body["prompt"]:
            return _fal_error(422, "The content was flagged by a content checker.", "content_policy_violation",
                              ["body", "prompt"])  # fmt: skip
        app = "/".join(path.split("/")[:2])
        job = Job(uuid.uuid4().hex, app, body, self.fake.polls, count=body.get("num_images", 1))
        self.fake.jobs[job.id] = job
        root = f"{self.fake.root if not self.fake.foreign_urls else 'http://203.0.113.9'}/fal/{app}/requests/{job.id}"
        return Answer(200, {"status": "IN_QUEUE", "request_id": job.id, "response_url": root,
                            "status_url": f"{root}/status", "cancel_url": f"{root}/cancel", "queue_position": 0,
                            "logs": None, "metrics": {}})  # fmt: skip

    def _fal_job(self, app: str, job_id: str, action: str) -> Answer:
        job = None if self.fake.forget else self.fake.jobs.get(job_id)
        if job is None or job.app != app:
            return Answer(404, {"detail": f"Request {job_id} not found"})
        if action == "/cancel":
            if self.command != "PUT":
                return Answer(405, {"detail": "Method Not Allowed"})
            if job.status == "done":
                return Answer(400, {"status": "ALREADY_COMPLETED"})
            job.status = "canceled"
            return Answer(202, {"status": "CANCELLATION_REQUESTED"})
        if self.command != "GET":
            return Answer(405, {"detail": "Method Not Allowed"})
        if action == "/status":
            if job.status in ("queued", "running") and job.polls_left > 0:
                job.polls_left -= 1
                job.polls += 1
                job.status = "queued" if job.polls == 1 else "running"
                if job.status == "queued":
                    return Answer(202, {"status": "IN_QUEUE", "queue_position": 0, "request_id": job.id})
                return Answer(202, {"status": "IN_PROGRESS", "logs": None, "request_id": job.id})
            if job.status != "canceled":
                job.status = "done"
            return Answer(200, {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 0.5},
                                "request_id": job.id})  # fmt: skip
        if job.status == "canceled":
            return Answer(400, {"detail": "Request was cancelled"})
        if job.status != "done":
            return Answer(400, {"detail": "Request is still in progress"})
        images = [{"url": self.fake.cdn_url(job, i), "width": 1024, "height": 768, "content_type": "image/png"}
                  for i in range(job.count)]  # fmt: skip
        return Answer(200, {"images": images, "timings": {"inference": 0.5}, "seed": job.inputs.get("seed", 42),
                            "has_nsfw_concepts": [self.fake.nsfw] * job.count,
                            "prompt": job.inputs["prompt"]})  # fmt: skip

    # Replicate ------------------------------------------------------------------------------------------
    def _replicate(self, path: str, body: Any) -> Answer:
        if self.headers.get("authorization") != f"Bearer {REPLICATE_TOKEN}":
            return _replicate_error(401, "Unauthenticated", "You did not pass a valid authentication token")
        match = re.fullmatch(r"/v1/predictions/([\w-]+)(/cancel)?", path)
        if match:
            return self._prediction_call(match[1], bool(match[2]))
        model = re.fullmatch(r"/v1/models/([\w.-]+/[\w.-]+)/predictions", path)
        if self.command != "POST" or not (model or path == "/v1/predictions"):
            return _replicate_error(404, "Not found", "The requested resource could not be found.")
        problem = _replicate_problem(body, bool(model))
        if problem:
            return problem
        prefer = self.headers.get("prefer", "")
        if prefer and not re.fullmatch(r"wait(=([1-9]|[1-5]\d|60))?", prefer):
            return _replicate_error(400, "Invalid Prefer header", f"Prefer: {prefer}")
        inputs = body["input"]
        job = Job(uuid.uuid4().hex[:26], model[1] if model else body["version"], inputs, self.fake.polls,
                  count=inputs.get("num_outputs", 1))  # fmt: skip
        self.fake.jobs[job.id] = job
        if prefer and job.polls_left == 0:
            self._finish(job)
        return Answer(201, self._prediction(job))

    def _finish(self, job: Job) -> None:
        job.status = "failed" if self.fake.nsfw or "flagged" in job.inputs["prompt"] else "done"

    def _prediction_call(self, job_id: str, cancel: bool) -> Answer:
        job = None if self.fake.forget else self.fake.jobs.get(job_id)
        if job is None:
            return _replicate_error(404, "Not found", "The requested resource could not be found.")
        if cancel:
            if self.command != "POST":
                return _replicate_error(405, "Method not allowed", "")
            if job.status in ("queued", "running"):
                job.status = "canceled"
            return Answer(200, self._prediction(job))
        if self.command != "GET":
            return _replicate_error(405, "Method not allowed", "")
        if job.status in ("queued", "running"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.polls += 1
                job.status = "running"
            else:
                self._finish(job)
        return Answer(200, self._prediction(job))

    def _prediction(self, job: Job) -> dict[str, Any]:
        root = self.fake.root if not self.fake.foreign_urls else "http://203.0.113.9"
        status = {"queued": "starting", "running": "processing", "done": "succeeded", "failed": "failed",
                  "canceled": "canceled"}[job.status]  # fmt: skip
        output: Any = None
        if job.status == "done":
            urls = [self.fake.cdn_url(job, i) for i in range(job.count)]
            output = urls if "flux-1.1-pro" not in job.app else urls[0]
        return {
            "id": job.id, "model": job.app, "version": "hidden", "input": job.inputs, "logs": "", "output": output,
            "data_removed": False, "error": NSFW_ERROR if job.status == "failed" else None, "status": status,
            "created_at": "2026-11-30T18:00:00.000Z",
            "urls": {"get": f"{root}/replicate/v1/predictions/{job.id}",
                     "cancel": f"{root}/replicate/v1/predictions/{job.id}/cancel",
                     "web": f"https://replicate.com/p/{job.id}"},
        }  # fmt: skip


def _fal_problem(body: Any) -> Answer | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return _fal_error(422, "Field required", "missing", ["body", "prompt"])
    unknown = set(body) - FAL_KEYS
    if unknown:
        return _fal_error(422, f"Extra inputs are not permitted: {sorted(unknown)}", "extra_forbidden")
    size = body.get("image_size")
    custom = (
        isinstance(size, dict)
        and set(size) == {"width", "height"}
        and all(isinstance(v, int) and 0 < v <= 14142 for v in size.values())
    )
    if size is not None and not (isinstance(size, str) and size in PRESETS) and not custom:
        return _fal_error(422, "Input should be a valid image size", "value_error", ["body", "image_size"])
    if "aspect_ratio" in body and body["aspect_ratio"] not in FAL_RATIOS:
        return _fal_error(422, "Input should be a valid aspect ratio", "enum", ["body", "aspect_ratio"])
    count = body.get("num_images", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return _fal_error(422, "Input should be less than or equal to 4", "less_than_equal", ["body", "num_images"])
    if "seed" in body and not isinstance(body["seed"], int):
        return _fal_error(422, "Input should be a valid integer", "int_type", ["body", "seed"])
    return None


def _replicate_problem(body: Any, official: bool) -> Answer | None:
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return _replicate_error(422, "Input validation failed", "- input: input is required")
    if set(body) - REPLICATE_TOP or (official and "version" in body) or (not official and "version" not in body):
        return _replicate_error(422, "Invalid request", f"unexpected fields: {sorted(set(body) - {'input'})}")
    inputs = body["input"]
    if not isinstance(inputs.get("prompt"), str):
        return _replicate_error(422, "Input validation failed", "- input: prompt is required")
    unknown = set(inputs) - REPLICATE_INPUT
    if unknown:
        return _replicate_error(422, "Input validation failed", f"- input: Additional property {sorted(unknown)[0]} "
                                "is not allowed")  # fmt: skip
    if "aspect_ratio" in inputs and inputs["aspect_ratio"] not in REPLICATE_RATIOS:
        return _replicate_error(422, "Input validation failed", "- input.aspect_ratio: aspect_ratio must be one of "
                                "the following")  # fmt: skip
    count = inputs.get("num_outputs", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return _replicate_error(422, "Input validation failed", "- input.num_outputs: Must be less than or equal to 4")
    return None


def submitted(provider: Provider, request: ImageRequest, settings: Resolved) -> Pending:
    """A job submitted as the engine submits it, its answer parsed: the Pending to poll."""
    http = provider.build_request(request, settings)
    response = httpx.post(http.url, headers=http.headers, json=http.json)
    pending = provider.parse_response(request, response)
    assert isinstance(pending, Pending), pending
    return pending


def drive(provider: Provider, request: ImageRequest, settings: Resolved, pending: Pending) -> ProviderResult:
    """The engine's poll loop, synchronously and without waiting (no transport: errors mapped as it maps them)."""
    with httpx.Client() as client:
        outcome: ProviderResult | Pending = pending
        while isinstance(outcome, Pending):
            http = outcome.request
            response = client.request(http.method, http.url, headers=http.headers)
            if response.status_code >= 400:
                raise map_error(response, provider.error_fields(response, settings))
            outcome = provider.poll(request, outcome, response)
        return outcome
