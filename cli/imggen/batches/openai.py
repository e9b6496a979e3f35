"""OpenAI's Batch API for `/v1/images/generations` (openai-python 3.57.0, read for every fact here):

- the input is a JSONL file, one request a line, `{"custom_id", "method": "POST", "url":
  "/v1/images/generations", "body": {...}}` (the body is the synchronous request's), uploaded with
  `POST /files` as multipart `file` + `purpose=batch` (resources/files.py `create`; "The Batch API
  only supports .jsonl files up to 200 MB in size");
- `POST /batches {"input_file_id", "endpoint": "/v1/images/generations", "completion_window": "24h"}`
  (types/batch_create_params.py: `endpoint` accepts "/v1/images/generations" and "/v1/images/edits";
  `completion_window` only "24h"; "The file can contain up to 50,000 requests, and can be up to 200 MB
  in size");
- `GET /batches/{id}`, `POST /batches/{id}/cancel` (resources/batches.py); a Batch (types/batch.py)
  has `status` in validating, failed, in_progress, finalizing, completed, expired, cancelling,
  cancelled, `request_counts {total, completed, failed}`, `output_file_id`, `error_file_id`,
  `errors.data[] {code, line, message, param}`;
- results are `GET /files/{id}/content`, JSONL lines `{"id", "custom_id", "response": {"status_code",
  "request_id", "body"}, "error": {"code", "message"}}` (OpenAPI `BatchRequestOutput`: "The per-line
  object of the batch output and error files"), in any order: matched by custom_id;
- the Batch API's price is half the synchronous price (OpenAI's pricing page, "Batch API: save 50%").

Each part is spooled to a temporary file as its lines arrive (memory stays flat), then uploaded from
disk in chunks. IMGGEN_BATCH_LIMITS="REQUESTS,BYTES" lowers the per-file limits (tests use it to split
small batches)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError, GenerationError, UsageError
from ..types import HttpRequest
from .service import BatchLine, BatchResult, Limits, PartState, PartSubmitted, Sized, jsonl_lines

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved
    from ..transport import Transport
    from ..types import ImageRequest
    from .ledger import Part

ENDPOINT = "/v1/images/generations"
WINDOW = "24h"
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TAG = "imggen_part"  # the metadata key a create is recognised by (_create)
_STATES = {"validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"}


def _base(settings: Resolved) -> str:
    from ..providers.openai_wire import join

    return join(settings.get("api_base"), "")


def _headers(settings: Resolved) -> dict[str, str]:
    from ..providers.openai import KEY_HINT
    from ..providers.openai_wire import bearer

    return bearer(str(settings.require("api_key", "the OpenAI API key", KEY_HINT)))


def _error(response: httpx.Response) -> GenerationError:
    from ..providers.contract import map_error
    from ..providers.openai_wire import error_fields

    return map_error(response, error_fields(response))


async def _json(transport: Transport, method: str, url: str, settings: Resolved, *, retry: bool = True,
                **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    """One call of the API, sent again after a connection failure or a retryable status as often as
    the transport's retries allow (never with `retry=False`: the caller decides). An upload is sent
    again whole, from its file's start: a failed upload made no file, or one nothing refers to."""
    import asyncio

    from ..transport import backoff

    attempt = 0
    while True:
        try:
            return await _call(transport, method, url, settings, **kwargs)
        except GenerationError as exc:
            if not retry or attempt >= transport.retries or not _transient(exc):
                raise
        attempt += 1
        await asyncio.sleep(backoff(attempt))


async def _call(transport: Transport, method: str, url: str, settings: Resolved, **kwargs: Any) -> dict[str, Any]:
    import httpx

    from ..transport import network_error

    try:  # an upload's file is read from its start each time (httpx 0.28 _multipart.FileField.render_data)
        response = await transport.client_for(url).request(method, url, headers=_headers(settings), **kwargs)
    except httpx.TransportError as exc:
        raise network_error(exc, url) from None
    if not response.is_success:
        raise _error(response)
    payload = response.json()
    if not isinstance(payload, dict):
        raise BadResponseError("the response is not a JSON object", status=response.status_code)
    return payload


