"""The OpenAI Images wire format, shared by the openai and azure providers and the OpenAI look-alikes
(xai, recraft, together): pure functions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError, ContentFilterError, GenerationError, UsageError
from ..secrets import cut
from ..types import FilePart, HttpRequest, ImageData, ImageRequest, InputImage, Usage
from . import shape_guard
from .contract import ErrorFields, HttpProvider, ProviderResult

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from ..modelcheck import Listed
    from ..settings import Resolved

REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "x-ms-request-id")
FILTER_CODES = frozenset({"content_policy_violation", "contentFilter", "moderation_blocked"})
GPT_IMAGE_PREFIXES = ("gpt-image-", "chatgpt-image-")
SIZE = re.compile(r"[1-9][0-9]{0,5}x[1-9][0-9]{0,5}")


def build_body(request: ImageRequest, *, include_model: bool = True, user_field: str = "user") -> dict[str, Any]:
    """The JSON body; fields left as None are not sent, `-p` params are merged last. `--user` goes in
    `user_field`: `user` everywhere, `safety_identifier` where the provider has it instead."""
    body: dict[str, Any] = {"prompt": request.prompt}
    if include_model:
        body["model"] = request.model.model_id
    optional = {
        "n": request.n,
        "size": request.size,
        "quality": request.quality,
        "style": request.style,
        "response_format": request.response_format,
        user_field: request.user,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt is not None:
        body["negative_prompt"] = request.negative_prompt
    body.update(request.params)
    return body


# The edit's file fields (openai 3.57.0 resources/images.py `edit`: extract_files paths image,
# image.<array>, markup, mask): never text from -p.
FILE_FIELDS = frozenset({"image", "image[]", "mask", "markup"})


def build_form(
    request: ImageRequest, *, include_model: bool = True, user_field: str = "user"
) -> tuple[dict[str, str], list[tuple[str, FilePart]]]:
    """An edit (`POST /images/edits`) as the openai 3.57.0 SDK sends it (`resources/images.py` `edit`,
    `types/image_edit_params.py`, `_base_client._serialize_multipartform`, `_qs.stringify_items` with
    array_format "brackets"): multipart/form-data with `prompt`, `model`, `n`, `size`, `quality`,
    `input_fidelity`, `user`/`safety_identifier` and the -p params as text fields (numbers as `str()`,
    booleans `true`/`false`, an object flattened to `key[sub]` as the SDK does for `svg[model]`), one
    input image as the file `image`, several as repeated `image[]` (the SDK's list form), the mask as
    `mask`. A list value has no text-field form (the body would need a repeated text field): exit 2."""
    form: dict[str, str] = {"prompt": request.prompt}
    if include_model:
        form["model"] = request.model.model_id
    optional = {
        "n": request.n,
        "size": request.size,
        "quality": request.quality,
        "response_format": request.response_format,
        "input_fidelity": request.input_fidelity,
        user_field: request.user,
    }
    form.update({k: _form_text(k, v) for k, v in optional.items() if v is not None})
    for key, value in request.params.items():
        if key in FILE_FIELDS:
            raise UsageError(f"-p {key}: {key} is a file field of an edit", param="params",
                             hint="Give input images as IMAGE arguments and a mask with --mask.")  # fmt: skip
        form.update(_form_fields(key, value))
    name = "image" if len(request.images) == 1 else "image[]"
    files = [(name, image.part()) for image in request.images]
    if request.mask is not None:
        files.append(("mask", request.mask.part()))
    return form, files


def _form_fields(key: str, value: Any) -> dict[str, str]:
    """One -p param as multipart text fields: nothing for null, `key[sub]` for each key of an object."""
    if value is None:
        return {}
    if isinstance(value, dict):
        fields: dict[str, str] = {}
        for sub, item in value.items():
            fields.update(_form_fields(f"{key}[{sub}]", item))
        return fields
    return {key: _form_text(key, value)}


def _form_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        raise UsageError(f"-p {key}: a list cannot be sent as a multipart form field of an edit", param="params",
                         hint="Give it one value.")  # fmt: skip
    return str(value)


def is_gpt_image(request: ImageRequest) -> bool:
    """A GPT image model (not dall-e): by its catalog family, else by its id."""
    info = request.model.info
    if info is not None:
        return info.family == "gpt-image"
    return request.model.model_id.startswith(GPT_IMAGE_PREFIXES)


def request_id(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := response.headers.get(name):
            return str(value)
    return None


def _error_fields(response: httpx.Response) -> tuple[str, str | None]:
    """(message, code) from `{"error": {...}}`, or a short excerpt of a body that is not that."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip().replace("\n", " ")
        return (cut(text, 200) or response.reason_phrase or "no message"), None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "no message"), error.get("code") or error.get("type")
    raw_code = payload.get("code") if isinstance(payload, dict) else None
    code = str(raw_code) if isinstance(raw_code, (str, int)) and not isinstance(raw_code, bool) else None
    if isinstance(error, str):  # xAI: {"code": "...", "error": "Argument not supported: size"}
        return error, code
    message = payload.get("message") if isinstance(payload, dict) else None
    if isinstance(message, str) and message:  # {"code": ..., "message": ...} (Recraft's JSON errors)
        return message, code
    return cut(json.dumps(payload), 200), None


