"""Google's image wire formats, shared by vertex_ai and gemini (pure functions): Imagen `:predict`
and Gemini `:generateContent` bodies (a prompt, or a prompt and input images: an edit), their parsers,
and Google's error envelope."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError, ContentFilterError, GenerationError, UsageError
from ..secrets import cut
from ..types import HttpRequest, ImageData, ImageRequest, Inline, Usage
from . import as_dict, response_json, shape_guard
from .contract import ErrorFields, HttpProvider, ProviderResult

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

# Gemini's finishReason / promptFeedback.blockReason values that mean Google's filters withheld the
# image, with what to do next (google-genai 3.6.1 types.FinishReason and types.BlockedReason).
REPHRASE = "rephrase the prompt."
FILTER_HINTS = {
    "SAFETY": f"Google's safety filter blocked it; {REPHRASE}",
    "IMAGE_SAFETY": f"Google's safety filter blocked the image; {REPHRASE}",
    "PROHIBITED_CONTENT": f"Google found prohibited content; {REPHRASE}",
    "IMAGE_PROHIBITED_CONTENT": f"Google found prohibited content in the image; {REPHRASE}",
    "RECITATION": "The output was too close to existing material (recitation); ask for something more original.",
    "IMAGE_RECITATION": "The image was too close to existing material (recitation); ask for something more original.",
    "BLOCKLIST": f"A term from a blocklist matched; {REPHRASE}",
    "SPII": "Sensitive personal information was found; leave it out of the prompt.",
    "MODEL_ARMOR": "The project's Model Armor policy blocked it.",
    "ESCALATION": "An escalation rule filtered it.",
    "JAILBREAK": f"The prompt was taken for a jailbreak attempt; {REPHRASE}",
    "PUP_LIMITED_DISABLED": "The account is limited or disabled for Prohibited Use Policy violations.",
}
FILTER_REASONS = frozenset(FILTER_HINTS)
FILTER_HINT = f"Google's filters blocked it; {REPHRASE}"
# google.rpc.ErrorInfo reasons (google/api/error_reason.proto) that say the key or token was refused,
# whatever the status: the Gemini API answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
REFUSED_KEY_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
    "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "ACCESS_TOKEN_TYPE_UNSUPPORTED",
})  # fmt: skip


def family_of(request: ImageRequest) -> str:
    info = request.model.info
    if info is not None:
        return info.family
    return "gemini" if "gemini" in request.model.model_id else "imagen"


def method_of(request: ImageRequest) -> str:
    return "generateContent" if family_of(request) == "gemini" else "predict"


def imagen_body(request: ImageRequest) -> dict[str, Any]:
    parameters: dict[str, Any] = {"sampleCount": request.n}
    if request.aspect_ratio:
        parameters["aspectRatio"] = request.aspect_ratio
    if request.image_size:
        parameters["sampleImageSize"] = request.image_size
    if request.negative_prompt:
        parameters["negativePrompt"] = request.negative_prompt
    if request.seed is not None:
        parameters["seed"] = request.seed
        parameters["addWatermark"] = False  # Imagen refuses a seed together with its default watermark
    parameters.update(request.params)
    return {"instances": [{"prompt": request.prompt}], "parameters": parameters}


def gemini_body(request: ImageRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"], "candidateCount": request.n}
    image_config = {k: v for k, v in (("aspectRatio", request.aspect_ratio), ("imageSize", request.image_size)) if v}
    if image_config:
        config["imageConfig"] = image_config
    if request.seed is not None:
        config["seed"] = request.seed
    config.update(request.params)
    parts = [*image_parts(request), {"text": request.prompt}]
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def image_parts(request: ImageRequest) -> list[dict[str, Any]]:
    """An edit's input images, one `Part` each, in the order given, all before the prompt's text part.

    Wire: `Part.inlineData` is a `Blob` `{"mimeType": "image/png", "data": "<base64>"}` (REST references:
    ai.google.dev/api/caching#Blob and Vertex AI `Content`/`Part`; google-genai 3.6.1 `models.py`
    `_Part_to_mldev` / `_Part_to_vertex` map `inline_data` to `inlineData`, and its `types.Blob` holds
    `data` bytes and `mime_type`, sent as base64 text). Proto3 JSON takes the camelCase names the REST
    reference shows as well as the field names the SDK sends (`mime_type`); we send the REST spelling.
    `data` is standard base64 (proto3 JSON accepts standard and URL-safe). MIME types the image models
    take: image/png, image/jpeg, image/webp (and heic/heif, which imggen does not probe): the Vertex AI
    image-understanding table (docs.cloud.google.com/vertex-ai/generative-ai/docs/multimodal/
    image-understanding).

    Order: images first, then the text. Google's image-understanding advice is to place the text prompt
    after the image part (ai.google.dev/gemini-api/docs/image-understanding, "Tips and best practices"),
    and Vertex AI's "Edit images with Gemini" sample sends `contents=[image, "Edit this image ..."]`
    (docs.cloud.google.com/vertex-ai/generative-ai/docs/multimodal/gemini-edit-images). With several
    images, the prompt can name them by position ("the first image", "the second")."""
    return [{"inlineData": {"mimeType": image.mime, "data": Inline(image)}} for image in request.images]


def build_body(request: ImageRequest) -> dict[str, Any]:
    return gemini_body(request) if family_of(request) == "gemini" else imagen_body(request)


def build_http(url: str, headers: dict[str, str], request: ImageRequest) -> HttpRequest:
    """The POST of a request: an edit's body holds its images as `Inline` values (sent as base64,
    shown described in --dry-run and -v: HttpRequest.inline)."""
    body = build_body(request)
    if request.images:
        return HttpRequest.inline("POST", url, headers, body)
    return HttpRequest("POST", url, headers, body, content=json.dumps(body).encode())


def plan_notes(request: ImageRequest, inline_limit: int | None = None) -> list[str]:
    """What the plan says before sending, and the edits Google would refuse, refused here first (the
    plan runs before anything is sent: exit 2). `inline_limit`: the most bytes of inline data one
    request may carry (None: no limit below what the per-image limits allow)."""
    if request.images or request.mask is not None or request.mask_prompt is not None:
        return check_edit(request, inline_limit)
    if family_of(request) == "imagen" and request.seed is not None and "addWatermark" not in request.params:
        return [f"{request.model.name}: --seed sets addWatermark to false (Imagen refuses a seed with its watermark)"]
    return []


def check_edit(request: ImageRequest, inline_limit: int | None) -> list[str]:
    """What the catalog's edit rules cannot say (they cover the models it knows; these checks cover
    any id): Imagen does not edit, Gemini takes no mask, and the inline data must fit one request."""
    name = request.model.name
    if family_of(request) == "imagen":
        raise UsageError(
            f"{name} cannot edit images: Imagen's editing API was shut down with Imagen (2026-08-17)",
            hint="Gemini image models edit: imggen models --task edit.", param="model",
        )  # fmt: skip
    if request.mask is not None or request.mask_prompt is not None:
        raise UsageError(f"{name} takes no mask", hint="Say in the prompt what to change.")
    sent = inline_bytes(request)
    if inline_limit is not None and sent > inline_limit:
        raise UsageError(
            f"the {len(request.images)} input images come to {sent / 1e6:.1f} MB as base64; {name} takes "
            f"at most {inline_limit / 1e6:g} MB of inline data in one request",
            hint="Send fewer or smaller images (e.g. JPEG instead of PNG).",
        )
    notes = []
    if request.input_fidelity is not None:
        notes.append(f"{name} has no input fidelity field: --input-fidelity not sent")
    return notes


def inline_bytes(request: ImageRequest) -> int:
    """About how large an edit's body is: each image as base64 (4 bytes per 3), the prompt, and the
    JSON around them (a generous kilobyte), without reading or encoding any image."""
    return sum(4 * ((image.size + 2) // 3) for image in request.images) + len(request.prompt.encode()) + 1024


def _image(request: ImageRequest, offset: int, b64: str, rid: str | None, text: str | None = None) -> ImageData:
    return ImageData.from_b64(
        b64, seed=request.seed, size=request.aspect_ratio or request.size, index=request.first_index + offset,
        request_id=rid, text=text,
    )  # fmt: skip


def _list(value: Any, what: str, rid: str | None) -> list[Any]:
    """A list field of the answer: absent is empty, any other type is a bad response."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponseError(f"Google's response has {what} that is not a list", request_id=rid)
    return value