def _transient(exc: GenerationError) -> bool:
    from ..errors import NetworkError
    from ..transport import retryable_status

    return isinstance(exc, NetworkError) or (exc.status is not None and retryable_status(exc.status))


async def _create(body: dict[str, Any], settings: Resolved, transport: Transport) -> dict[str, Any]:
    """`POST /batches`, never two batches for one part: the create carries a tag of its own in its
    `metadata` (types/batch_create_params.py: "Set of 16 key-value pairs", values up to 512 characters),
    and when its answer is lost (a dropped connection, a 5xx) the newest batches are looked through for
    that tag before it is sent again. A 429 made nothing and is simply sent again."""
    import asyncio
    import uuid

    from ..transport import backoff

    tag = uuid.uuid4().hex
    url = _base(settings) + "batches"
    attempt = 0
    while True:
        try:
            return await _json(transport, "POST", url, settings, retry=False,
                               json={**body, "metadata": {TAG: tag}})  # fmt: skip
        except GenerationError as exc:
            if attempt >= transport.retries or not _transient(exc):
                raise
            if exc.status != 429 and (made := await _tagged(tag, url, settings, transport)) is not None:
                return made
        attempt += 1
        await asyncio.sleep(backoff(attempt))


async def _tagged(tag: str, url: str, settings: Resolved, transport: Transport) -> dict[str, Any] | None:
    """The batch carrying `tag` among the newest 100 (`GET /batches?limit=100`, resources/batches.py
    `list`: newest first, "Limit can range between 1 and 100"); the one just made is among them."""
    page = await _json(transport, "GET", url, settings, params={"limit": 100})
    for batch in page.get("data") or []:
        if isinstance(batch, dict) and isinstance(batch.get("metadata"), dict) and batch["metadata"].get(TAG) == tag:
            return batch
    return None


