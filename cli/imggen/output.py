"""Writing images: file names, type sniffing, atomic writes, URL downloads and metadata sidecars."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import string
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadResponseError, GenerationError, NetworkError, OutputError, UsageError

if TYPE_CHECKING:
    from .transport import Transport
    from .types import ImageData, ImageResponse

NameFor = Callable[[str], str]  # extension -> file name
DEFAULT_NAME = "{date}-{prompt}-{index}.{ext}"
NAME_FIELDS = frozenset({"prompt", "model", "index", "date", "time", "seed", "ext"})
SLUG_MAX = 60


def sniff(head: bytes) -> str | None:
    """The image type from its first bytes: png, jpeg, webp or gif; None when it is not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}


def slugify(text: str, limit: int = SLUG_MAX) -> str:
    """A file-name-safe slug: ascii letters, digits and single hyphens; never empty, never a path."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "image"


def check_template(template: str) -> None:
    """Refuse a --name template with unknown fields or one that could leave the output directory."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise UsageError(f"--name '{template}' is not a valid template: {exc}") from exc
    unknown = names - NAME_FIELDS
    if unknown:
        fields = ", ".join("{" + f + "}" for f in sorted(NAME_FIELDS))
        raise UsageError(f"--name uses unknown field {{{sorted(unknown)[0]}}}", hint=f"Fields: {fields}.")
    if "/" in template or "\\" in template or template in (".", "..") or not template.strip():
        raise UsageError(f"--name '{template}' must be a file name, not a path", hint="Use -o for the directory.")


@dataclass
class Namer:
    """Renders --name for each image; date and time are fixed when the run starts."""

    template: str = DEFAULT_NAME
    model: str = ""
    started: dt.datetime = field(default_factory=dt.datetime.now)

    def render(self, prompt: str, index: int, seed: int | None, ext: str) -> str:
        values = {
            "prompt": slugify(prompt),
            "model": slugify(self.model),
            "index": index,
            "date": self.started.strftime("%Y-%m-%d"),
            "time": self.started.strftime("%H%M%S"),
            "seed": seed if seed is not None else "noseed",
            "ext": ext,
        }
        name = self.template.format(**values).strip()
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            name = f"{values['prompt']}-{index}.{ext}"
        return name


def prepare_directory(directory: Path) -> None:
    """Create the output directory now, so a bad -o is a usage error before anything is paid for."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {directory}: {exc.strerror}") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {directory} is not writable", hint="Pick another -o.")


class AtomicImage:
    """A temporary file in the target directory, renamed into place only once it is whole."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        fd, name = tempfile.mkstemp(prefix=".imggen-", suffix=".part", dir=directory)
        self.handle = os.fdopen(fd, "wb")
        self.tmp = Path(name)
        self.kind: str | None = None

    def write(self, chunk: bytes) -> None:
        if self.kind is None:
            self.kind = sniff(chunk[:16])
            if self.kind is None:
                raise BadResponseError(f"the result is not a PNG, JPEG, WebP or GIF image ({_describe(chunk)})")
        self.handle.write(chunk)

    def commit(self, name_for: NameFor, overwrite: bool) -> Path:
        """Close and rename to `name_for(ext)`; a taken name gets -2, -3, … unless overwrite."""
        if self.kind is None:
            raise BadResponseError("the result is empty")
        # No fsync: the rename already guarantees no partial file on Ctrl-C, and a sync per image
        # would serialise a batch on the disk (an image is cheap to make again; see --resume).
        self.handle.close()
        target = self.directory / name_for(EXTENSIONS[self.kind])
        if overwrite:
            os.replace(self.tmp, target)
            return target
        return _link_unique(self.tmp, target)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _describe(chunk: bytes) -> str:
    text = chunk[:60].decode("utf-8", "replace").strip()
    if text.lower().startswith(("<!doctype", "<html")):
        return "an HTML page"
    return f"starts with {chunk[:8]!r}" if chunk else "empty"


def _link_unique(tmp: Path, target: Path) -> Path:
    """Hard-link never replaces an existing file, so two writers cannot clobber each other."""
    stem, suffix = target.stem, target.suffix
    for attempt in range(1, 10_000):
        candidate: Path = target if attempt == 1 else target.with_name(f"{stem}-{attempt}{suffix}")
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue
        tmp.unlink()
        return candidate
    raise OutputError(f"no free file name near {target}")


