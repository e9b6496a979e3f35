"""The Gemini API's batch mode for the Gemini image models: `models/{model}:batchGenerateContent`.

Wire facts (google-genai 3.6.1, `batches.py`, `files.py`, `_api_client.py`, `_extra_utils.py`,
`_transformers.py`; ai.google.dev/gemini-api/docs/batch-api and ai.google.dev/api/batch-mode):

- Create: `POST {api_base}/models/{model}:batchGenerateContent` with `x-goog-api-key` and the body
  `{"batch": {"displayName", "inputConfig": {...}}}` (`_CreateBatchJobParameters_to_mldev`,
  `_CreateBatchJobConfig_to_mldev`). `inputConfig` is either inline requests,
  `{"requests": {"requests": [{"request": GenerateContentRequest, "metadata": {"key"}}]}}`
  (`_BatchJobSource_to_mldev`, `_InlinedRequest_to_mldev`), for a total request under 20 MB (the batch
  guide: "smaller batches that keep the total request size under 20MB"), or
  `{"fileName": "files/…"}`: a JSONL file of `{"key", "request"}` lines uploaded to the Files API.
  The answer is an Operation `{"name": "batches/…", "metadata": {GenerateContentBatch}}`.
- Upload (`files.upload`, `_extra_utils.prepare_resumable_upload`, `BaseApiClient.upload_file`):
  `POST {root}/upload/v1beta/files` with `X-Goog-Upload-Protocol: resumable`, `X-Goog-Upload-Command:
  start`, `X-Goog-Upload-Header-Content-Length`, `X-Goog-Upload-Header-Content-Type` and the JSON body
  `{"file": {"displayName"}}`; the answer's `x-goog-upload-url` header takes the bytes in 8 MiB chunks
  (`CHUNK_SIZE`), each `X-Goog-Upload-Command: upload` (the last `upload, finalize`) at its
  `X-Goog-Upload-Offset`; `x-goog-upload-status` says `active` until the `final` answer, whose body is
  `{"file": {"name": "files/…"}}`. Files are kept 48 hours and hold at most 2 GB each
  (ai.google.dev/tutorials/prompting_with_media: "each file not exceeding 2GB in size. Files are stored
  for 48 hours").
- Status: `GET {api_base}/batches/{id}`: the Operation again; `metadata.state` is a `BATCH_STATE_*`
  value (`t_job_state` maps PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED to the SDK's
  `JOB_STATE_*`), `metadata.batchStats` counts requests (`requestCount`, `successfulRequestCount`,
  `failedRequestCount`, `pendingRequestCount`: ai.google.dev/api/batch-mode#BatchStats), and
  `metadata.output` (or the done Operation's `response`) holds `inlinedResponses.inlinedResponses[]`
  (`{"response", "metadata", "error"}`, in the order sent: `_InlinedResponse_from_mldev`) or
  `responsesFile` (`_BatchJobDestination_from_mldev`).
- Cancel: `POST {api_base}/batches/{id}:cancel`.
- Results file: `GET {api_base}/files/{id}:download?alt=media` (`files.download`), JSONL lines each
  `{"key", "response": GenerateContentResponse}` or `{"key", "error": Status}` (the batch guide: "each
  line is either a GenerateContentResponse or a status object").
- Price: batch requests are billed at 50 % of the interactive price (the batch guide's first line: "at
  50% of the standard cost"; the target turnaround is 24 hours). imggen takes the price from the
  catalog's `batch` field, which says so for the Gemini image models.
- Models: the Gemini image models; "Media gen models (Imagen, Lyria or Veo) are not currently
  compatible with Batch API" (Gemini cookbook, quickstarts/Batch_mode.ipynb), so Imagen is refused here.

Each request body is what `imggen generate` sends (`google_wire.gemini_body`) and each answer is parsed
by `google_wire.parse`, so finish reasons and filters become the same errors as in a run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import BadResponseError, ContentFilterError, GenerationError, ProviderError, UsageError
from ..providers import as_dict, google_wire
from ..providers.gemini_spec import SPEC
from ..types import HttpRequest, ImageRequest
from .service import DONE, BatchLine, BatchResult, Limits, PartState, PartSubmitted, Sized, jsonl_lines

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved
    from ..transport import ErrorMapper, Transport
    from .ledger import Part

INLINE_LIMIT = 20_000_000  # bytes of the whole batchGenerateContent body with inline requests
FILE_LIMIT = 2_000_000_000  # bytes of one uploaded file (Files API: 2 GB per file)
# The batch guide names no limit on requests per batch: the file's bytes are the limit. This bound only
# keeps one part's ledger row and results in step with OpenAI's scale.
MAX_REQUESTS = 1_000_000
JSONL_TYPE = "application/jsonl"
KEY_HINT = SPEC.key_hint
DISPLAY_NAME = "imggen"

# The provider's states (BATCH_STATE_* on the wire, JOB_STATE_* in the SDK) in imggen's words.
STATES = {
    "UNSPECIFIED": "validating", "QUEUED": "validating", "PENDING": "validating", "RUNNING": "in_progress",
    "UPDATING": "in_progress", "PAUSED": "in_progress", "SUCCEEDED": "completed",
    "PARTIALLY_SUCCEEDED": "completed", "FAILED": "failed", "CANCELLING": "cancelling",
    "CANCELLED": "cancelled", "EXPIRED": "expired",
}  # fmt: skip
LIMITS = Limits(MAX_REQUESTS, FILE_LIMIT, INLINE_LIMIT)


class GeminiBatches(Sized):
    """The Gemini API's batch service (see the module's docstring for every wire fact)."""

    LIMITS = LIMITS

    async def submit(self, lines: AsyncIterator[BatchLine], settings: Resolved, transport: Transport
                     ) -> AsyncIterator[PartSubmitted]:  # fmt: skip
        """Stream the lines to spool files (one per part, each within the limits); each full part is sent
        and yielded at once (so the caller records it before the next is sent): inline when its whole
        request fits the inline limit, else uploaded and named by `fileName`."""
        async with aclosing(spooled(lines, self.limits, _line_text)) as parts:
            async for spool, n, first, model in parts:
                yield await self._send(spool, n, first, model, settings, transport)

    async def _send(
        self, spool: Spool, n: int, first: int, model: str, settings: Resolved, transport: Transport
    ) -> PartSubmitted:
        shown = DISPLAY_NAME if n == 0 else f"{DISPLAY_NAME}-{n + 1}"  # the parts of one imggen batch
        file_id: str | None = None
        if spool.inline_bytes(shown) <= self.limits.inline_bytes:
            content = spool.inline_body(shown)
        else:
            file_id = await self._upload(spool, settings, transport, shown)
            content = json.dumps({"batch": {"displayName": shown, "inputConfig": {"fileName": file_id}}}).encode()
        url = f"{_base(settings)}/models/{model}:batchGenerateContent"
        request = HttpRequest("POST", url, _headers(settings, json_body=True), {"batch": "…"}, content=content)
        answer = await transport.send(request, _error, retry_when=_refused)
        batch_id = json_object(answer).get("name")
        if not isinstance(batch_id, str) or not batch_id.startswith("batches/"):
            raise BadResponseError("the Gemini API's batch answer has no batches/… name")
        return PartSubmitted(batch_id, file_id, spool.count, first)

    async def _upload(self, spool: Spool, settings: Resolved, transport: Transport, name: str) -> str:
        """The resumable upload of one spool file; returns its `files/…` name."""
        size = spool.file_bytes
        headers = _headers(settings, json_body=True) | {
            "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size), "X-Goog-Upload-Header-Content-Type": JSONL_TYPE,
        }  # fmt: skip
        body = {"file": {"displayName": name}}
        start = await transport.send(
            HttpRequest(
                "POST", f"{_root(settings)}/upload/v1beta/files", headers, body, content=json.dumps(body).encode()
            ),
            _error,
        )
        upload_url = start.headers.get("x-goog-upload-url")
        if not upload_url:
            raise BadResponseError("the Gemini Files API gave no upload URL (x-goog-upload-url)")
        # The key goes only to the API's own host: the upload URL is the server's to name.
        same_host = urlsplit(upload_url).netloc == urlsplit(_base(settings)).netloc
        auth = {"x-goog-api-key": str(_key(settings))} if same_host else {}
        offset = 0
        spool.file.seek(0)
        answer: httpx.Response | None = None
        while True:
            data = spool.file.read(self.chunk)
            last = offset + len(data) >= size
            command = "upload, finalize" if last else "upload"
            chunk_headers = auth | {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
            answer = await transport.send(
                HttpRequest("POST", upload_url, chunk_headers, {"bytes": len(data)}, content=data), _error
            )
            offset += len(data)
            status = answer.headers.get("x-goog-upload-status")
            if last or status != "active":
                break
        if answer.headers.get("x-goog-upload-status") != "final":
            raise BadResponseError("the Gemini Files API did not finalize the upload")
        name_field = as_dict(json_object(answer).get("file")).get("name")
        if not isinstance(name_field, str) or not name_field.startswith("files/"):
            raise BadResponseError("the Gemini Files API's upload answer has no files/… name")
        return name_field

    async def status(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        answer = await transport.send(HttpRequest("GET", _batch_url(settings, part), _headers(settings)), _error)
        payload = json_object(answer)
        state = _state(_batch(payload))
        error = as_dict(payload.get("error"))
        if error:  # a failed batch's Operation says why
            state.errors.append(str(error.get("message") or error.get("status") or "the batch failed"))
        return state

    async def cancel(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        """Ask for the cancel (its answer is empty), then the state it left the batch in."""
        url = f"{_batch_url(settings, part)}:cancel"
        await transport.send(HttpRequest("POST", url, _headers(settings, json_body=True), {}, content=b"{}"), _error)
        return await self.status(part, settings, transport)

    async def results(
        self, part: Part, settings: Resolved, transport: Transport, request_of: Callable[[str], ImageRequest]
    ) -> AsyncIterator[BatchResult]:
        """Each request's images or error, decoded one answer at a time (with `transport.spill_dir` set,
        images go to files as they arrive). Inline responses carry the key sent in their `metadata` (they
        also come in the order sent; an answer without a key is a bad response, for imggen always sends
        one)."""
        answer = await transport.send(
            HttpRequest("GET", _batch_url(settings, part), _headers(settings)), _error, spill=True
        )
        batch = _batch(json_object(answer))
        state = _state(batch)
        if state.state not in DONE:
            raise UsageError(f"batch {part.provider_batch_id} is {state.state}: its results are not ready")
        output = _output(batch)
        inlined = as_dict(output.get("inlinedResponses")).get("inlinedResponses")
        if isinstance(inlined, list):
            for index, item in enumerate(inlined):
                yield _result(as_dict(item), request_of, part, index)
            return
        file_id = output.get("responsesFile") or part.output_file_id
        if not isinstance(file_id, str) or not file_id:
            return  # nothing ran (a failed, cancelled or expired batch without results)
        url = f"{_base(settings)}/{file_id}:download?alt=media"
        download = HttpRequest("GET", url, _headers(settings))
        async with aclosing(
            stream_lines(download, _expired_error, transport, "the Gemini batch's responses file")
        ) as lines:
            index = 0
            async for raw in lines:
                yield _result(raw, request_of, part, index)
                index += 1


async def stream_lines(
    request: HttpRequest, map_error: ErrorMapper, transport: Transport, what: str
) -> AsyncGenerator[dict[str, Any], None]:
    """A JSONL file downloaded as it streams, each line a JSON object (service.jsonl_lines: images
    spilled to files as they arrive); `what` names the file in a bad line's error."""
    response = await transport.open_stream(request, map_error)
    async with aclosing(jsonl_lines(response, transport)) as documents:
        async for document in documents:
            yield _parsed_line(document, what)


