"""Input images of an edit: read from a path, bytes or a file object, recognised from their header
(format, pixel size, alpha) without an imaging library, and checked against what the model takes
before anything is sent (plan.py calls `check_edit`).

A file that is none of PNG, JPEG, WebP and GIF is kept as an opaque upload (format `unknown`): its name,
content type and bytes, sent as they are. Only a deployment on an OpenAI-compatible server of the user's
(an api_base that is not the provider's own endpoint) takes one: such a server may read formats imggen
cannot (and LiteLLM's proxy forwards uploads unread), so it decides; a known endpoint, whose rules imggen
knows, refuses it before anything is sent."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .errors import UsageError
from .types import UNKNOWN_FORMAT, InputImage

HEAD = 64 * 1024  # enough of a file to find its pixel size (a JPEG's frame header may follow its EXIF)
FORMATS = ("png", "jpeg", "webp", "gif")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # an image of a model that states no limit (OpenAI's own limit)
MAX_CACHED = 256  # input images kept by path: a batch editing one image reads it once
_cache: dict[tuple[str, int, int], InputImage] = {}

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def probe(head: bytes) -> tuple[str, int, int, bool] | None:
    """(format, width, height, alpha) from the first bytes of an image, or None when it is none of
    PNG, JPEG, WebP and GIF (or its header is cut short)."""
    try:
        if head.startswith(PNG_SIGNATURE):
            return _png(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(head)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return "gif", width, height, False
    except (struct.error, IndexError):
        return None
    return None


def _png(head: bytes) -> tuple[str, int, int, bool] | None:
    width, height, _depth, colour = struct.unpack(">IIBB", head[16:26])
    alpha = colour in (4, 6)
    at = 33  # after the IHDR chunk: a tRNS chunk before the first IDAT gives the image transparency
    while not alpha and at + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[at : at + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        alpha = kind == b"tRNS"
        at += 12 + length
    return "png", width, height, alpha


def _jpeg(head: bytes) -> tuple[str, int, int, bool] | None:
    at = 2
    while at + 9 < len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = struct.unpack(">H", head[at + 2 : at + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame header
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return "jpeg", width, height, False
        at += 2 + length
    return None


def _webp(head: bytes) -> tuple[str, int, int, bool] | None:
    kind = head[12:16]
    if kind == b"VP8X":
        flags = head[20]
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return "webp", width, height, bool(flags & 0x10)
    if kind == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF, False
    return None


def load(source: Any, label: str, *, base: Path | None = None, content_type: str | None = None) -> InputImage:
    """An input image from a path (relative to `base` when given), bytes or a binary file object;
    `label` names it in messages when it has no file name ("image 1", "mask"). Anything that is not
    a readable PNG, JPEG, WebP or GIF is an opaque upload (`InputImage.opaque`) with `content_type`
    (else the type its name suggests): `check_edit` refuses it unless the deployment takes one."""
    if isinstance(source, bytes | bytearray | memoryview):
        return _from_bytes(bytes(source), label, content_type)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _from_path(base / path if base is not None and not path.is_absolute() else path)
    read = getattr(source, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, bytes):
            raise UsageError(f"{label} is a text file object; open it in binary mode ('rb')")
        name = getattr(source, "name", None)
        return _from_bytes(data, Path(name).name if isinstance(name, str) else label, content_type)
    raise UsageError(f"{label} must be a path, bytes or a binary file object, not {type(source).__name__}")


def _from_bytes(data: bytes, name: str, content_type: str | None = None) -> InputImage:
    found = probe(data[:HEAD])
    if found is None:
        digest = hashlib.sha256(data).hexdigest()
        return InputImage(name, UNKNOWN_FORMAT, 0, 0, False, len(data), digest, data=data,
                          content_type=content_type or _guessed_type(name))  # fmt: skip
    fmt, width, height, alpha = found
    return InputImage(name, fmt, width, height, alpha, len(data), hashlib.sha256(data).hexdigest(), data=data)


def _from_path(path: Path) -> InputImage:
    try:
        stat = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read image {path}: {exc.strerror}", hint="Check the path.") from None
    if not path.is_file():
        raise UsageError(f"image {path} is not a file")
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD)
            digest.update(head)
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read image {path}: {exc.strerror}") from None
    found = probe(head)
    if found is None:
        image = InputImage(str(path), UNKNOWN_FORMAT, 0, 0, False, stat.st_size, digest.hexdigest(), path=path,
                           content_type=_guessed_type(path.name))  # fmt: skip
    else:
        fmt, width, height, alpha = found
        image = InputImage(path.name, fmt, width, height, alpha, stat.st_size, digest.hexdigest(), path=path)
    if len(_cache) >= MAX_CACHED:
        _cache.clear()
    _cache[key] = image
    return image


def _guessed_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _not_image(image: InputImage, param: str) -> UsageError:
    return UsageError(
        f"{image.name} is not a PNG, JPEG, WebP or GIF image",
        hint="Give an image file (only an OpenAI-compatible server, an api_base of your own, takes other files).",
        param=param,
    )


def read_checked(image: InputImage) -> bytes:
    """A file's bytes when a request is built: still the image that was checked (same hash)."""
    assert image.path is not None
    try:
        data = image.path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read image {image.path}: {exc.strerror}") from None
    if len(data) != image.size or hashlib.sha256(data).hexdigest() != image.sha256:
        raise UsageError(f"image {image.path} changed after it was checked", hint="Run the command again.")
    return data


