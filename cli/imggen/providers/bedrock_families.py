"""Bedrock request bodies and response parsers, one pair per model family (pure functions)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BadResponseError, ContentFilterError, GenerationError, UsageError
from ..types import ImageData, ImageRequest, Inline, InputImage
from . import shape_guard, with_common

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
    if service_of(model_id) is not None:
        return "stability-image-service"
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
    if request.images:
        return _sd3_image_to_image(request)
    body: dict[str, Any] = {"prompt": request.prompt, "mode": "text-to-image"}
    if request.aspect_ratio:
        body["aspect_ratio"] = request.aspect_ratio
    return with_common(body, request)


SD3_STRENGTH = 0.7  # imggen's default: Bedrock requires `strength` for image-to-image and names none


def _sd3_image_to_image(request: ImageRequest) -> dict[str, Any]:
    """SD3.5 Large's `mode: "image-to-image"`: `image` (base64 JPEG/PNG/WebP) and `strength` (0-1, how
    much of the input is replaced; required in this mode), `aspect_ratio` not taken (the output follows
    the input). AWS: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html
    ("image-to-image: requires prompt, image and strength"); aws-samples/stabilityai-sample-notebooks
    stability-ai-image-services-sample-notebook.ipynb (mode, strength)."""
    body: dict[str, Any] = {"prompt": request.prompt, "mode": "image-to-image", "image": Inline(request.images[0]),
                            "strength": SD3_STRENGTH}  # fmt: skip
    return with_common(body, request)


# Stability AI Image Services on Bedrock (InvokeModel; the body is JSON with base64 images, the answer
# `{"seeds", "finish_reasons", "images"}` as SD3's). Each service takes its own fields and refuses any
# other ("extraneous key ... is not permitted"). Sources: https://docs.aws.amazon.com/bedrock/latest/
# userguide/stable-image-services.html; the fields each service is sent with in aws-samples/
# stabilityai-sample-notebooks stability-ai-image-services/stability-ai-image-services-sample-notebook.ipynb
# (2025-10-31); Stability's API reference (https://platform.stability.ai/docs/api-reference) for the
# mask's meaning (black keeps, white changes; without a mask the image's alpha channel is used).
_COMMON = frozenset({"image", "prompt", "negative_prompt", "seed", "output_format"})


@dataclass(frozen=True)
class Service:
    fields: frozenset[str]  # every key of the body the service takes
    prompt: bool = True  # sends the prompt (erase, remove background and fast upscale take none)
    text_mask: str | None = None  # the field --mask-prompt fills (required by the service)
    images: tuple[str, ...] = ("image",)  # where the input images go, in order
    one_of: tuple[str, ...] = ()  # at least one of these must be given (-p)


SERVICES: dict[str, Service] = {
    "stable-image-inpaint": Service(_COMMON | {"mask", "grow_mask", "style_preset"}),
    "stable-image-erase-object": Service(frozenset({"image", "mask", "grow_mask", "seed", "output_format"}),
                                         prompt=False),
    "stable-image-search-replace": Service(_COMMON | {"search_prompt", "grow_mask", "style_preset"},
                                           text_mask="search_prompt"),
    "stable-image-search-recolor": Service(_COMMON | {"select_prompt", "grow_mask", "style_preset"},
                                           text_mask="select_prompt"),
    "stable-image-remove-background": Service(frozenset({"image", "output_format"}), prompt=False),
    "stable-outpaint": Service(frozenset({"image", "prompt", "left", "right", "up", "down", "creativity", "seed",
                                          "output_format", "style_preset"}), one_of=("left", "right", "up", "down")),
    "stable-image-control-sketch": Service(_COMMON | {"control_strength", "style_preset"}),
    "stable-image-control-structure": Service(_COMMON | {"control_strength", "style_preset"}),
    "stable-image-style-guide": Service(_COMMON | {"aspect_ratio", "fidelity", "style_preset"}),
    "stable-style-transfer": Service(
        frozenset({"init_image", "style_image", "prompt", "negative_prompt", "style_strength",
                   "composition_fidelity", "change_strength", "seed", "output_format"}),
        images=("init_image", "style_image"),
    ),
    "stable-creative-upscale": Service(_COMMON | {"creativity", "style_preset"}),
    "stable-conservative-upscale": Service(_COMMON | {"creativity"}),
    "stable-fast-upscale": Service(frozenset({"image", "output_format"}), prompt=False),
}  # fmt: skip
_SERVICE_ID = re.compile(r"(?:^|\.)stability\.([a-z0-9-]+?)-v\d+(?::\d+)?$")


def service_of(model_id: str) -> Service | None:
    """The image service a model id names (with or without an inference-profile prefix), or None."""
    match = _SERVICE_ID.search(model_id)
    return SERVICES.get(match.group(1)) if match else None


def _image_service(request: ImageRequest) -> dict[str, Any]:
    """One image service request: the input images where the service takes them, the mask (as the
    black-and-white image the service reads), --mask-prompt as its text mask, the prompt, seed and
    negative prompt where it takes them, and -p values it knows (any other is refused here, as
    Bedrock would)."""
    model = request.model.name
    service = service_of(request.model.model_id)
    if service is None:
        raise UsageError(f"{model} is not a Stability AI image service imggen knows")
    if len(request.images) != len(service.images):
        wanted = " and ".join(service.images)
        raise UsageError(f"{model} takes {len(service.images)} input image{'s' if len(service.images) > 1 else ''} "
                         f"({wanted}); {len(request.images)} given")  # fmt: skip
    body: dict[str, Any] = {key: Inline(image) for key, image in zip(service.images, request.images, strict=True)}
    if service.prompt and request.prompt:
        body["prompt"] = request.prompt
    if request.mask is not None:
        body["mask"] = Inline(service_mask(request.mask))
    if service.text_mask and request.mask_prompt:
        body[service.text_mask] = request.mask_prompt
    if request.seed is not None and "seed" in service.fields:
        body["seed"] = request.seed
    if request.negative_prompt and "negative_prompt" in service.fields:
        body["negative_prompt"] = request.negative_prompt
    unknown = sorted(set(request.params) - service.fields)
    if unknown:
        known = ", ".join(sorted(service.fields - {"image", "mask", "prompt", *service.images}))
        raise UsageError(f"-p {unknown[0]} is not a {model} parameter", hint=f"Known: {known}.")
    body.update(request.params)
    if service.text_mask and not body.get(service.text_mask):
        raise UsageError(f"{model} needs --mask-prompt: what in the image to change",
                         hint=f"e.g. --mask-prompt \"the sweater\" (sent as {service.text_mask}).")  # fmt: skip
    if service.one_of and not any(body.get(key) for key in service.one_of):
        raise UsageError(
            f"{model} needs how far to extend the image",
            hint="Give one or more of -p left=N, -p right=N, -p up=N, -p down=N (pixels, up to 2000).",
        )
    return body


_MASKS: dict[str, InputImage] = {}


def service_mask(mask: InputImage) -> InputImage:
    """imggen's mask (a PNG whose transparent pixels mark what to change) as the image Stability's
    services read: greyscale, white where the mask is transparent (full change), black where it is
    opaque (kept), grey in between (255 - alpha). A PNG of another kind (palette, 16-bit, interlaced)
    is a usage error."""
    if mask.sha256 in _MASKS:
        return _MASKS[mask.sha256]
    from .placeholder_png import decode_png, encode_png

    decoded = decode_png(mask.read())
    if decoded is None or decoded[2] not in (2, 4):
        raise UsageError(
            f"the mask {mask.name} must be an 8-bit RGBA or grey-and-alpha PNG for this model",
            hint="Save the mask as an 8-bit RGBA PNG (transparent pixels mark what to change).",
        )
    width, height, channels, rows = decoded
    grey = [bytearray(255 - row[x] for x in range(channels - 1, len(row), channels)) for row in rows]
    data = encode_png(width, height, 1, grey)
    converted = InputImage(f"{mask.name} (as a white-on-black mask)", "png", width, height, False, len(data),
                           hashlib.sha256(data).hexdigest(), data=data)  # fmt: skip
    if len(_MASKS) >= 64:
        _MASKS.clear()
    _MASKS[mask.sha256] = converted
    return converted


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
# The image services' catalog families (one builder: the service is read from the model id).
SERVICE_FAMILIES = ("stability-mask", "stability-image", "stability-control", "stability-style-transfer",
                    "stability-image-service")  # fmt: skip
BUILDERS.update(dict.fromkeys(SERVICE_FAMILIES, _image_service))


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
    **dict.fromkeys(SERVICE_FAMILIES, _parse_sd3),
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
