"""Multipart requests (`/images/edits`, `/images/variations`) read as the `openai` client sends them.

openai 3.57.0 (`resources/images.py` `edit`/`create_variation`, `_files.py`, `_utils/_utils.py`
`extract_files`, `_base_client.py` `_serialize_multipartform`, `_qs.py`): files are parts with a file
name (one `image`, or `image[]` once per image when a list is given; `mask`); every other field is a
text part, its value as `str()` gives it (`true`/`false` for booleans; None is left out); lists are
`name[]` repeated and objects `name[key]` (`svg[model]`, `svg[reasoning][effort]`), with `extra_body`
merged in the same way. Numbers therefore arrive as text and are converted here, by the type
OpenAI's format gives each field, before the same checks as a JSON body (router.options_from).

The body is read through starlette's parser (python-multipart), counted as it arrives: refused (413)
by its Content-Length before anything is read, or as soon as a chunked body passes the limit; file
parts spool to disk beyond 1 MiB, so no more than the limit is ever held.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ..errors import UsageError
from ..inputs import load
from ..plan import MAX_N, Options
from ..types import InputImage
from .router import OPENAI_FIELDS, OPTION_TYPES, ProxyError, options_from
from .variations import VARIATION_FIELDS

MAX_FILES = 32  # OpenAI takes 16 images and a mask; a form with more file parts is refused while read
MAX_FIELDS = 128
MAX_NESTING = 8  # `svg[reasoning][effort]` is 3
INT_FIELDS = frozenset({"n"} | {key for key, kind in (OPTION_TYPES | OPENAI_FIELDS).items() if kind is int})
BOOL_FIELDS = frozenset({"stream"})
_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


@dataclass
class Upload:
    field: str  # the part's name: image, image[], mask
    filename: str
    content: bytes
    content_type: str | None


@dataclass
class Form:
    texts: list[tuple[str, str]] = field(default_factory=list)  # the text parts, in order
    files: list[Upload] = field(default_factory=list)

    def take(self, *names: str) -> list[Upload]:
        return [upload for upload in self.files if upload.field in names]

    def text(self, key: str) -> str | None:
        """A plain text field as it was sent (the last one, when repeated: `body` refuses that)."""
        found = [value for name, value in self.texts if name == key]
        return found[-1] if found else None

    @property
    def body(self) -> dict[str, Any]:
        """The text fields as a JSON body would give them: numbers and booleans converted by the
        field's type, `a[]` lists and `a[b]` objects; a malformed field is a 400 naming it."""
        body: dict[str, Any] = {}
        for name, value in self.texts:
            _put(body, name, value)
        return body


async def read_form(request: Request, limit: int) -> Form:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ProxyError(
            415, f"the request body must be multipart/form-data (as the openai client sends images), not "
            f"'{media_type[:60] or 'none'}'", code="unsupported_media_type",
        )  # fmt: skip
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=MAX_FILES, max_fields=MAX_FIELDS)
    try:
        parsed = await parser.parse()
    except MultiPartException as exc:
        raise ProxyError(400, f"the multipart body cannot be read: {exc.message}") from exc
    try:
        form = Form()
        for name, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                form.files.append(Upload(name, value.filename or "", content, value.content_type))
            else:
                form.texts.append((name, value))
    finally:
        await parsed.close()
    return form


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


def too_large(limit: int) -> ProxyError:
    return ProxyError(
        413, f"the upload is larger than {limit / 1024 / 1024:.4g} MiB (general_settings.max_upload_size_mb)",
        code="request_too_large",
    )  # fmt: skip


