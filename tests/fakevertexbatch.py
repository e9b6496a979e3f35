"""A real HTTP server on 127.0.0.1 standing in for Vertex AI batch prediction and the Cloud Storage JSON
API it reads and writes (see imggen/batches/vertex_ai.py for the sources).

It accepts only what the real services accept: a Bearer token the fake token endpoint issued (tests use
fakeserver.FakeProvider's, which checks google-auth's signed JWT), `batchPredictionJobs` bodies of
exactly `{"displayName", "model": "publishers/google/models/{id}", "inputConfig": {"instancesFormat":
"jsonl", "gcsSource": {"uris": [one gs:// object]}}, "outputConfig": {"predictionsFormat": "jsonl",
"gcsDestination": {"outputUriPrefix"}}}`, for the models it is told support batch prediction, with an
input object in a bucket that exists whose every line is `{"request": …}` checked as `generateContent`
checks it (fakegoogle.content_problem) and labelled with valid label values; Storage media uploads and
resumable uploads (chunks of 256 KiB multiples at the offset the session holds; a bare 308 unless the
client asks for `X-GUploader-No-308`), paged listings and `alt=media` downloads. Each job acts out the
states its script names, one per status poll (PENDING, RUNNING, SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED,
CANCELLING, CANCELLED, EXPIRED), answers per request (an image, an error status, a blocked prompt, a
text-only candidate) and writes its output folder, lines in reverse order, as Vertex writes it (a
cancelled job: the rows it had finished, "all completed rows are exported").
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from itertools import count
from typing import Any
from urllib.parse import unquote

from fakegeminibatch import TEXT_ONLY, Reply, _cancel, _candidates, _create, _dict, _error, _step
from fakegeminibatch import _Handler as GeminiHandler
from fakegoogle import content_problem
from fakeserver import TINY_PNG
from localhttp import LocalHttp

JOBS = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/batchPredictionJobs$")
JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/batchPredictionJobs/([^/:]+))(:cancel)?$")
UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
LIST = re.compile(r"^/storage/v1/b/([^/]+)/o$")
OBJECT = re.compile(r"^/storage/v1/b/([^/]+)/o/(.+)$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
QUANTUM = 256 * 1024  # resumable chunks are multiples of it, but the last
TERMINAL = {"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}
WRITES_OUTPUT = {"SUCCEEDED", "PARTIALLY_SUCCEEDED"}


@dataclass
class Job:
    id: str
    name: str
    model: str
    display_name: str
    keys: list[str]
    requests: list[dict[str, Any]]
    output_prefix: str
    script: list[str]  # the states still to report, one per poll; the last one stays
    state: str = "PENDING"
    output_dir: str | None = None


@dataclass
class FakeVertexBatch(LocalHttp):
    tokens: list[str] = field(default_factory=list)  # the tokens the fake token endpoint issued
    models: set[str] = field(default_factory=lambda: {"gemini-nano-banana-2.1"})
    buckets: set[str] = field(default_factory=lambda: {"my-bucket"})
    script: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    # What a request answers, by its imggen_id label: "error", "blocked", "text" (else an image).
    outcomes: dict[str, str] = field(default_factory=dict)
    output_files: int = 1  # predictions files a job writes (Vertex may write several)
    done_before_cancel: int = 0  # rows a cancelled job had finished: exported all the same
    page_size: int = 2  # objects per listing page
    image: bytes = TINY_PNG
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)  # + query
    objects: dict[str, bytes] = field(default_factory=dict)  # "bucket/name" -> bytes
    jobs: dict[str, Job] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunk_sizes: list[int] = field(default_factory=list)
    create_failures: list[int] = field(default_factory=list)  # as fakegeminibatch's
    chunk_failures: list[int] = field(default_factory=list)  # the next upload chunks' answers: kept, then this
    _ids: Any = field(default_factory=lambda: count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._listen(_Handler)

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append((method, path, query, headers))
            if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
                return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            return self._route(method, path, query, headers, body)

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        if method == "POST" and (match := JOBS.match(path)):
            return self._create(match.group(1), match.group(2), headers, body)
        if (match := JOB.match(path)) and (job := self.jobs.get(match.group(2))) is not None:
            if match.group(1) != job.name:
                return _error(404, "NOT_FOUND", "The BatchPredictionJob does not exist.")
            if match.group(3) and method == "POST":
                return _cancel(job, TERMINAL, f"The job is already {job.state}.")
            if not match.group(3) and method == "GET":
                return Reply(json=self._job(job, advance=True))
        if (match := UPLOAD.match(path)) and method in ("POST", "PUT"):
            return self._upload(method, match.group(1), query, headers, body)
        if method == "GET" and (match := LIST.match(path)):
            return self._list(match.group(1), query)
        if method == "GET" and (match := OBJECT.match(path)):
            return self._download(match.group(1), unquote(match.group(2)), query)
        return _error(404, "NOT_FOUND", f"no route {method} {path}")

    # --- Cloud Storage ---------------------------------------------------------------------------

    def _upload(self, method: str, bucket: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        if bucket not in self.buckets:
            return _error(404, "NOT_FOUND", "The specified bucket does not exist.")
        if "upload_id" in query:
            return (
                self._chunk(query["upload_id"], headers, body)
                if method == "PUT"
                else _error(405, "METHOD_NOT_ALLOWED", "Upload chunks are PUT.")
            )
        name = query.get("name", "")
        if not name or method != "POST":
            return _error(400, "INVALID_ARGUMENT", "Required parameter: name")
        if query.get("uploadType") == "media":
            self.objects[f"{bucket}/{name}"] = body
            return Reply(json=_object(bucket, name, body))
        if query.get("uploadType") != "resumable":
            return _error(400, "INVALID_ARGUMENT", "Invalid upload type.")
        size = headers.get("x-upload-content-length", "")
        if not size.isdigit():
            return _error(400, "INVALID_ARGUMENT", "X-Upload-Content-Length is required here.")
        upload_id = f"u{next(self._ids)}"
        self.uploads[upload_id] = {"bucket": bucket, "name": name, "size": int(size), "data": bytearray()}
        location = f"{self.root}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
        return Reply(json={}, headers={"Location": location})

    def _chunk(self, upload_id: str, headers: dict[str, str], body: bytes) -> Reply:
        upload = self.uploads.get(upload_id)
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers.get("content-range", ""))
        if upload is None:
            return _error(404, "NOT_FOUND", "No such upload session.")
        if headers.get("content-range") == f"bytes */{upload['size']}" and not body:  # what is held so far?
            return self._held(upload, headers)
        if not match or int(match.group(1)) != len(upload["data"]) or int(match.group(3)) != upload["size"]:
            return _error(400, "INVALID_ARGUMENT", "Bad Content-Range for this session.")
        if int(match.group(2)) - int(match.group(1)) + 1 != len(body):
            return _error(400, "INVALID_ARGUMENT", "Content-Range does not match the body.")
        last = int(match.group(2)) + 1 == upload["size"]
        if not last and len(body) % QUANTUM:
            return _error(400, "INVALID_ARGUMENT", "Chunk sizes must be multiples of 256 KiB.")
        upload["data"] += body
        self.chunk_sizes.append(len(body))
        if last:
            data = bytes(upload["data"])
            self.objects[f"{upload['bucket']}/{upload['name']}"] = data
        if self.chunk_failures:  # the chunk is kept, and its answer lost
            return _error(self.chunk_failures.pop(0), "UNAVAILABLE", "Backend unavailable.")
        return self._held(upload, headers)

    def _held(self, upload: dict[str, Any], headers: dict[str, str]) -> Reply:
        """A session's answer: the object once complete, else "resume incomplete" with the bytes held."""
        if len(upload["data"]) == upload["size"]:
            return Reply(json=_object(upload["bucket"], upload["name"], bytes(upload["data"])))
        rng = {"Range": f"bytes=0-{len(upload['data']) - 1}"} if upload["data"] else {}
        if headers.get("x-guploader-no-308") == "yes":
            return Reply(json={}, headers={"X-Http-Status-Code-Override": "308", **rng})
        return Reply(status=308, body=b"", headers=rng)

    def _list(self, bucket: str, query: dict[str, str]) -> Reply:
        if bucket not in self.buckets:
            return _error(404, "NOT_FOUND", "The specified bucket does not exist.")
        prefix = query.get("prefix", "")
        names = sorted(k.split("/", 1)[1] for k in self.objects if k.startswith(f"{bucket}/{prefix}"))
        start = int(query.get("pageToken") or 0)
        page = names[start : start + self.page_size]
        items = [_object(bucket, n, self.objects[f"{bucket}/{n}"]) for n in page]
        listing: dict[str, Any] = {"kind": "storage#objects", "items": items}
        if start + self.page_size < len(names):
            listing["nextPageToken"] = str(start + self.page_size)
        return Reply(json=listing)

    def _download(self, bucket: str, name: str, query: dict[str, str]) -> Reply:
        data = self.objects.get(f"{bucket}/{name}")
        if data is None:
            return _error(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        if query.get("alt") != "media":
            return Reply(json=_object(bucket, name, data))
        return Reply(body=data, headers={"Content-Type": "application/octet-stream"})

    # --- Vertex AI --------------------------------------------------------------------------------

    def _create(self, project: str, location: str, headers: dict[str, str], body: bytes) -> Reply:
        if not headers.get("content-type", "").startswith("application/json"):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected content type.")
        try:
            job = json.loads(body)
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = _job_problem(job)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        model = job["model"].removeprefix("publishers/google/models/")
        if model not in self.models:
            return _error(400, "INVALID_ARGUMENT", f"Batch prediction is not supported for model {model}.")
        [uri] = job["inputConfig"]["gcsSource"]["uris"]
        data = self.objects.get(uri.removeprefix("gs://"))
        if data is None:
            return _error(400, "FAILED_PRECONDITION", f"Input {uri} does not exist or cannot be read.")
        pairs = []
        for raw in data.splitlines():
            line = json.loads(raw) if raw.strip().startswith(b"{") else None
            if not isinstance(line, dict) or set(line) != {"request"} or not isinstance(line["request"], dict):
                return _error(400, "INVALID_ARGUMENT", 'Each input line must be {"request": GenerateContentRequest}.')
            labels = _dict(line["request"].get("labels"))
            if any(not isinstance(v, str) or not LABEL_VALUE.match(v) for v in labels.values()):
                return _error(400, "INVALID_ARGUMENT", "Label values may hold lowercase letters, digits, - and _.")
            if problem := content_problem(line["request"], model):
                return _error(400, "INVALID_ARGUMENT", problem)
            pairs.append((str(labels.get("imggen_id", "")), line["request"]))

        def make() -> dict[str, Any]:
            job_id = str(1000 + next(self._ids))
            name = f"projects/{project}/locations/{location}/batchPredictionJobs/{job_id}"
            made = Job(job_id, name, model, job["displayName"], [k for k, _ in pairs], [r for _, r in pairs],
                       job["outputConfig"]["gcsDestination"]["outputUriPrefix"], list(self.script))  # fmt: skip
            self.jobs[job_id] = made
            return self._job(made, advance=False)

        return _create(self.create_failures, make, "Quota exceeded for batch prediction jobs.",
                       "Internal error encountered.")  # fmt: skip

    def _job(self, job: Job, advance: bool) -> dict[str, Any]:
        if advance:
            _step(job)
        ran = job.state in WRITES_OUTPUT
        if job.output_dir is None and (ran or (job.state == "CANCELLED" and self.done_before_cancel)):
            self._write_output(job, len(job.keys) if ran else self.done_before_cancel)
        failed = sum(self._outcome(k) == "error" for k in job.keys) if ran else 0
        body: dict[str, Any] = {
            "name": job.name, "displayName": job.display_name, "model": f"publishers/google/models/{job.model}",
            "state": f"JOB_STATE_{job.state}",
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://…"]}},
            "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": job.output_prefix}},
            "createTime": "2026-11-30T21:00:00.000Z",
        }  # fmt: skip
        if ran:
            body["completionStats"] = {"successfulCount": str(len(job.keys) - failed), "failedCount": str(failed),
                                       "incompleteCount": "0"}  # fmt: skip
        if job.output_dir is not None:
            body["outputInfo"] = {"gcsOutputDirectory": job.output_dir}
        if job.state == "FAILED":
            body["error"] = {"code": 13, "message": "Internal error occurred during batch prediction."}
        elif job.state == "CANCELLED":
            body["error"] = {"code": 1, "message": "CANCELED"}
        return body

    def _write_output(self, job: Job, rows: int) -> None:
        folder = f"{job.output_prefix.rstrip('/')}/prediction-model-2026-11-30T21:00:00.000000Z"
        lines = [self._line(k, r) for k, r in zip(job.keys[:rows], job.requests[:rows], strict=True)][::-1]
        bucket, _, prefix = folder.removeprefix("gs://").partition("/")
        share = -(-len(lines) // self.output_files)
        for n in range(self.output_files):
            name = "predictions.jsonl" if self.output_files == 1 else f"predictions_{n + 1:04d}.jsonl"
            chunk = lines[n * share : (n + 1) * share]
            self.objects[f"{bucket}/{prefix}/{name}"] = "".join(json.dumps(x) + "\n" for x in chunk).encode()
        self.objects[f"{bucket}/{prefix}/incremental_predictions/state.json"] = b"{}"  # not a predictions file
        job.output_dir = folder

    def _outcome(self, key: str) -> str:
        return self.outcomes.get(key, "image")

    def _line(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        line: dict[str, Any] = {"status": "", "processed_time": "2026-11-30T21:05:00.000+00:00", "request": request}
        outcome = self._outcome(key)
        if outcome == "error":
            inner = {"error": {"code": 429, "message": "Resource exhausted, please try again later.",
                               "status": "RESOURCE_EXHAUSTED"}}  # fmt: skip
            return {**line, "status": f"Too Many Requests: {json.dumps(inner)}"}
        if outcome == "blocked":
            return {**line, "response": {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}}
        if outcome == "text":
            return {**line, "response": TEXT_ONLY}
        return {**line, "response": {"candidates": _candidates(self.image, request),
                                     "modelVersion": "gemini-nano-banana-2.1"}}  # fmt: skip


def _job_problem(job: Any) -> str | None:
    """What Vertex would refuse in a create body (only the fields imggen sends are allowed here)."""
    if not isinstance(job, dict) or set(job) != {"displayName", "model", "inputConfig", "outputConfig"}:
        return "Invalid JSON payload received. Unknown or missing fields in BatchPredictionJob."
    if not job["displayName"] or not str(job["model"]).startswith("publishers/google/models/"):
        return "display_name and model (publishers/google/models/…) are required."
    source, sink = _dict(job["inputConfig"]), _dict(job["outputConfig"])
    uris = _dict(source.get("gcsSource")).get("uris")
    if source.get("instancesFormat") != "jsonl" or set(source) != {"instancesFormat", "gcsSource"}:
        return "inputConfig: instancesFormat jsonl with gcsSource is required."
    if not isinstance(uris, list) or len(uris) != 1 or not str(uris[0]).startswith("gs://"):
        return "inputConfig.gcsSource.uris: one gs:// URI."
    prefix = _dict(sink.get("gcsDestination")).get("outputUriPrefix")
    if sink.get("predictionsFormat") != "jsonl" or not str(prefix).startswith("gs://"):
        return "outputConfig: predictionsFormat jsonl and gcsDestination.outputUriPrefix gs://… are required."
    return None


def _object(bucket: str, name: str, data: bytes) -> dict[str, Any]:
    return {"kind": "storage#object", "bucket": bucket, "name": name, "size": str(len(data)),
            "id": f"{bucket}/{name}/1", "generation": "1"}  # fmt: skip


class _Handler(GeminiHandler):
    def do_PUT(self) -> None:
        self._handle()