def check_edit(
    model: str,
    rules: Mapping[str, Any] | None,
    images: tuple[InputImage, ...],
    mask: InputImage | None,
    mask_prompt: str | None,
    *,
    opaque_ok: bool = False,
) -> None:
    """What the model takes (its catalog `edit` rules; none for an id the catalog does not know):
    how many images, which formats, how large; a mask a PNG with alpha the size of the first image.
    An opaque upload (a file imggen cannot read) is refused unless `opaque_ok` (a deployment on an
    OpenAI-compatible server of the user's), and is then sent unchecked: the server decides."""
    rules = rules or {}
    if not images:
        raise UsageError("an edit needs at least one input image", hint="e.g. imggen edit \"add a hat\" otter.png",
                         param="images")  # fmt: skip
    most = int(rules.get("max_images", 16))
    if len(images) > most:
        raise UsageError(f"{model} takes at most {most} input image{'' if most == 1 else 's'}; {len(images)} given",
                         param="images")  # fmt: skip
    formats = tuple(rules.get("formats", FORMATS))
    limit = int(rules.get("max_bytes", DEFAULT_MAX_BYTES))
    for image in images:
        if image.opaque and not opaque_ok:
            raise _not_image(image, "images")
        if not image.opaque:
            _check_one(model, image, formats, limit)
    if mask is not None and mask_prompt is not None:
        raise UsageError("give --mask or --mask-prompt, not both", param="mask")
    if mask is not None and mask.opaque and not opaque_ok:
        raise _not_image(mask, "mask")
    if mask is not None:
        _check_mask(model, rules, mask, images[0])
    if mask_prompt is not None and rules and not rules.get("mask_prompt"):
        raise UsageError(f"{model} takes no --mask-prompt", hint=_mask_hint(rules), param="mask_prompt")


def _check_one(model: str, image: InputImage, formats: tuple[str, ...], limit: int) -> None:
    if image.format not in formats:
        shown = ", ".join("JPEG" if f == "jpeg" else f.upper() if f != "webp" else "WebP" for f in formats)
        raise UsageError(f"{image.name} is {image.format.upper()}; {model} takes {shown}", hint="Convert the image.",
                         param="images")  # fmt: skip
    if image.size > limit:
        raise UsageError(
            f"{image.name} is {image.size / 2**20:.1f} MiB; {model} takes images up to {limit / 2**20:g} MiB",
            hint="Make the image smaller.",
            param="images",
        )
    if not image.width or not image.height:
        raise UsageError(f"{image.name} has no pixels ({image.width}x{image.height})", param="images")


def _check_mask(model: str, rules: Mapping[str, Any], mask: InputImage, first: InputImage) -> None:
    if rules and not rules.get("mask"):
        raise UsageError(f"{model} takes no mask", hint=_mask_hint(rules), param="mask")
    if mask.opaque:  # sent unchecked (check_edit's opaque_ok): the server decides
        return
    if mask.format != "png" or not mask.alpha:
        raise UsageError(
            f"the mask {mask.name} must be a PNG with an alpha channel",
            hint="Transparent pixels mark what to change; save the mask as RGBA PNG.",
            param="mask",
        )
    if not first.opaque and (mask.width, mask.height) != (first.width, first.height):
        raise UsageError(
            f"the mask {mask.name} is {mask.width}x{mask.height}; "
            f"the image {first.name} is {first.width}x{first.height}",
            hint="The mask must be the size of the first image.",
            param="mask",
        )
    limit = int(rules.get("mask_bytes", rules.get("max_bytes", DEFAULT_MAX_BYTES)))
    if mask.size > limit:
        raise UsageError(f"the mask {mask.name} is {mask.size / 2**20:.1f} MiB; {model} takes masks up to "
                         f"{limit / 2**20:g} MiB", param="mask")  # fmt: skip


def _mask_hint(rules: Mapping[str, Any]) -> str:
    if rules.get("mask_prompt"):
        return "Use --mask-prompt to say what to change."
    if rules.get("mask"):
        return "Use --mask FILE."
    return "Say in the prompt what to change."
