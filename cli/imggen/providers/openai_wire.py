"""The OpenAI Images wire format, shared by the openai and azure providers (pure functions)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, BadResponseError, ContentFilterError, GenerationError, ProviderError
from ..secrets import cut
from ..types import ImageData, ImageRequest, Usage
from . import ProviderResult

if TYPE_CHECKING:
    import httpx

    from ..transport import Transport
    from ..types import HttpRequest

REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "x-ms-request-id")
FILTER_CODES = frozenset({"content_policy_violation", "contentFilter", "moderation_blocked"})


def build_body(request: ImageRequest, *, include_model: bool = True) -> dict[str, Any]:
    """The JSON body; fields left as None are not sent, `-p` params are merged last."""
    body: dict[str, Any] = {"prompt": request.prompt}
    if include_model:
        body["model"] = request.model.model_id
    optional = {
        "n": request.n,
        "size": request.size,
        "quality": request.quality,
        "style": request.style,
        "response_format": request.response_format,
        "user": request.user,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt is not None:
        body["negative_prompt"] = request.negative_prompt
    body.update(request.params)
    return body


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
    if isinstance(error, str):
        return error, None
    return cut(json.dumps(payload), 200), None


def map_error(response: httpx.Response) -> GenerationError:
    """One GenerationError for an error response, with the provider's message, code and request id."""
    message, code = _error_fields(response)
    status = response.status_code
    detail = f"{status} {code}: {message}" if code else f"{status}: {message}"
    kwargs: dict[str, Any] = {"status": status, "request_id": request_id(response), "code": code}
    if status in (401, 403):
        return AuthError(detail, hint=_auth_hint(status), **kwargs)
    if code in FILTER_CODES:
        return ContentFilterError(
            detail, hint="The provider's safety system refused it; rephrase the prompt.", **kwargs
        )
    return ProviderError(detail, hint=_status_hint(status), **kwargs)


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
    """Images out of an ImagesResponse; a 2xx without images is an error, not silence."""
    rid = request_id(response)
    payload = _json_object(response, rid)
    if isinstance(payload.get("error"), dict):  # Azure may answer 200 with a content-filter error
        raise _filtered(payload["error"], response.status_code, rid)
    items = payload.get("data")
    if not isinstance(items, list) or not items:
        raise BadResponseError("the response holds no images", status=response.status_code, request_id=rid)
    images = [_image(item, request, i, rid) for i, item in enumerate(items)]
    return ProviderResult(images, _usage(payload.get("usage")), rid)


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
    code = error.get("code")
    return ContentFilterError(f"{code}: {message}", status=status, request_id=rid, code=code)


def _image(item: Any, request: ImageRequest, offset: int, rid: str | None) -> ImageData:
    if not isinstance(item, dict) or not (item.get("b64_json") or item.get("url")):
        raise BadResponseError(f"image {offset + 1} of the response has neither b64_json nor url", request_id=rid)
    fields: dict[str, Any] = {
        "url": item.get("url"), "revised_prompt": item.get("revised_prompt"), "seed": request.seed,
        "size": request.size, "index": request.first_index + offset, "request_id": rid,
    }  # fmt: skip
    if item.get("b64_json"):
        return ImageData.from_b64(item["b64_json"], **fields)
    return ImageData(**fields)


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        total_tokens=int(raw.get("total_tokens") or 0),
        input_text_tokens=int(details.get("text_tokens") or 0),
    )


async def send_and_parse(build: HttpRequest, request: ImageRequest, transport: Transport) -> ProviderResult:
    response = await transport.send(build, map_error)
    return parse_images(request, response)


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")
