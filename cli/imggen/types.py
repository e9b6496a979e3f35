"""Neutral request and response objects shared by the API, the providers and the CLI (data only)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadResponseError, GenerationError
from .secrets import SECRET_HEADERS, shown_header

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
    # An edit: the input images (the first is the one a mask applies to), a mask file or a text
    # naming what to change, and how closely to keep the inputs' details.
    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    mask_prompt: str | None = None
    input_fidelity: str | None = None

    @property
    def task(self) -> str:
        """ "edit" when there are input images, else "generate"."""
        return "edit" if self.images else "generate"


@dataclass(frozen=True)
class InputImage:
    """An input image of an edit (or a mask), as checked before anything is sent: what its header says
    and its hash. The bytes are read when a request is built (`read`), so a batch of edits holds only
    the images of the requests in flight; bytes given directly (stdin, a Python call) are kept.

    An upload imggen cannot read (format `unknown`, no pixel size: `opaque`) is sent as it came, under
    its own file name and content type; only an OpenAI-compatible server of the user's takes one
    (inputs.check_edit), where the server decides what it accepts."""

    name: str  # how messages and --dry-run name it: the file's name, "stdin", "image 1"
    format: str  # png, jpeg, webp, gif; UNKNOWN_FORMAT for an opaque upload
    width: int
    height: int
    alpha: bool  # has an alpha channel (PNG colour types 4 and 6, or a tRNS chunk; WebP with alpha)
    size: int  # bytes
    sha256: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)
    content_type: str | None = None  # an opaque upload's type, as its sender gave it (else guessed from its name)

    @property
    def opaque(self) -> bool:
        """Not an image imggen can read: nothing is known of it but its name, type and bytes."""
        return self.format == UNKNOWN_FORMAT

    @property
    def mime(self) -> str:
        if self.opaque:
            return self.content_type or "application/octet-stream"
        return f"image/{self.format}"

    @property
    def filename(self) -> str:
        """A file name with the extension its format has (what a multipart part is called); an opaque
        upload keeps the name it came with."""
        if self.opaque:
            return (self.path.name if self.path is not None else self.name) or "image"
        named = (
            self.path is not None or Path(self.name).suffix.lower() in IMAGE_SUFFIXES
        )  # otter.png, not otter.png.png
        stem = Path(self.name).stem if named else self.name.replace(" ", "-")
        return f"{stem or 'image'}.{'jpg' if self.format == 'jpeg' else self.format}"

    def read(self) -> bytes:
        """The bytes; a file changed since it was checked is an error, not a different image sent."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        from .inputs import read_checked

        return read_checked(self)

    def b64(self) -> str:
        return base64.b64encode(self.read()).decode("ascii")

    def part(self) -> FilePart:
        """The image as a multipart file."""
        return FilePart(self.filename, self.read(), self.mime)

    def shown(self) -> str:
        """How --dry-run, -v and messages show it: never the bytes."""
        pixels = "not read by imggen" if self.opaque else f"{self.width}x{self.height}"
        return f"<{self.name}, {self.mime}, {pixels}, {self.size:,} bytes>"

    def described(self) -> dict[str, Any]:
        """What --metadata and the manifest record of it."""
        return {"name": self.name, "sha256": self.sha256, "format": self.format,
                "size": None if self.opaque else f"{self.width}x{self.height}", "bytes": self.size}  # fmt: skip


UNKNOWN_FORMAT = "unknown"  # InputImage.format of an upload imggen cannot read
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


@dataclass(frozen=True)
class Inline:
    """An input image inside a JSON body, as base64 text: sent as the text, shown as `InputImage.shown`
    (see HttpRequest.inline)."""

    image: InputImage


SENT_LATER = "(added when sent)"  # a header dry-run shows in place of a signature or token it never fetches