def request_line(line: BatchLine, settings: Resolved) -> bytes:
    """One JSONL line: the synchronous request's body under the batch's envelope."""
    from ..providers.openai import PROVIDER

    if line.request.images:
        raise UsageError("imggen batch makes images from prompts; edits are not batched yet")
    http = PROVIDER.build_request(line.request, settings, dry_run=True)
    envelope = {"custom_id": line.custom_id, "method": "POST", "url": ENDPOINT, "body": http.json}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class OpenAIBatches(Sized):
    LIMITS = Limits(MAX_REQUESTS, MAX_BYTES)

    async def submit(self, lines: AsyncIterator[BatchLine], settings: Resolved, transport: Transport
                     ) -> AsyncIterator[PartSubmitted]:  # fmt: skip
        """Spools lines into parts within the limits; each full part is uploaded and submitted, and yielded
        at once (so the caller records it before the next is sent)."""
        cap = self.limits
        spool, count, size, first, position = None, 0, 0, 0, 0
        try:
            async for line in lines:
                data = request_line(line, settings)
                if len(data) > cap.max_bytes:
                    raise UsageError(f"request {line.custom_id} is larger than a batch file may be")
                if spool is not None and (count + 1 > cap.max_requests or size + len(data) > cap.max_bytes):
                    yield await self._send(spool, count, first, settings, transport)
                    spool.close()
                    spool, count, size = None, 0, 0
                if spool is None:
                    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed after its upload
                    first = position
                spool.write(data)
                count, size, position = count + 1, size + len(data), position + 1
            if spool is not None and count:
                yield await self._send(spool, count, first, settings, transport)
        finally:
            if spool is not None:
                spool.close()

    async def _send(self, spool: Any, count: int, first: int, settings: Resolved, transport: Transport
                    ) -> PartSubmitted:  # fmt: skip
        spool.flush()
        base = _base(settings)
        uploaded = await _json(transport, "POST", base + "files", settings, data={"purpose": "batch"},
                               files={"file": ("imggen-batch.jsonl", spool, "application/jsonl")})  # fmt: skip
        file_id = _text(uploaded.get("id"), "file id")
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": WINDOW}
        created = await _create(body, settings, transport)
        return PartSubmitted(_text(created.get("id"), "batch id"), file_id, count, first)

    async def status(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        batch = await _json(transport, "GET", f"{_base(settings)}batches/{part.provider_batch_id}", settings)
        return _state(batch)

    async def cancel(self, part: Part, settings: Resolved, transport: Transport) -> PartState:
        batch = await _json(transport, "POST", f"{_base(settings)}batches/{part.provider_batch_id}/cancel", settings)
        return _state(batch)

    async def results(self, part: Part, settings: Resolved, transport: Transport,
                      request_of: Callable[[str], ImageRequest]) -> AsyncIterator[BatchResult]:  # fmt: skip
        """The output file's lines, then the error file's, each decoded as it streams in: a line's base64
        images go to files in the transport's spill directory (spill.py) before the line ends, so a line
        of many large images is never held, nor is the file."""
        gone: GenerationError | None = None  # a file gone is said after the other file is read
        for file_id in (part.output_file_id, part.error_file_id):
            if not file_id:
                continue
            download = HttpRequest("GET", f"{_base(settings)}files/{file_id}/content", _headers(settings))
            try:
                response = await transport.open_stream(download, _error)
            except GenerationError as exc:
                if exc.status != 404:
                    raise
                gone = gone or _file_gone(exc, file_id)
                continue
            async with aclosing(jsonl_lines(response, transport)) as documents:
                async for document in documents:
                    yield result_of(document, request_of)
        if gone is not None:
            raise gone


def _file_gone(error: GenerationError, file_id: str) -> GenerationError:
    """An output or error file that is gone (expired, or deleted from the account) says so, and what is
    left to do: its requests are reported failed, and the manifest names them."""
    error.message = f"the batch's result file {file_id} is no longer at OpenAI (expired or deleted)"
    error.hint = "Its images cannot be collected: submit those prompts again (--json or the manifest lists them)."
    return error


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadResponseError(f"the answer has no {what}")
    return value


def _state(batch: dict[str, Any]) -> PartState:
    status = batch.get("status")
    if status not in _STATES:
        raise BadResponseError(f"unknown batch status {status!r}")
    counts = batch.get("request_counts") or {}
    errors = (batch.get("errors") or {}).get("data") or []
    reasons = [f"{e.get('code')}: {e.get('message')}" + (f" (line {e['line']})" if e.get("line") else "")
               for e in errors if isinstance(e, dict)]  # fmt: skip
    return PartState(str(status), int(counts.get("total") or 0), int(counts.get("completed") or 0),
                     int(counts.get("failed") or 0), batch.get("output_file_id"), batch.get("error_file_id"),
                     reasons)  # fmt: skip


def result_of(text: str | bytes, request_of: Callable[[str], ImageRequest]) -> BatchResult:
    """One output or error file line: its images, or its error as imggen's errors say it."""
    import httpx

    from ..providers.openai_wire import parse_images

    try:
        line = json.loads(text)
        custom_id = str(line["custom_id"])
    except (ValueError, KeyError, TypeError):
        raise BadResponseError("a line of the batch's result file is not a result") from None
    response, error = line.get("response"), line.get("error")
    if isinstance(response, dict):
        rid = response.get("request_id") if isinstance(response.get("request_id"), str) else None
        code = response.get("status_code")
        status = code if isinstance(code, int) else 200
        answer = httpx.Response(status, json=response.get("body"), headers={"x-request-id": rid or ""})
        if answer.is_success:
            try:
                parsed = parse_images(request_of(custom_id), answer)
            except GenerationError as exc:
                return BatchResult(custom_id, error=exc, request_id=rid)
            return BatchResult(custom_id, parsed.images, request_id=rid)
        return BatchResult(custom_id, error=_error(answer), request_id=rid)
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = str(error.get("message") or "the request failed")
        from ..errors import ProviderError

        return BatchResult(custom_id, error=ProviderError(f"{code}: {message}" if code else message, code=code))
    return BatchResult(custom_id, error=BadResponseError("the result has neither a response nor an error"))


SERVICE = OpenAIBatches()