def place_file(source: Path, directory: Path, name_for: NameFor, overwrite: bool) -> Path:
    """Move an image already decoded to disk (in the output directory's spill folder) into place."""
    with source.open("rb") as handle:
        kind = sniff(handle.read(16))
    if kind is None:
        source.unlink(missing_ok=True)
        raise BadResponseError("the result is not a PNG, JPEG, WebP or GIF image")
    target = directory / name_for(EXTENSIONS[kind])
    try:
        if overwrite:
            os.replace(source, target)
            return target
        return _link_unique(source, target)
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc


async def write_image(
    directory: Path, chunks: AsyncIterator[bytes] | Iterable[bytes], name_for: NameFor, overwrite: bool
) -> Path:
    image = AtomicImage(directory)
    try:
        if isinstance(chunks, AsyncIterator):
            async for chunk in chunks:
                image.write(chunk)
        else:
            for chunk in chunks:
                image.write(chunk)
        return image.commit(name_for, overwrite)
    except OSError as exc:
        raise OutputError(f"cannot write into {directory}: {exc.strerror}") from exc
    finally:
        image.discard()


async def _download(url: str, transport: Transport) -> AsyncIterator[bytes]:
    from .transport import body_chunks, image_too_large

    async with transport.stream(url) as response:
        if response.status_code >= 400:
            raise BadResponseError(
                f"downloading the image failed: HTTP {response.status_code}", status=response.status_code
            )
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/"):
            raise BadResponseError(f"the image URL returned {kind.split(';')[0]}, not an image", hint="Try again.")
        limit = transport.max_image
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise image_too_large(limit)  # said up front: not worth reading
        size = 0
        async for chunk in body_chunks(response):
            size += len(chunk)
            if size > limit:
                raise image_too_large(limit)
            yield chunk


async def save_image(
    image: ImageData, prompt: str, directory: Path, namer: Namer, overwrite: bool, transport: Transport
) -> Path:
    """Decode or download one image into `directory`; returns its path."""

    def name_for(ext: str) -> str:
        return namer.render(prompt, image.index, image.seed, ext)

    if image.file is not None:
        return place_file(image.file, directory, name_for, overwrite)
    if image.b64_json is not None:
        return await write_image(directory, [image.image_bytes()], name_for, overwrite)
    if image.url:
        return await _download_with_retries(image.url, directory, name_for, overwrite, transport)
    raise BadResponseError("the image has neither data nor a URL")


async def _download_with_retries(
    url: str, directory: Path, name_for: NameFor, overwrite: bool, transport: Transport
) -> Path:
    """Under the transport's retry loop; each attempt starts a fresh temporary file, so a broken stream
    never leaves half an image."""
    from .transport import deadline_error, retryable_status

    async def attempt() -> tuple[GenerationError | None, Any]:
        try:
            async with asyncio.timeout(transport.timeout):  # one deadline for the whole image, as for API calls
                return None, await write_image(directory, _download(url, transport), name_for, overwrite)
        except TimeoutError:
            return deadline_error(url, transport.timeout), None
        except NetworkError as exc:
            return exc, None
        except BadResponseError as exc:
            return exc, (None if exc.status and retryable_status(exc.status) else False)

    path = await transport.retrying(attempt)
    assert isinstance(path, Path)
    return path


def metadata_for(response: ImageResponse, image: ImageData) -> dict[str, Any]:
    return {
        "prompt": response.prompt,
        "revised_prompt": image.revised_prompt,
        "model": response.model,
        "parameters": response.parameters,
        "seed": image.seed,
        "size": image.size,
        "index": image.index,
        "created": response.created,
        "request_id": image.request_id,
        "url": image.url,
        "text": image.text,
        "cost_usd": image.cost_usd,
    }


def write_sidecar(path: Path, data: dict[str, Any]) -> Path:
    """`otter-1.png` → `otter-1.json`, written atomically."""
    target = path.with_suffix(".json")
    fd, tmp = tempfile.mkstemp(prefix=".imggen-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror}") from exc
    return target


def save_response(
    response: ImageResponse, directory: Path, *, name: str | None, overwrite: bool, metadata: bool, timeout: float
) -> list[Path]:
    """The synchronous `ImageResponse.save`: every image, in index order."""
    from .transport import Transport

    check_template(name or DEFAULT_NAME)
    prepare_directory(directory)
    namer = Namer(name or DEFAULT_NAME, response.model)

    async def run() -> list[Path]:
        async with Transport(timeout=timeout) as transport:
            paths = []
            for image in response.data:
                path = await save_image(image, response.prompt, directory, namer, overwrite, transport)
                if metadata:
                    write_sidecar(path, metadata_for(response, image))
                paths.append(path)
            return paths

    return asyncio.run(run())