def refused_only(where: str) -> Callable[[GenerationError], bool]:
    """Whether a failed create may be sent again: only when Google refused it (429: nothing was made).
    After a 5xx or a lost answer the batch may exist all the same, and a second one would run (and be
    billed) twice: the error says so instead, naming `where` to look."""

    def refused(error: GenerationError) -> bool:
        if error.status == 429:
            return True
        error.hint = (
            "Google may have created this batch all the same; imggen did not send it twice. "
            f"Check your {where} before submitting again."
        )
        return False

    return refused


_refused = refused_only("Gemini API batches")


def _parsed_line(text: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadResponseError(f"a line of {what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadResponseError(f"a line of {what} is not a JSON object")
    return value


def _result(item: dict[str, Any], request_of: Callable[[str], ImageRequest], part: Part, index: int) -> BatchResult:
    key = as_dict(item.get("metadata")).get("key") or item.get("key")
    if not isinstance(key, str) or not key:
        raise BadResponseError(f"answer {index + 1} of batch {part.provider_batch_id} names no request (key)")
    error = item.get("error")
    return answer_result(key, error if isinstance(error, dict) and error else None, item.get("response"), request_of)


def answer_result(
    key: str, error: dict[str, Any] | None, response: Any, request_of: Callable[[str], ImageRequest],
    service: str = "Gemini",
) -> BatchResult:  # fmt: skip
    """One request's answer: its error (a google.rpc.Status), or its GenerateContentResponse read as
    `generate` reads it (google_wire.parse: finish reasons and filters become the same errors)."""
    if error:
        return BatchResult(key, error=status_error(error, service))
    if not isinstance(response, dict):
        return BatchResult(
            key, error=BadResponseError(f"the batch's answer to {key} holds neither a response nor an error")
        )
    try:
        # A request's other candidates that failed while some made images are left out, as the
        # images a run's answer lacks are.
        images, _, _ = google_wire.parse(request_of(key), response, None)
    except GenerationError as exc:
        return BatchResult(key, error=exc)
    return BatchResult(key, images=images)


def status_error(error: dict[str, Any], service: str = "Gemini") -> GenerationError:
    """A google.rpc.Status for one request: `{"code", "message", "details"}` (code: a google.rpc.Code)."""
    message = str(error.get("message") or "the request failed")
    code = error.get("code")
    name = error.get("status") if isinstance(error.get("status"), str) else None
    text = f"{service} batch request failed ({name or code}): {message}"
    if "safety" in message.lower() or "blocked" in message.lower():
        return ContentFilterError(text, hint=google_wire.FILTER_HINT, code=str(name or code))
    return ProviderError(text, code=str(name or code) if (name or code) is not None else None)


def check_request(request: ImageRequest, model: str | None, service: str = "the Gemini API's batch mode") -> str:
    """The model id every request of one batch shares; Imagen, edits and mixed models are refused."""
    if google_wire.method_of(request) != "generateContent":  # Imagen (:predict) has no batch mode
        raise UsageError(
            f"{request.model.name}: {service} takes the Gemini image models only",
            hint="Imagen is not batch-compatible; use a gemini-*-image model.",
        )
    if request.images or request.mask is not None or request.mask_prompt is not None:
        raise UsageError("imggen batch submits generations only (no input images)")
    if model is not None and request.model.model_id != model:
        raise UsageError("every request of one batch must be for the same model")
    return request.model.model_id


async def spooled(
    lines: AsyncIterator[BatchLine], cap: Limits, line_text: Callable[[BatchLine], bytes],
    service: str = "the Gemini API's batch mode",
) -> AsyncGenerator[tuple[Spool, int, int, str], None]:  # fmt: skip
    """The lines on disk, one spool file per part within the limits: yields (spool, n, first, model) as
    each part fills (its number, the position of its first line, the model all its lines share), so
    the caller sends it before the next is read. A spool is closed once the caller asks for the next."""
    model: str | None = None
    first = n = 0
    spool = Spool()
    try:
        async for line in lines:
            model = check_request(line.request, model, service)
            text = line_text(line)
            if len(text) > cap.max_bytes:
                raise UsageError(f"request {line.custom_id} alone is larger than a batch input file may be")
            if spool.count and (spool.count >= cap.max_requests or spool.file_bytes + len(text) > cap.max_bytes):
                yield spool, n, first, model
                first, n = first + spool.count, n + 1
                spool.close()
                spool = Spool()
            spool.add(text)
        if spool.count:
            assert model is not None
            yield spool, n, first, model
    finally:
        spool.close()


class Spool:
    """One part's requests on disk: the JSONL to upload, and its size as inline requests."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="imggen-batch-")  # noqa: SIM115 (closed by close)
        self.count = 0
        self.file_bytes = 0
        self.inline_total = 0

    def add(self, text: bytes) -> None:
        self.file.write(text)
        self.count += 1
        self.file_bytes += len(text)
        # The same request inline: {"request": R, "metadata": {"key": K}} instead of {"key": K, "request": R},
        # a comma between items instead of a newline.
        self.inline_total += len(text) + len(b'"metadata": {}, ')

    def inline_bytes(self, name: str) -> int:
        return len(self._head(name)) + self.inline_total + len(self._tail())

    def inline_body(self, name: str) -> bytes:
        self.file.seek(0)
        items = []
        for raw in self.file:
            line = json.loads(raw)
            items.append(json.dumps({"request": line["request"], "metadata": {"key": line["key"]}}).encode())
        return self._head(name) + b", ".join(items) + self._tail()

    @staticmethod
    def _head(name: str) -> bytes:
        return (
            '{"batch": {"displayName": ' + json.dumps(name) + ', "inputConfig": {"requests": {"requests": ['
        ).encode()

    @staticmethod
    def _tail() -> bytes:
        return b"]}}}}"

    def close(self) -> None:
        self.file.close()


def _line_text(line: BatchLine) -> bytes:
    """One JSONL line of the input file: `{"key", "request"}` (the batch guide's file format)."""
    body = google_wire.gemini_body(line.request)
    return (json.dumps({"key": line.custom_id, "request": body}) + "\n").encode()


def _state(batch: dict[str, Any]) -> PartState:
    word = str(batch.get("state") or "BATCH_STATE_UNSPECIFIED").removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
    stats = as_dict(batch.get("batchStats"))
    file_id = _output(batch).get("responsesFile")
    return PartState(
        STATES.get(word, "in_progress"), total=count(stats.get("requestCount")),
        completed=count(stats.get("successfulRequestCount")), failed=count(stats.get("failedRequestCount")),
        output_file_id=file_id if isinstance(file_id, str) and file_id else None,
    )  # fmt: skip


def count(value: Any) -> int:
    """An int64 count: proto3 JSON sends it as a string."""
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _batch(payload: dict[str, Any]) -> dict[str, Any]:
    """The GenerateContentBatch of an answer: an Operation's `metadata` (what create and get return),
    with the done Operation's `response` as its output when `metadata.output` is absent; or the batch
    itself."""
    metadata = payload.get("metadata")
    if isinstance(metadata, dict) and ("state" in metadata or "model" in metadata):
        batch = dict(metadata)
        if "output" not in batch and isinstance(payload.get("response"), dict):
            batch["output"] = payload["response"]
        return batch
    return payload


def _output(batch: dict[str, Any]) -> dict[str, Any]:
    return as_dict(batch.get("output"))


def json_object(response: httpx.Response, who: str = "the Gemini API's batch answer") -> dict[str, Any]:
    """A batch service's answer as a JSON object (Vertex AI's too), or the BadResponseError saying it is not."""
    try:
        value = response.json()
    except ValueError:
        raise BadResponseError(f"{who} is not JSON") from None
    if not isinstance(value, dict):
        raise BadResponseError(f"{who} is not a JSON object")
    return value


def _key(settings: Resolved) -> Any:
    return settings.require("api_key", "the Gemini API key", KEY_HINT)


def _headers(settings: Resolved, *, json_body: bool = False) -> dict[str, str]:
    headers = {"x-goog-api-key": str(_key(settings))}  # a header, never the URL: URLs end up in logs
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


def _base(settings: Resolved) -> str:
    return str(settings.get("api_base")).rstrip("/")


def _root(settings: Resolved) -> str:
    """The host of the API, without its version (`…/v1beta` -> `…`): uploads go to `/upload/v1beta/…`."""
    base = _base(settings)
    return base.rsplit("/", 1)[0] if base.rsplit("/", 1)[-1].startswith("v1") else base


def _batch_url(settings: Resolved, part: Part) -> str:
    batch_id = part.provider_batch_id or ""
    if not batch_id.startswith("batches/") or "/" in batch_id.removeprefix("batches/"):
        raise UsageError(f"{batch_id} is not a Gemini batch name (batches/…)")
    return f"{_base(settings)}/{batch_id}"


def _error(response: httpx.Response) -> GenerationError:
    from ..providers.gemini import _list_error

    return _list_error(response)


def _expired_error(response: httpx.Response) -> GenerationError:
    """A responses file gone (deleted after 48 hours, or never there) says so."""
    error = _error(response)
    if response.status_code in (403, 404):
        error.hint = "The Gemini API keeps a batch's files for 48 hours; this one is gone. Submit the batch again."
    return error


SERVICE = GeminiBatches()