@dataclass(frozen=True)
class FilePart:
    """A file in a multipart body (an input image, a mask)."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"

    def shown(self) -> str:
        """How --dry-run and -v show it: never the bytes."""
        return f"<{self.filename}, {self.content_type}, {len(self.content):,} bytes>"


@dataclass
class HttpRequest:
    """An HTTP request as a provider builds it; `secret_headers` are masked wherever it is shown.
    The body is `json`, or `content` (exact bytes), or a multipart form (`form` and `files`); `json`
    is what --dry-run and -v show of the latter two (see `multipart`)."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None  # exact bytes to send, when they were signed (json is then for display)
    secret_headers: frozenset[str] = SECRET_HEADERS
    form: dict[str, str] | None = None  # multipart text fields
    files: list[tuple[str, FilePart]] | None = None  # multipart file fields, in order (a name may repeat)

    @classmethod
    def multipart(
        cls, method: str, url: str, headers: dict[str, str], form: dict[str, str], files: list[tuple[str, FilePart]]
    ) -> HttpRequest:
        """A multipart/form-data request (the boundary's Content-Type is added when sent); shown as its
        fields with each file described by name, type and size."""
        shown: dict[str, Any] = dict(form)
        for name, part in files:
            previous = shown.get(name)
            if previous is None:
                shown[name] = part.shown()
            else:
                shown[name] = [*(previous if isinstance(previous, list) else [previous]), part.shown()]
        return cls(method, url, headers, shown, form=form, files=files)

    @classmethod
    def inline(cls, method: str, url: str, headers: dict[str, str], body: Any) -> HttpRequest:
        """A JSON request whose body holds input images (`Inline`): sent as exact bytes with each image's
        base64 text, shown (--dry-run, -v) with each image described instead."""
        import json

        def sent(value: Any) -> Any:
            if isinstance(value, Inline):
                return value.image.b64()
            raise TypeError(f"{type(value).__name__} is not JSON")

        def shown(value: Any) -> Any:
            if isinstance(value, Inline):
                return value.image.shown()
            raise TypeError(f"{type(value).__name__} is not JSON")

        content = json.dumps(body, separators=(",", ":"), default=sent).encode()
        return cls(method, url, headers, json.loads(json.dumps(body, default=shown)), content=content)

    def shown_headers(self) -> dict[str, str]:
        """The headers as --dry-run and -v show them: credentials masked, placeholders as they are."""
        return {
            k: shown_header(v) if k.lower() in self.secret_headers and not v.endswith(SENT_LATER) else v
            for k, v in self.headers.items()
        }


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_image_tokens: int = 0  # the input images of an edit (`input_tokens_details.image_tokens`)

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.input_text_tokens += other.input_text_tokens
        self.input_image_tokens += other.input_image_tokens


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

    def __repr__(self) -> str:
        """Short: the base64 text (megabytes) is counted, never shown, and a URL loses its query
        (a signed URL's signature is a credential for as long as it lives)."""
        shown = [f"index={self.index}"]
        if self.size:
            shown.append(f"size={self.size!r}")
        if self.b64_json is not None:
            shown.append(f"b64_json=<{len(self.b64_json):,} chars>")
        if self.url is not None:
            shown.append(f"url={self.url.split('?', 1)[0]!r}" + ("+query" if "?" in self.url else ""))
        if self.file is not None:
            shown.append(f"file={str(self.file)!r}")
        for key in ("seed", "cost_usd"):
            if getattr(self, key) is not None:
                shown.append(f"{key}={getattr(self, key)!r}")
        for key in ("revised_prompt", "text"):
            value = getattr(self, key)
            if value is not None:
                shown.append(f"{key}={_cut(value)!r}")
        return f"ImageData({', '.join(shown)})"

    def _repr_html_(self) -> str:
        """Jupyter shows an image as a thumbnail: its data (or its URL, for a URL result), scaled down."""
        import html

        src = self.url if self.url and self.b64_json is None and self.file is None else self.data_uri()
        title = html.escape(f"#{self.index} {self.size or ''}".strip(), quote=True)
        if src is None:
            return f"<span title='{title}'>(image {self.index}: not viewable)</span>"
        return (
            f"<img src='{html.escape(src, quote=True)}' title='{title}' alt='{title}' "
            f"style='max-width:{THUMBNAIL_PX}px;max-height:{THUMBNAIL_PX}px;margin:2px'>"
        )

    def data_uri(self) -> str | None:
        """The image as a `data:` URI (None for a URL result, or bytes that are not an image)."""
        from .output import sniff

        try:
            data = self.image_bytes()
        except (BadResponseError, OSError):
            return None
        kind = sniff(data[:16])
        return None if kind is None else f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"

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
    # An OpenAI-shaped provider's own answer fields besides `data` (usage with every detail,
    # background, output_format, quality, size, created), as it sent them; empty for other providers.
    upstream: dict[str, Any] = field(default_factory=dict, repr=False)

    def save(
        self,
        directory: str | Path = ".",
        *,
        name: str | None = None,
        overwrite: bool = False,
        metadata: bool = False,
        timeout: float = 600,
    ) -> list[Path]:
        """Write every image to `directory` (created if missing) and return the paths. Works inside a
        running event loop too (Jupyter): `await response.asave(...)` is the same without a thread."""
        from .output import save_response

        return save_response(self, Path(directory), name=name, overwrite=overwrite, metadata=metadata, timeout=timeout)

    async def asave(
        self,
        directory: str | Path = ".",
        *,
        name: str | None = None,
        overwrite: bool = False,
        metadata: bool = False,
        timeout: float = 600,
    ) -> list[Path]:
        """`save`, awaited: write every image to `directory` (created if missing) and return the paths."""
        from .output import asave_response

        return await asave_response(
            self, Path(directory), name=name, overwrite=overwrite, metadata=metadata, timeout=timeout
        )

    def __repr__(self) -> str:
        """One line: `<ImageResponse openai/gpt-image-1: 2 images 1024x1024, $0.084>`."""
        return f"<ImageResponse {self.model}: {self._summary()}>"

    def _summary(self) -> str:
        count = len(self.data)
        parts = [f"{count} image{'' if count == 1 else 's'}"]
        sizes = list(dict.fromkeys(image.size or self.parameters.get("size") or "" for image in self.data))
        if any(sizes):
            parts[0] += " " + ", ".join(size or "?" for size in sizes)
        parts.append("cost unknown" if self.cost_usd is None else _dollars(self.cost_usd))
        if self.errors:
            parts.append(f"{len(self.errors)} error{'' if len(self.errors) == 1 else 's'}")
        return ", ".join(parts)

    def _repr_html_(self) -> str:
        """Jupyter shows a response as its images, scaled down, under a one-line caption."""
        import html

        caption = html.escape(f"{self.model}: {self._summary()} — {_cut(self.prompt, 120)}")
        cells = [image._repr_html_() for image in self.data]
        errors = "".join(f"<div>error: {html.escape(str(error))}</div>" for error in self.errors)
        return f"<div><div>{caption}</div><div>{''.join(cells)}</div>{errors}</div>"


THUMBNAIL_PX = 256  # the longest side of a thumbnail in a notebook


def _dollars(value: float) -> str:
    return "$0" if not value else f"${value:.4f}".rstrip("0").rstrip(".")


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