def parse_imagen(
    request: ImageRequest, payload: dict[str, Any], rid: str | None
) -> tuple[list[ImageData], list[GenerationError]]:
    images: list[ImageData] = []
    reasons: list[str] = []  # why the provider left images out (its safety filter)
    broken: list[str] = []  # predictions of a shape no image can come from
    for number, prediction in enumerate(_list(payload.get("predictions"), "predictions", rid), 1):
        b64 = prediction.get("bytesBase64Encoded") if isinstance(prediction, dict) else None
        if isinstance(b64, str) and b64:
            images.append(_image(request, len(images), b64, rid))
        elif not isinstance(prediction, dict) or b64:
            broken.append(f"prediction {number} is not an image")
        elif prediction.get("raiFilteredReason"):
            reasons.append(str(prediction["raiFilteredReason"]))
    missing = request.n - len(images)
    if missing <= 0:
        return images, []
    why = "; ".join(broken + reasons) or "fewer predictions than asked, the rest filtered"
    kind = BadResponseError if broken else ContentFilterError
    return images, [kind(f"Imagen returned {len(images)} of {request.n} images: {why}", request_id=rid)]


def parse_gemini(
    request: ImageRequest, payload: dict[str, Any], rid: str | None
) -> tuple[list[ImageData], list[GenerationError]]:
    blocked = as_dict(payload.get("promptFeedback")).get("blockReason")
    if blocked:
        raise ContentFilterError(
            f"Gemini blocked the prompt (blockReason {blocked})",
            hint=filter_hint(blocked),
            request_id=rid,
            code=str(blocked).upper(),
        )
    images: list[ImageData] = []
    errors: list[GenerationError] = []
    for candidate in _list(payload.get("candidates"), "candidates", rid):
        if not isinstance(candidate, dict):
            errors.append(BadResponseError("a candidate in Gemini's response is not an object", request_id=rid))
            continue
        parts = [p for p in _list(as_dict(candidate.get("content")).get("parts"), "parts", rid) if isinstance(p, dict)]
        texts = [p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")]
        found = [as_dict(p.get("inlineData") or p.get("inline_data")) for p in parts]
        found = [data for data in found if data]
        for data in found:
            b64 = data.get("data")
            if not isinstance(b64, str) or not b64:
                errors.append(BadResponseError("an image in Gemini's response has no data string", request_id=rid))
                continue
            images.append(_image(request, len(images), b64, rid, "\n".join(texts) or None))
        if not found:
            errors.append(_no_image(candidate.get("finishReason"), texts, rid))
    if not images and errors:
        raise errors[0]
    if not images:
        raise BadResponseError("Gemini's response holds no candidates", request_id=rid)
    return images, errors


def _no_image(reason: Any, texts: list[str], rid: str | None) -> GenerationError:
    said = f' It said: "{cut(" ".join(texts), 200)}"' if texts else ""
    if isinstance(reason, str) and reason.upper() in FILTER_REASONS:
        message = f"Gemini returned no image (finishReason {reason}).{said}"
        return ContentFilterError(message, hint=filter_hint(reason), request_id=rid, code=reason.upper())
    return BadResponseError(f"Gemini returned no image (finishReason {reason or 'none'}).{said}", request_id=rid)


def filter_hint(reason: Any) -> str:
    return FILTER_HINTS.get(str(reason).upper(), FILTER_HINT)


def parse(
    request: ImageRequest, payload: Any, rid: str | None
) -> tuple[list[ImageData], list[GenerationError], Usage | None]:
    if not isinstance(payload, dict):
        raise BadResponseError("Google's response is not a JSON object", request_id=rid)
    with shape_guard("Google", rid):
        if family_of(request) == "gemini":
            images, errors = parse_gemini(request, payload, rid)
        else:
            images, errors = parse_imagen(request, payload, rid)
            if not images:
                raise errors[0]
    return images, errors, _usage(payload.get("usageMetadata"))


def _usage(raw: Any) -> Usage | None:
    """Token counts, or None when any is not a count (the cost is then the catalog's estimate)."""
    if not isinstance(raw, dict):
        return None
    counts = [raw.get(k) or 0 for k in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return None
    return Usage(input_tokens=counts[0], output_tokens=counts[1], total_tokens=counts[2])


def error_fields(response: httpx.Response, auth_hint: str) -> ErrorFields:
    """Google's `{"error": {"code", "message", "status"}}`: a refused key is refused whatever the status."""
    try:
        error = as_dict(as_dict(response.json()).get("error"))
    except ValueError:
        error = {}
    message = str(error.get("message") or cut(response.text.strip(), 200) or response.reason_phrase)
    status_name = str(error.get("status") or "")
    refused = status_name in ("PERMISSION_DENIED", "UNAUTHENTICATED") or _refused_key(error)
    hint = "Rate limited or out of quota: lower -j or try later." if response.status_code == 429 else None
    rid = response.headers.get("x-request-id")
    return ErrorFields(message, status_name or None, rid, refused=refused, auth_hint=auth_hint, hint=hint)


class GoogleWire(HttpProvider):
    """The send path both Google providers share: JSON answers with base64 images, spilled to disk."""

    spill = True

    def auth_hint(self, settings: Resolved) -> str:
        raise NotImplementedError

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        return error_fields(response, self.auth_hint(settings))

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        rid = response.headers.get("x-request-id")
        images, errors, usage = parse(request, response_json(response, rid, "Google"), rid)
        return ProviderResult(images, usage, rid, errors)


def _refused_key(error: dict[str, Any]) -> bool:
    """`details[]` holds a google.rpc.ErrorInfo whose reason says the key or token was refused."""
    details = error.get("details")
    if not isinstance(details, list):
        return False
    return any(as_dict(detail).get("reason") in REFUSED_KEY_REASONS for detail in details)