def _put(body: dict[str, Any], name: str, text: str) -> None:
    """A text part into the body: `a`, `a[]` (a list), `a[b][c]` (objects); top-level numbers and
    booleans converted by the field's type."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise ProxyError(400, f"the form field name {name[:60]!r} is not valid")
    keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    if len(keys) > MAX_NESTING or "" in keys[:-1]:
        raise ProxyError(400, f"the form field name {name[:60]!r} is not valid", param=keys[0])
    value: Any = _converted(keys[0], text) if len(keys) == 1 else text
    target = body
    for depth, key in enumerate(keys[:-1]):
        nxt = keys[depth + 1]
        current = target.setdefault(key, [] if nxt == "" else {})
        if not isinstance(current, list if nxt == "" else dict):
            raise ProxyError(400, f"the form field '{keys[0]}' is given in two shapes", param=keys[0])
        if isinstance(current, list):
            current.append(value)
            return
        target = current
    last = keys[-1]
    if last in target:
        raise ProxyError(400, f"the form field '{name[:60]}' is given more than once", param=keys[0])
    target[last] = value


def _converted(key: str, text: str) -> Any:
    if key in INT_FIELDS:
        stripped = text.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", stripped):
            raise ProxyError(400, f"'{key}' must be an integer, not {text[:40]!r}", param=key)
        return int(stripped)
    if key in BOOL_FIELDS:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ProxyError(400, f"'{key}' must be true or false, not {text[:40]!r}", param=key)
        return lowered == "true"
    return text


def edit_options(form: Form) -> Options:
    """An edit's options: the text fields as a generation's (options_from), the files as input images
    named by their part's file name, `input_fidelity` as the edit option it is."""
    given = form.body
    if "mask" in given or "image" in given:
        key = "mask" if "mask" in given else "image"
        raise ProxyError(400, f"'{key}' must be a file part (with a filename), not a text field", param=key)
    files = form.take("image", "image[]")
    if not files:
        raise ProxyError(400, "'image' is required: one file part 'image', or 'image[]' once per image", param="image")
    masks = form.take("mask")
    if len(masks) > 1:
        raise ProxyError(400, "give at most one 'mask'", param="mask")
    others = sorted({upload.field for upload in form.files} - {"image", "image[]", "mask"})
    if others:
        raise ProxyError(400, f"imggen serve does not take the file field '{others[0]}'",
                         code="unsupported_parameter", param=others[0])  # fmt: skip
    images = tuple(_image(upload, f"image {i}", "image") for i, upload in enumerate(files, 1))
    mask = _image(masks[0], "mask", "mask") if masks else None
    body = {k: v for k, v in given.items() if k not in ("prompt", "model")}
    options = options_from(body)
    params = dict(options.params)
    fidelity = params.pop("input_fidelity", None)
    return replace(options, images=images, mask=mask, input_fidelity=fidelity, params=params)


def variation_fields(form: Form) -> tuple[InputImage, str, dict[str, str]]:
    """A variation's image (its upload's file name kept) and its text fields, checked; sent on as text."""
    files = form.take("image")
    if len(files) != 1 or len(form.files) != 1:
        raise ProxyError(400, "a variation takes exactly one file part, 'image'", param="image")
    given = form.body
    unknown = sorted(set(given) - {"model", *VARIATION_FIELDS})
    if unknown:
        raise ProxyError(400, f"'{unknown[0]}' is not a field of /images/variations",
                         code="unsupported_parameter", param=unknown[0])  # fmt: skip
    n = given.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ProxyError(400, f"'n' must be an integer from 1 to {MAX_N}, not {n!r}", param="n")
    fields: dict[str, str] = {"n": str(n)} if "n" in given else {}
    for key in ("size", "response_format", "user"):
        value = given.get(key)
        if value is not None and not isinstance(value, str):
            raise ProxyError(400, f"'{key}' must be a string", param=key)
        if value is not None:
            fields[key] = value
    upload = files[0]
    return _image(upload, "image", "image"), upload.filename or "image.png", fields


def _image(upload: Upload, label: str, param: str) -> InputImage:
    """An uploaded image, recognised from its header; named by its file name (else `label`). One imggen
    cannot read is an opaque upload with the sender's content type, sent on as it came only to an
    OpenAI-compatible server (inputs.check_edit, variations.check): elsewhere a 400 before sending."""
    try:
        return load(upload.content, upload.filename or label, content_type=upload.content_type)
    except UsageError as exc:
        raise ProxyError(400, exc.text("proxy"), param=param) from exc
