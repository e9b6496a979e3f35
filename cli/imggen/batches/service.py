"""What a batch service module (`batches/<provider>.py`) implements: `SERVICE: BatchService`.

imggen plans and validates every request exactly as `generate` does (jobs.Batch), numbers them
(`custom_id` = f"{line}-{index}"), and hands them to the service as an async stream; the service
uploads and submits them in parts no larger than its limits, reports each part's state in imggen's
words, cancels, and streams each part's results back, decoded as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..errors import GenerationError
    from ..settings import Resolved
    from ..transport import Transport
    from ..types import ImageData, ImageRequest
    from .ledger import Part

STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")


@dataclass(frozen=True)
class Limits:
    """A service's per-file limits: requests and bytes in one input file, and (where the service takes
    requests in the submit call itself) the bytes it takes inline."""

    max_requests: int
    max_bytes: int
    inline_bytes: int = 0


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
    limits: Limits
    discount: float  # the batch price as a share of the synchronous price (0.5: half)

    def submit(self, lines: AsyncIterator[BatchLine], settings: Resolved, transport: Transport
               ) -> AsyncIterator[PartSubmitted]: ...  # fmt: skip

    async def status(self, part: Part, settings: Resolved, transport: Transport) -> PartState: ...

    async def cancel(self, part: Part, settings: Resolved, transport: Transport) -> PartState: ...

    def results(self, part: Part, settings: Resolved, transport: Transport) -> AsyncIterator[BatchResult]: ...
