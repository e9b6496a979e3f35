"""What a batch service module (`batches/<provider>.py`) implements: `SERVICE: BatchService`.

imggen plans and validates every request exactly as `generate` does (jobs.Batch), numbers them
(`custom_id` = f"{line}-{index}"), and hands them to the service as an async stream; the service
uploads and submits them in parts no larger than its limits, reports each part's state in imggen's
words, cancels, and streams each part's results back, decoded as they arrive."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import httpx

    from ..errors import GenerationError
    from ..settings import Resolved
    from ..transport import Transport
    from ..types import ImageData, ImageRequest
    from .ledger import Part

LIMITS_ENV = "IMGGEN_BATCH_LIMITS"
CHUNK = 8 * 1024 * 1024  # bytes per upload request: google-genai's CHUNK_SIZE, a multiple of Cloud Storage's 256 KiB
STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
DONE = frozenset({"completed", "failed", "expired", "cancelled"})  # a provider batch in these will not change again


@dataclass(frozen=True)
class Limits:
    """A service's per-file limits: requests and bytes in one input file, and (where the service takes
    requests in the submit call itself) the bytes it takes inline."""

    max_requests: int
    max_bytes: int
    inline_bytes: int = 0


def lowered(ceiling: Limits) -> Limits:
    """A service's limits, or lower ones from IMGGEN_BATCH_LIMITS="REQUESTS,BYTES[,INLINE_BYTES]" (never
    higher than the service's): tests use it to split small batches, and to send them inline or not."""
    from ..errors import UsageError

    raw = os.environ.get(LIMITS_ENV)
    if not raw:
        return ceiling
    try:
        values = [int(x) for x in raw.split(",")]
        if len(values) not in (2, 3):
            raise ValueError(raw)
        requests, size = values[:2]
        inline = values[2] if len(values) == 3 else ceiling.inline_bytes
    except ValueError:
        raise UsageError(f"{LIMITS_ENV}={raw!r} is not REQUESTS,BYTES[,INLINE_BYTES]") from None
    return Limits(max(1, min(requests, ceiling.max_requests)), max(1, min(size, ceiling.max_bytes)),
                  max(0, min(inline, ceiling.inline_bytes)))  # fmt: skip


class Sized:
    """A service's limits and upload chunk: its own `LIMITS`, or lower ones given (tests) or set by
    IMGGEN_BATCH_LIMITS."""

    LIMITS: ClassVar[Limits]

    def __init__(self, limits: Limits | None = None, chunk: int = CHUNK) -> None:
        self._limits = limits  # None: the service's, or lower ones from IMGGEN_BATCH_LIMITS
        self.chunk = chunk

    @property
    def limits(self) -> Limits:
        return self._limits or lowered(self.LIMITS)


@dataclass(frozen=True)
class BatchLine:
    custom_id: str  # f"{line_number}-{index}": the prompt's line and the request's first image index
    request: ImageRequest


@dataclass
class PartSubmitted:
    """One provider batch made by `submit`: its ids and which of the lines it holds."""

    provider_batch_id: str
    input_file_id: str | None
    request_count: int
    first_index: int  # 0-based position of its first line among the batch's lines


@dataclass
class PartState:
    state: str  # one of STATES
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[str] = field(default_factory=list)  # the service's own reasons (a failed validation)


@dataclass
class BatchResult:
    custom_id: str
    images: list[ImageData] = field(default_factory=list)
    error: GenerationError | None = None
    request_id: str | None = None


class BatchService(Protocol):
    """The price is not the service's to say: the catalog's `batch` field holds it (catalog.batch_cost).
    A service may also have `check(settings)`, which `batch submit` calls before anything is recorded or
    sent, to refuse a setting it cannot start without (Vertex AI's Cloud Storage bucket)."""

    limits: Limits

    def submit(self, lines: AsyncIterator[BatchLine], settings: Resolved, transport: Transport
               ) -> AsyncIterator[PartSubmitted]: ...  # fmt: skip

    async def status(self, part: Part, settings: Resolved, transport: Transport) -> PartState: ...

    async def cancel(self, part: Part, settings: Resolved, transport: Transport) -> PartState: ...

    # results: `request_of(custom_id)` is the request that line was made from (its seed, size and first
    # index label the images as `generate` labels them, and say how to read the answer).
    def results(self, part: Part, settings: Resolved, transport: Transport, request_of: Callable[[str], ImageRequest]
                ) -> AsyncIterator[BatchResult]: ...  # fmt: skip


async def jsonl_lines(response: httpx.Response, transport: Transport) -> AsyncGenerator[bytes, None]:
    """A result file's JSONL body (an open stream, from `Transport.open_stream`), line by line, each
    line's long base64 strings streamed to files (spill.py) as they arrive: memory holds one line's text
    without its images, never the file. Closes the response."""
    from ..spill import jsonl_documents
    from ..transport import body_chunks

    try:
        async with (
            aclosing(body_chunks(response)) as chunks,
            aclosing(jsonl_documents(chunks, transport.spill_dir, transport.max_image)) as documents,
        ):
            async for document in documents:
                yield document
    finally:
        await response.aclose()
