"""Neutral request and response objects shared by the API, the providers and the CLI (data only)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadResponseError, GenerationError
from .secrets import SECRET_HEADERS

if TYPE_CHECKING:
    from .catalog import ModelInfo


@dataclass(frozen=True)
class ModelRef:
    """A model as the user named it, split into provider and id, with its catalog entry if known."""

    provider: str
    model_id: str
    info: ModelInfo | None = None

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model_id}"


@dataclass(frozen=True)
class ImageRequest:
    """One request to one provider, with values already mapped to what the model takes."""

    prompt: str
    model: ModelRef
    n: int = 1
    size: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: str | None = None
    user: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    first_index: int = 1  # 1-based index of this request's first image within its prompt


SENT_LATER = "(added when sent)"  # a header dry-run shows in place of a signature or token it never fetches


@dataclass
class HttpRequest:
    """An HTTP request as a provider builds it; `secret_headers` are masked wherever it is shown."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None  # exact bytes to send, when they were signed (json is then for display)
    secret_headers: frozenset[str] = SECRET_HEADERS


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.input_text_tokens += other.input_text_tokens


@dataclass
class ImageData:
    """One generated image, shaped like OpenAI's `data[]` item plus what imggen learned about it."""

    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None
    seed: int | None = None
    size: str | None = None
    index: int = 1
    request_id: str | None = None
    cost_usd: float | None = None
    text: str | None = None  # text a model returned beside the image (Gemini)
    file: Path | None = None  # the decoded image, when it was streamed to disk instead of held in b64_json

    @classmethod
    def from_b64(cls, value: str, **fields: Any) -> ImageData:
        """An image from a response's base64 string, or from the file it was streamed into."""
        from .spill import lookup

        spill = lookup(value)
        if spill is None:
            return cls(b64_json=value, **fields)
        if spill.error:
            raise BadResponseError(f"the provider's b64 image does not decode: {spill.error}")
        return cls(file=spill.path, **fields)

    def image_bytes(self) -> bytes:
        """The decoded image; a URL result must be downloaded with `ImageResponse.save` instead."""
        if self.file is not None:
            return self.file.read_bytes()
        if self.b64_json is None:
            raise BadResponseError("this image is a URL result; save it to download it")
        try:
            return base64.b64decode(self.b64_json, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadResponseError(f"the provider's b64_json does not decode: {exc}") from exc


@dataclass
class ImageResponse:
    """What `imggen.generate` returns: shaped like OpenAI's images response, plus model, cost and any failures."""

    created: int
    data: list[ImageData]
    model: str
    prompt: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    errors: list[GenerationError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def save(
        self,
        directory: str | Path = ".",
        *,
        name: str | None = None,
        overwrite: bool = False,
        metadata: bool = False,
        timeout: float = 600,
    ) -> list[Path]:
        """Write every image to `directory` (created if missing) and return the paths."""
        from .output import save_response

        return save_response(self, Path(directory), name=name, overwrite=overwrite, metadata=metadata, timeout=timeout)
