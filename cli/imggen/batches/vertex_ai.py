"""Vertex AI batch prediction for the Gemini image models: a JSONL file in a Cloud Storage bucket the
user names, a `batchPredictionJobs` job, and its `predictions*.jsonl` output read back from the bucket.

Wire facts:

- Job: `POST https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/batchPredictionJobs`
  (the global location: `aiplatform.googleapis.com`, vertex.location_host) with `{"displayName",
  "model": "publishers/google/models/{id}", "inputConfig": {"instancesFormat": "jsonl", "gcsSource":
  {"uris": [gs://…]}}, "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination":
  {"outputUriPrefix": gs://…}}}` (Vertex AI reference "Get batch predictions for Gemini",
  cloud.google.com/vertex-ai/generative-ai/docs/model-reference/batch-prediction-api, and "Batch
  prediction from Cloud Storage", …/multimodal/batch-prediction-from-cloud-storage: "To output to a Cloud
  Storage bucket, specify jsonl"; google-genai 2.19.0 `batches.py` `_CreateBatchJobParameters_to_vertex`,
  `_BatchJobSource_to_vertex` (format -> instancesFormat, gcs_uri -> gcsSource.uris),
  `_BatchJobDestination_to_vertex` (gcs_uri -> gcsDestination.outputUriPrefix), path
  `batchPredictionJobs`). The answer is the BatchPredictionJob, named
  `projects/{p}/locations/{l}/batchPredictionJobs/{id}`. The global endpoint takes batch jobs ("If using
  the global endpoint, enter global"; only tuned models are excluded: the Cloud Storage guide), so a
  model served from `global` (the catalog's location) is batched there.
- Status: `GET …/v1/{name}`: `state` is a `JOB_STATE_*` value (google-genai `types.JobState`: QUEUED,
  PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED, PAUSED, EXPIRED, UPDATING,
  PARTIALLY_SUCCEEDED); `completionStats` {successfulCount, failedCount, incompleteCount} (int64,
  strings in JSON); `outputInfo.gcsOutputDirectory`; `error` (a google.rpc.Status, "only populated when
  the job's state is JOB_STATE_FAILED or JOB_STATE_CANCELLED") (google-genai `_BatchJob_from_vertex`,
  `types.CompletionStats`, `types.BatchJobOutputInfo`; the aiplatform v1 BatchPredictionJob reference).
- Cancel: `POST …/v1/{name}:cancel` ("Starts asynchronous cancellation … its BatchPredictionJob.state
  is set to CANCELLED. Any files already outputted by the job are not deleted": aiplatform_v1
  projects.locations.batchPredictionJobs.cancel; google-genai path `batchPredictionJobs/{name}:cancel`).
- Input: one JSONL file, each line `{"request": GenerateContentRequest}` ("Each line in the batch input
  data is a request to the model, following the same format for Gemini API", the Cloud Storage guide).
  The line has no key: imggen puts its request id in the request's `labels` (`imggen_id`; label values
  take lowercase letters, digits, `-` and `_`, as "3-1" is), and each output line carries its request back.
- Output: "In the given directory a new directory is created. Its name is prediction-<model-display-name>-
  <job-create-time> … Inside of it files predictions_0001.<extension>, … are created" (aiplatform
  BatchPredictionJob.OutputConfig.gcsDestination); for Gemini the lines are `{"status", "processed_time",
  "request", "response"}`: the Cloud Storage guide's "Retrieve batch output" says "For succeeded rows,
  model responses are stored in the …" and was cut off there in every copy that could be read; that a
  row's `status` is empty when it succeeded and holds the reason when it failed, and that `request` comes
  back whole, is what peers read (maximhq/bifrost core/providers/vertex/batch.go; see HANDOFF.md).
  imggen lists every object under `outputInfo.gcsOutputDirectory` and reads those named
  `predictions*.jsonl`. "If the batch prediction job is terminated, all completed rows are exported":
  a cancelled job's finished rows are collected too.
- Storage (JSON API): `POST https://storage.googleapis.com/upload/storage/v1/b/{bucket}/o?uploadType=media
  &name={object}` for a small file; above one chunk, `uploadType=resumable`: the start answers with a
  `Location` session URI, then `PUT` chunks (multiples of 256 KiB but the last) with `Content-Range:
  bytes {first}-{last}/{total}`; `Content-Range: bytes */{total}` with no body asks what the session
  holds, answered with `Range: bytes=0-{last held}` (none: nothing yet), which may be less than was
  sent (the google-cloud-storage Rust crate 0.24.0 http/resumable_upload_client.rs: `bytes */{total}`,
  `UploadStatus::ResumeIncomplete(UploadedRange)` from `Range`; Google's own guide was not readable
  here). A chunk short of the end is answered
  308 "Resume Incomplete"; with the
  request header `X-GUploader-No-308: yes` Google answers 200 with `X-Http-Status-Code-Override: 308`
  instead (google-api-go-client internal/gensupport/resumable.go: 308 conflicts with "Permanent Redirect"
  (RFC 7238), so "Google added this new request header"; googleapis/storage-testbench tests it):
  imggen's transport never follows a redirect, so it sends that header. List: `GET
  …/storage/v1/b/{bucket}/o?prefix=…` (`items[].name`, `nextPageToken`); download: `GET
  …/storage/v1/b/{bucket}/o/{object, %-encoded}?alt=media`. Tests point it at a local server with
  `STORAGE_EMULATOR_HOST`, the variable google-cloud-storage reads for an emulator (its `_helpers.py`:
  STORAGE_EMULATOR_ENV_VAR, "Despite name, includes scheme").
- Auth: the OAuth token Vertex generation uses (providers/google_auth.py, scope cloud-platform), for
  both hosts.
- Price: "Batch requests for Gemini models are discounted 50% from standard requests" (the Vertex AI
  batch prediction guide, …/multimodal/batch-prediction-gemini); the catalog's `batch` field says it.
- Models: Google's "Supported models" list for batch prediction names Gemini Nano Banana 2.1
  (docs.cloud.google.com/gemini-enterprise-agent-platform/reference/models/batch-prediction-api);
  the image models' own cards could not be read as far as their usage types (HANDOFF.md).
- Limits per job: not found in Google's pages (the guide: "hundreds of thousands of requests in a
  single batch"); imggen splits at 200,000 requests or 1 GB a file, a defensible reading (HANDOFF.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..errors import BadResponseError, GenerationError, ProviderError, UsageError
from ..providers import as_dict, google_wire
from ..types import HttpRequest, ImageRequest
from .gemini import STATES, Spool, answer_result, count, json_object, refused_only, spooled, status_error, stream_lines
from .service import DONE, BatchLine, BatchResult, Limits, PartState, PartSubmitted, Sized

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved
    from ..transport import Transport
    from .ledger import Part

MAX_REQUESTS = 200_000  # per job (unconfirmed: see the docstring)
FILE_LIMIT = 1_000_000_000  # bytes of one input file (unconfirmed: see the docstring)
STORAGE = "https://storage.googleapis.com"
STORAGE_ENV = "STORAGE_EMULATOR_HOST"
JSONL_TYPE = "application/jsonl"
WHO = "Google's batch answer"  # how a malformed answer is named
LABEL = "imggen_id"  # the request label that carries imggen's request id through the job
SERVICE_NAME = "Vertex AI batch prediction"
BUCKET_HINT = (
    "Name a Cloud Storage bucket: --gcs-bucket BUCKET, VERTEXAI_BATCH_BUCKET, or "
    "imggen config set vertex_ai vertex_batch_bucket BUCKET."
)
LIMITS = Limits(MAX_REQUESTS, FILE_LIMIT)


class VertexBatches(Sized):
    """Vertex AI batch prediction jobs (see the module's docstring for every wire fact)."""

    LIMITS = LIMITS

    def check(self, settings: Resolved) -> None:
        """What submit needs before anything is recorded or sent: the bucket."""
        bucket(settings)

    async def submit(self, lines: AsyncIterator[BatchLine], settings: Resolved, transport: Transport
                     ) -> AsyncIterator[PartSubmitted]:  # fmt: skip
        """Stream the lines to spool files (one per part, each within the limits); each full part is
        uploaded, its job created and yielded at once (the caller records it before the next)."""
        self.check(settings)  # before a token is asked for or a byte sent
        where = f"imggen/{secrets.token_hex(6)}"  # this submit's folder in the bucket
        async with aclosing(spooled(lines, self.limits, _line_text, SERVICE_NAME)) as parts:
            async for spool, n, first, model in parts:
                yield await self._send(spool, f"{where}/{n + 1}", first, model, settings, transport)

    async def _send(
        self, spool: Spool, folder: str, first: int, model: str, settings: Resolved, transport: Transport
    ) -> PartSubmitted:
        token = await _token(settings)
        name = bucket(settings)
        source = await self._upload(spool, name, f"{folder}/input.jsonl", token, settings, transport)
        from ..providers.vertex import project_of

        project, location = project_of(settings), str(settings.get("vertex_location"))
        body = {
            "displayName": folder.replace("/", "-"),
            "model": f"publishers/google/models/{model}",
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [source]}},
            "outputConfig": {"predictionsFormat": "jsonl",
                             "gcsDestination": {"outputUriPrefix": f"gs://{name}/{folder}/output"}},
        }  # fmt: skip
        url = f"{_host(settings, location)}/v1/projects/{project}/locations/{location}/batchPredictionJobs"
        request = HttpRequest("POST", url, _auth(token, json_body=True), body, content=json.dumps(body).encode())
        answer = await transport.send(request, _error(settings), retry_when=_refused)
        job = json_object(answer, WHO).get("name")
        if not isinstance(job, str) or "/batchPredictionJobs/" not in job:
            raise BadResponseError("Vertex AI's batch prediction answer has no batchPredictionJobs/… name")
        return PartSubmitted(job, source, spool.count, first)

    async def _upload(
        self, spool: Spool, bucket_name: str, name: str, token: str, settings: Resolved, transport: Transport
    ) -> str:
        """The spool file as one object: a media upload when it fits one chunk, else resumable; its gs:// URI."""
        size = spool.file_bytes
        spool.file.seek(0)
        base = f"{_storage()}/upload/storage/v1/b/{quote(bucket_name, safe='')}/o?name={quote(name, safe='')}"
        if size <= self.chunk:
            headers = _auth(token) | {"Content-Type": JSONL_TYPE}
            data = spool.file.read()
            await transport.send(
                HttpRequest("POST", f"{base}&uploadType=media", headers, {"bytes": size}, content=data),
                _storage_error(settings),
            )
            return f"gs://{bucket_name}/{name}"
        session = await _session(base, size, token, settings, transport)
        # The token goes only to Storage's own host: the session URL is the server's to name.
        auth = _auth(token) if urlsplit(session).netloc == urlsplit(_storage()).netloc else {}
        await self._chunks(spool, session, auth, settings, transport)
        return f"gs://{bucket_name}/{name}"

    async def _chunks(
        self, spool: Spool, session: str, auth: dict[str, str], settings: Resolved, transport: Transport
    ) -> None:
        """PUT the file in chunks from the offset Storage says it holds (its `Range` answer: it may keep
        fewer bytes than were sent). A chunk that failed on the way (network, 408, 429, 5xx) is not sent
        again blindly: the session is asked what it holds, then the upload goes on from there."""
        from ..transport import backoff, retryable_status

        size, offset, failures = spool.file_bytes, 0, 0
        while offset < size:
            spool.file.seek(offset)
            data = spool.file.read(self.chunk)
            headers = auth | {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{size}"}
            try:
                offset = await _put(session, headers, data, size, settings, transport)
            except GenerationError as exc:
                failures += 1
                if failures > transport.retries or (exc.status is not None and not retryable_status(exc.status)):
                    raise
                await asyncio.sleep(backoff(failures - 1))
                offset = await _put(
                    session, auth | {"Content-Range": f"bytes */{size}"}, b"", size, settings, transport
                )

    async def status(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        job = await self._job(part, settings, transport)
        state = _state(job, part)
        error = as_dict(job.get("error"))
        if error and state.state == "failed":  # a failed job says why
            state.errors.append(str(error.get("message") or error.get("status") or "the job failed"))
        return state

    async def cancel(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        """Ask for the cancel (its answer is empty), then the state it left the job in."""
        token = await _token(settings)
        url = f"{_job_url(settings, part)}:cancel"
        await transport.send(
            HttpRequest("POST", url, _auth(token, json_body=True), {}, content=b"{}"), _error(settings)
        )
        return await self.status(part, settings, transport)

    async def _job(self, part: Part, settings: Resolved, transport: Transport) -> dict[str, Any]:
        token = await _token(settings)
        answer = await transport.send(HttpRequest("GET", _job_url(settings, part), _auth(token)), _error(settings))
        return json_object(answer, WHO)

    async def results(
        self, part: Part, settings: Resolved, transport: Transport, request_of: Callable[[str], ImageRequest]
    ) -> AsyncIterator[BatchResult]:
        """Each request's images or error from every predictions file of the job's output folder,
        decoded one line at a time (with `transport.spill_dir` set, images go to files as they arrive)."""
        job = await self._job(part, settings, transport)
        state = _state(job, part)
        if state.state not in DONE:
            raise UsageError(f"batch {part.provider_batch_id} is {state.state}: its results are not ready")
        folder = as_dict(job.get("outputInfo")).get("gcsOutputDirectory")
        if not isinstance(folder, str) or not folder.startswith("gs://"):
            return  # nothing ran (a failed or cancelled job without output)
        token = await _token(settings)
        bucket_name, _, prefix = folder.removeprefix("gs://").partition("/")
        for name in await _predictions(bucket_name, prefix, token, settings, transport):
            url = f"{_storage()}/storage/v1/b/{quote(bucket_name, safe='')}/o/{quote(name, safe='')}?alt=media"
            download = HttpRequest("GET", url, _auth(token))
            where = f"gs://{bucket_name}/{name}"
            async with aclosing(stream_lines(download, _storage_error(settings), transport, where)) as lines:
                async for line in lines:
                    yield _result(line, request_of, part)


async def _session(base: str, size: int, token: str, settings: Resolved, transport: Transport) -> str:
    """Start a resumable upload; its session URI."""
    headers = _auth(token, json_body=True) | {"X-Upload-Content-Type": JSONL_TYPE, "X-Upload-Content-Length": str(size)}
    start = await transport.send(
        HttpRequest("POST", f"{base}&uploadType=resumable", headers, {}, content=b"{}"), _storage_error(settings)
    )
    session = start.headers.get("location")
    if not session:
        raise BadResponseError("Cloud Storage gave no resumable upload session (Location)")
    return str(session)


async def _put(
    session: str, headers: dict[str, str], data: bytes, size: int, settings: Resolved, transport: Transport
) -> int:
    """One PUT to the session (a chunk, or with `bytes */N` a status query): the bytes Storage now holds."""
    answer = await transport.send(
        HttpRequest("PUT", session, headers | {"X-GUploader-No-308": "yes"}, {"bytes": len(data)}, content=data),
        _storage_error(settings),
        retry_when=lambda _: False,  # _chunks asks the session what it holds before sending more
    )
    if answer.headers.get("x-http-status-code-override") != "308":
        return size  # the object is complete
    held = answer.headers.get("range", "")  # "bytes=0-N", absent while nothing is held
    return int(held.rsplit("-", 1)[-1]) + 1 if held.startswith("bytes=0-") else 0


async def _predictions(
    bucket_name: str, prefix: str, token: str, settings: Resolved, transport: Transport
) -> list[str]:
    """The job's predictions files: every object under its output folder named predictions*.jsonl."""
    names: list[str] = []
    page: str | None = None
    folder = prefix.rstrip("/") + "/" if prefix else ""
    while True:
        url = f"{_storage()}/storage/v1/b/{quote(bucket_name, safe='')}/o?prefix={quote(folder, safe='')}"
        if page:
            url += f"&pageToken={quote(page, safe='')}"
        answer = await transport.send(HttpRequest("GET", url, _auth(token)), _storage_error(settings))
        listing = json_object(answer, WHO)
        for item in listing.get("items") or []:
            name = as_dict(item).get("name")
            base = str(name).rsplit("/", 1)[-1]
            if isinstance(name, str) and base.startswith("predictions") and base.endswith(".jsonl"):
                names.append(name)
        page = listing.get("nextPageToken") if isinstance(listing.get("nextPageToken"), str) else None
        if not page:
            return sorted(names)


def _result(line: dict[str, Any], request_of: Callable[[str], ImageRequest], part: Part) -> BatchResult:
    """One output line: `request` (with imggen's label), `response`, and `status` (empty, or why it failed)."""
    key = as_dict(as_dict(line.get("request")).get("labels")).get(LABEL)
    if not isinstance(key, str) or not key:
        raise BadResponseError(f"an output line of job {part.provider_batch_id} names no request (labels.{LABEL})")
    status = line.get("status")
    if isinstance(status, dict) and status:
        return BatchResult(key, error=status_error(status, SERVICE_NAME))
    if isinstance(status, str) and status.strip():
        return BatchResult(key, error=_status_text(status))
    return answer_result(key, None, line.get("response"), request_of, SERVICE_NAME)


def _status_text(status: str) -> GenerationError:
    """A failed row's status as text, e.g. `Bad Request: {"error": {"code": 400, "message": …}}`: the
    Status inside when there is one."""
    start = status.find("{")
    if start >= 0:
        try:
            inner = as_dict(json.loads(status[start:]))
        except ValueError:
            inner = {}
        if error := as_dict(inner.get("error")) or inner:
            return status_error(error, SERVICE_NAME)
    return ProviderError(f"{SERVICE_NAME} request failed: {status.strip()}")


def _line_text(line: BatchLine) -> bytes:
    """One JSONL line of the input file: `{"request": …}`, imggen's id in the request's labels."""
    body = google_wire.gemini_body(line.request)
    body["labels"] = {**as_dict(body.get("labels")), LABEL: line.custom_id}
    return (json.dumps({"request": body}) + "\n").encode()


def _state(job: dict[str, Any], part: Part) -> PartState:
    word = str(job.get("state") or "JOB_STATE_UNSPECIFIED").removeprefix("JOB_STATE_")
    stats = as_dict(job.get("completionStats"))
    return PartState(
        STATES.get(word, "in_progress"), total=part.request_count, completed=count(stats.get("successfulCount")),
        failed=count(stats.get("failedCount")),
    )  # fmt: skip


def bucket(settings: Resolved) -> str:
    """The bucket's name (a `gs://` prefix or a trailing slash is allowed), or a usage error."""
    raw = str(settings.get("vertex_batch_bucket") or "").strip().removeprefix("gs://").strip("/")
    if not raw:
        raise UsageError(f"{SERVICE_NAME} reads and writes a Cloud Storage bucket, and none is named", hint=BUCKET_HINT)
    if "/" in raw:
        raise UsageError(f"vertex_batch_bucket {raw!r} is not a bucket name (no folders)", hint=BUCKET_HINT)
    return raw


async def _token(settings: Resolved) -> str:
    from ..providers.vertex import oauth_token
    from ..settings import remember_secret

    token = await oauth_token(settings)
    remember_secret(token)
    return token


def _auth(token: str, *, json_body: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


def _host(settings: Resolved, location: str) -> str:
    from ..providers.vertex import location_host

    return location_host(settings.get("api_base"), location)


def _storage() -> str:
    """Cloud Storage's JSON API root, or the emulator's that STORAGE_EMULATOR_HOST names."""
    emulator = os.environ.get(STORAGE_ENV, "").strip().rstrip("/")
    if not emulator:
        return STORAGE
    return emulator if "://" in emulator else f"http://{emulator}"


def _job_url(settings: Resolved, part: Part) -> str:
    """The job's URL at its own location's host (its name says which)."""
    name = part.provider_batch_id or ""
    pieces = name.split("/")
    if len(pieces) != 6 or pieces[0] != "projects" or pieces[2] != "locations" or pieces[4] != "batchPredictionJobs":
        raise UsageError(f"{name} is not a Vertex AI batch prediction job (projects/…/batchPredictionJobs/…)")
    return f"{_host(settings, pieces[3])}/v1/{name}"


def _error(settings: Resolved) -> Callable[[httpx.Response], GenerationError]:
    from ..providers.contract import error_mapper
    from ..providers.vertex import PROVIDER

    return error_mapper(PROVIDER, settings)


def _storage_error(settings: Resolved) -> Callable[[httpx.Response], GenerationError]:
    """Cloud Storage's errors (Google's `{"error": {"code", "message"}}` as Vertex's), with a hint for
    the bucket's permissions."""
    mapped = _error(settings)

    def mapper(response: httpx.Response) -> GenerationError:
        error = mapped(response)
        if response.status_code in (401, 403, 404):
            error.hint = (
                "Check that the bucket exists and that these credentials (and Vertex AI's service agent) may "
                "read and write it."
            )
        return error

    return mapper


_refused = refused_only("Vertex AI batch prediction jobs")
SERVICE = VertexBatches()
