"""Bedrock request bodies and response parsers, one pair per model family (pure functions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import BadResponseError, ContentFilterError, GenerationError, UsageError
from ..types import ImageData, ImageRequest
from . import shape_guard

# Where a `-p` key belongs in a Titan / Nova Canvas body: it must not land at the top level.
TEXT_PARAMS = frozenset({"text", "negativeText", "conditionImage", "controlMode", "controlStrength", "style"})
CONFIG_PARAMS = frozenset({"numberOfImages", "quality", "width", "height", "cfgScale", "seed"})
TOP_PARAMS = frozenset({"taskType", "textToImageParams", "imageGenerationConfig", "colorGuidedGenerationParams"})


def family_of(request: ImageRequest) -> str:
    info = request.model.info
    if info is not None:
        return info.family
    model_id = request.model.model_id
    if "nova-canvas" in model_id:
        return "nova"
    if "titan-image" in model_id:
        return "titan"
    if "sd3" in model_id or "stable-image" in model_id:
        return "sd3"
    return "sdxl"


def _size(request: ImageRequest) -> dict[str, int]:
    if not request.size or "x" not in request.size:
        return {}
    width, height = request.size.split("x")
    return {"width": int(width), "height": int(height)}


def _sdxl(request: ImageRequest) -> dict[str, Any]:
    prompts: list[dict[str, Any]] = [{"text": request.prompt, "weight": 1.0}]
    if request.negative_prompt:
        prompts.append({"text": request.negative_prompt, "weight": -1.0})
    body: dict[str, Any] = {"text_prompts": prompts, **_size(request), "samples": 1}
    if request.seed is not None:
        body["seed"] = request.seed
    if request.style:
        body["style_preset"] = request.style
    return {**body, **request.params}


def _sd3(request: ImageRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": request.prompt, "mode": "text-to-image"}
    if request.aspect_ratio:
        body["aspect_ratio"] = request.aspect_ratio
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    return {**body, **request.params}


def _titan_nova(request: ImageRequest) -> dict[str, Any]:
    text: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        text["negativeText"] = request.negative_prompt
    config: dict[str, Any] = {"numberOfImages": request.n, **_size(request)}
    if request.quality:
        config["quality"] = request.quality
    if request.seed is not None:
        config["seed"] = request.seed
    body: dict[str, Any] = {"taskType": "TEXT_IMAGE", "textToImageParams": text, "imageGenerationConfig": config}
    for key, value in request.params.items():
        _place(body, key, value, request.model.name)
    return body


def _place(body: dict[str, Any], key: str, value: Any, model: str) -> None:
    if key in TEXT_PARAMS:
        body["textToImageParams"][key] = value
    elif key in CONFIG_PARAMS:
        body["imageGenerationConfig"][key] = value
    elif key in ("textToImageParams", "imageGenerationConfig") and isinstance(value, dict):
        body[key].update(value)
    elif key in TOP_PARAMS:
        body[key] = value
    else:
        known = ", ".join(sorted(TEXT_PARAMS | CONFIG_PARAMS | TOP_PARAMS))
        raise UsageError(f"-p {key} is not a {model} parameter", hint=f"Known: {known}.")


BUILDERS: dict[str, Callable[[ImageRequest], dict[str, Any]]] = {
    "sdxl": _sdxl,
    "sd3": _sd3,
    "titan": _titan_nova,
    "nova": _titan_nova,
}


def build_body(request: ImageRequest) -> dict[str, Any]:
    return BUILDERS[family_of(request)](request)


def _image(request: ImageRequest, offset: int, b64: Any, seed: Any, rid: str | None) -> ImageData:
    if not isinstance(b64, str) or not b64:
        raise BadResponseError(f"image {offset + 1} of Bedrock's response is empty or not a string", request_id=rid)
    return ImageData.from_b64(
        b64, seed=seed if isinstance(seed, int) else request.seed, size=request.size or request.aspect_ratio,
        index=request.first_index + offset, request_id=rid,
    )  # fmt: skip


def _list(payload: dict[str, Any], key: str, rid: str | None) -> list[Any]:
    """A list field of the answer: absent is empty, any other type is a bad response."""
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponseError(f"Bedrock's response has {key} that is not a list", request_id=rid)
    return value


# A parser's answer: the images Bedrock returned, and why the rest are missing (None: no reason given).
Parsed = tuple[list[ImageData], str | None]


def _parse_sdxl(request: ImageRequest, payload: dict[str, Any], rid: str | None) -> Parsed:
    images: list[ImageData] = []
    reasons: list[str] = []
    for offset, artifact in enumerate(_list(payload, "artifacts", rid)):
        if not isinstance(artifact, dict):
            raise BadResponseError(f"artifact {offset + 1} of Bedrock's response is not an object", request_id=rid)
        reason = artifact.get("finishReason")
        if reason not in (None, "SUCCESS"):
            reasons.append(f"finishReason {reason}")
            continue
        images.append(_image(request, len(images), artifact.get("base64"), artifact.get("seed"), rid))
    return _kept(images, reasons, rid)


def _parse_sd3(request: ImageRequest, payload: dict[str, Any], rid: str | None) -> Parsed:
    """`finish_reasons[i]` is null for a made image, else why image i was not (a filter, an error)."""
    reasons, b64s, seeds = (_list(payload, key, rid) for key in ("finish_reasons", "images", "seeds"))
    images: list[ImageData] = []
    why: list[str] = []
    for i in range(max(len(reasons), len(b64s))):
        reason = reasons[i] if i < len(reasons) else None
        if reason:
            why.append(str(reason))
        elif i < len(b64s):
            images.append(_image(request, len(images), b64s[i], seeds[i] if i < len(seeds) else None, rid))
    return _kept(images, why, rid)


def _parse_titan_nova(request: ImageRequest, payload: dict[str, Any], rid: str | None) -> Parsed:
    """`error` says why images are missing; those it returned beside it were made and paid for."""
    images = [_image(request, i, b64, None, rid) for i, b64 in enumerate(_list(payload, "images", rid))]
    error = payload.get("error")
    return _kept(images, [str(error)] if error else [], rid)


def _kept(images: list[ImageData], reasons: list[str], rid: str | None) -> Parsed:
    """The images, and the reasons for the others; with no image at all, the reasons are the error."""
    why = "; ".join(reasons) or None
    if why and not images:
        raise _missing_error(f"Bedrock returned no image: {why}", why, rid)
    return images, why


def _missing_error(message: str, why: str | None, rid: str | None) -> GenerationError:
    """A content filter's doing when the reason says so, or when Bedrock gave none (fewer images than
    asked is how its filters answer); any other reason is a bad response."""
    filtered = why is None or any(word in why.lower() for word in ("filter", "blocked"))
    if filtered:
        return ContentFilterError(
            message, hint="Bedrock's content filter withheld it; rephrase the prompt.", request_id=rid
        )
    return BadResponseError(message, request_id=rid)


PARSERS: dict[str, Callable[[ImageRequest, dict[str, Any], str | None], Parsed]] = {
    "sdxl": _parse_sdxl, "sd3": _parse_sd3, "titan": _parse_titan_nova, "nova": _parse_titan_nova,
}  # fmt: skip


def parse_body(request: ImageRequest, payload: Any, rid: str | None) -> Parsed:
    """Images out of a 200 answer, and why any are missing; one with no image, or fields of the wrong
    type, is an error."""
    if not isinstance(payload, dict):
        raise BadResponseError("Bedrock's response is not a JSON object", request_id=rid)
    with shape_guard("Bedrock", rid):
        images, why = PARSERS[family_of(request)](request, payload, rid)
    if not images:
        raise BadResponseError("Bedrock's response holds no image", request_id=rid)
    return images, why


def shortfall(
    request: ImageRequest, images: list[ImageData], why: str | None, rid: str | None
) -> list[GenerationError]:
    """One error per image asked for but not returned (the others are kept: they were paid for)."""
    missing = request.n - len(images)
    message = f"Bedrock returned {len(images)} of {request.n} images" + (f": {why}" if why else "")
    return [_missing_error(message, why, rid) for _ in range(missing)]