def error_fields(response: httpx.Response) -> ErrorFields:
    """OpenAI's `{"error": {"message", "code"}}`, with what to do next; a moderation code is a filter's refusal."""
    message, code = _error_fields(response)
    status = response.status_code
    filtered = code in FILTER_CODES
    return ErrorFields(
        message, code, request_id(response), auth_hint=_auth_hint(status),
        filter_hint="The provider's safety system refused it; rephrase the prompt." if filtered else None,
        hint=_status_hint(status),
    )  # fmt: skip


def _auth_hint(status: int) -> str:
    if status == 401:
        return "Check the API key (imggen config explain shows which one was used)."
    return "The key works but lacks access to this model or resource."


def _status_hint(status: int) -> str | None:
    if status == 429:
        return "Rate limited: lower -j or try again later."
    if status >= 500:
        return "The provider failed; try again later."
    if status == 404:
        return "Check the model or deployment name and the api_base."
    return None


def parse_images(request: ImageRequest, response: httpx.Response) -> ProviderResult:
    """Images out of an ImagesResponse; a 2xx without images is an error, not silence. An item of the
    wrong shape fails alone: the other images of the answer, already paid for, are kept."""
    rid = request_id(response)
    payload = _json_object(response, rid)
    if isinstance(payload.get("error"), dict):  # Azure may answer 200 with a content-filter error
        raise _filtered(payload["error"], response.status_code, rid)
    items = payload.get("data")
    if not isinstance(items, list) or not items:
        raise BadResponseError("the response holds no images", status=response.status_code, request_id=rid)
    images: list[ImageData] = []
    errors: list[GenerationError] = []
    size = _reported_size(payload.get("size")) or request.size
    with shape_guard("the provider", rid):
        for i, item in enumerate(items):
            try:
                images.append(_image(item, request, i, rid, size))
            except BadResponseError as exc:
                errors.append(exc)
    if not images:
        raise errors[0]
    fields = {k: v for k, v in payload.items() if k != "data"}
    return ProviderResult(images, _usage(payload.get("usage")), rid, errors, fields)


def _json_object(response: httpx.Response, rid: str | None) -> dict[str, Any]:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "unknown type")
        raise BadResponseError(
            f"the response is not JSON ({kind})",
            status=response.status_code,
            request_id=rid,
            hint="Is the api_base an OpenAI-compatible endpoint?",
        ) from None
    if not isinstance(payload, dict):
        raise BadResponseError("the response is not a JSON object", status=response.status_code, request_id=rid)
    return payload


def _filtered(error: dict[str, Any], status: int, rid: str | None) -> GenerationError:
    message = str(error.get("message") or "filtered")
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return ContentFilterError(f"{code}: {message}", status=status, request_id=rid, code=code)


def _reported_size(value: Any) -> str | None:
    """The `size` GPT image models echo (what `auto` became), when it is a WIDTHxHEIGHT string."""
    return value if isinstance(value, str) and SIZE.fullmatch(value) else None


def _image(item: Any, request: ImageRequest, offset: int, rid: str | None, size: str | None) -> ImageData:
    b64, url = (item.get("b64_json"), item.get("url")) if isinstance(item, dict) else (None, None)
    if not isinstance(item, dict) or not (b64 or url):
        raise BadResponseError(f"image {offset + 1} of the response has neither b64_json nor url", request_id=rid)
    for field, value in (("b64_json", b64), ("url", url)):
        if value is not None and not isinstance(value, str):
            raise BadResponseError(
                f"image {offset + 1} of the response has a {field} that is not a string", request_id=rid
            )
    fields: dict[str, Any] = {
        "url": url or None, "revised_prompt": _text(item.get("revised_prompt")), "seed": request.seed,
        "size": size, "index": request.first_index + offset, "request_id": rid,
    }  # fmt: skip
    if b64:
        return ImageData.from_b64(b64, **fields)
    return ImageData(**fields)


def _text(value: Any) -> str | None:
    """Optional text beside an image: one of another type is dropped, never the image for it."""
    return value if isinstance(value, str) else None


def _count(value: Any) -> int:
    """A token count: a whole number of 0 or more, else ValueError (the usage is then dropped)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(value)
    return value


def _usage(raw: Any) -> Usage | None:
    """Token counts, or None when any is not a count: the cost falls back to the catalog's estimate,
    and the images stay (a wrong usage is no reason to drop what was paid for)."""
    if not isinstance(raw, dict) or not raw.keys() & {"input_tokens", "output_tokens", "total_tokens"}:
        return None  # no token counts (xAI's usage holds only cost_in_usd_ticks)
    details = raw.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    try:
        return Usage(
            input_tokens=_count(raw.get("input_tokens")), output_tokens=_count(raw.get("output_tokens")),
            total_tokens=_count(raw.get("total_tokens")), input_text_tokens=_count(details.get("text_tokens")),
            input_image_tokens=_count(details.get("image_tokens")),
        )  # fmt: skip
    except ValueError:
        return None


class OpenAIWire(HttpProvider):
    """The send path of the OpenAI Images format: JSON answers with base64 images, spilled to disk."""

    spill = True

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        return error_fields(response)

    parse_response = staticmethod(parse_images)


@dataclass(frozen=True)
class DataUri:
    """An input image inside a JSON body as a `data:` URI (`data:image/png;base64,…`): how the OpenAI
    look-alikes take local images in JSON (see `inline_json`)."""

    image: InputImage


def inline_json(url: str, headers: dict[str, str], body: dict[str, Any]) -> HttpRequest:
    """`POST url` with a JSON body whose `DataUri` values are sent as data URIs and shown (--dry-run,
    -v) described, never printed: `HttpRequest.inline` with the URI's prefix."""

    def sent(value: Any) -> Any:
        if isinstance(value, DataUri):
            return f"data:{value.image.mime};base64,{value.image.b64()}"
        raise TypeError(f"{type(value).__name__} is not JSON")

    def shown(value: Any) -> Any:
        if isinstance(value, DataUri):
            return value.image.shown()
        raise TypeError(f"{type(value).__name__} is not JSON")

    content = json.dumps(body, separators=(",", ":"), default=sent).encode()
    headers = {"Content-Type": "application/json", **headers}
    return HttpRequest("POST", url, headers, json.loads(json.dumps(body, default=shown)), content=content)


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


# Model lists (`imggen models check`) hold chat, audio and embedding models too: only these count as image models.
IMAGE_FAMILIES = ("gpt-image-*", "dall-e-*", "chatgpt-image-*")


def parse_model_list(
    payload: Any, known: set[str], entry: Callable[[str, dict[str, Any]], Listed]
) -> dict[str, Listed]:
    """OpenAI's (and Azure's) `data[]`: image models only, each read by `entry`."""
    from fnmatch import fnmatchcase

    from ..modelcheck import items

    found: dict[str, Listed] = {}
    for item in items(payload, "data"):
        model_id = item.get("id")
        if not isinstance(model_id, str):
            continue
        if model_id in known or any(fnmatchcase(model_id, pattern) for pattern in IMAGE_FAMILIES):
            found[model_id] = entry(model_id, item)
    return found
