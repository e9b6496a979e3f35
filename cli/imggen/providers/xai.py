"""xAI's image API (Grok Imagine): OpenAI's images format with xAI's own fields.

Wire facts, as of 2026-11-30:
- `POST {api_base}/images/generations`, JSON, `Authorization: Bearer` (https://docs.x.ai/developers/
  model-capabilities/images.md, its curl example; LiteLLM 1.110.2 treats xai as an OpenAI-compatible
  provider, constants.XAI_API_BASE = https://api.x.ai/v1).
- Body: `model`, `prompt`, `n` (1 to 10), `response_format` (`url`, the default, or `b64_json`),
  `aspect_ratio` (1:1, 3:4, 4:3, 9:16, 16:9, 2:3, 3:2, 9:19.5, 19.5:9, 9:20, 20:9, 1:2, 2:1, auto),
  `resolution` (`1k`, `2k`), `quality` (`low`, `medium`: grok-imagine-image-2.0 only), `user`: xai-sdk
  1.21.0 types/image.py and image.py `_make_generate_request` (the same request over gRPC); no `size`
  or `style` ("Argument not supported: size": docs.crazyrouter.com/en/images/grok, a peer).
- Edits: `POST {api_base}/images/edits`, JSON only (the OpenAI SDK's multipart edit is refused), the
  input as `image: {"url", "type": "image_url"}` with a public URL or a base64 data URI, several as
  `images: [...]` (up to 3; grok-imagine-image-2.0 up to 5): docs.x.ai images.md (Image Editing, curl),
  model-capabilities/images/multi-image-editing, migration/imagine-image-quality-nov-2.
- Answer: OpenAI's `data[]` (`url` or `b64_json`, with `mime_type`) and `usage.cost_in_usd_ticks`
  (https://docs.x.ai/developers/cost-tracking as LiteLLM 1.110.2 llms/xai/common_utils.py reads it);
  result URLs are temporary (docs.x.ai images.md, Limitations): imggen downloads them at once.
- Errors: `{"code": "...", "error": "..."}` (read by openai_wire.error_fields); a refusal of the
  moderation ("Content moderation: images are subject to content policy review", images.md) is a
  content-filter error here when its text names moderation or the content policy (its exact code is
  not documented).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..types import HttpRequest, ImageRequest
from .contract import ErrorFields, Provider
from .openai_wire import DataUri, OpenAIWire, bearer, error_fields, inline_json, join
from .xai_spec import SPEC

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

FILTER_WORDS = ("moderation", "content policy", "content_policy", "safety")
FILTER_HINT = "xAI's content moderation refused it; rephrase the prompt."


def _key(settings: Resolved, dry_run: bool) -> str | None:
    if dry_run:
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the xAI API key", SPEC.key_hint))


def body(request: ImageRequest) -> dict[str, Any]:
    """The fields xAI takes (see the module docstring): imggen's size choice is an aspect ratio and a
    resolution (`image_size`, "1k"/"2k"), never `size`."""
    if request.size and request.size != "auto" and request.aspect_ratio is None:
        raise UsageError(
            f"{request.model.name} takes aspect ratios, not pixel sizes", param="size",
            hint="Pass --aspect-ratio (1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3, 2:1, 1:2, …).",
        )  # fmt: skip
    sent: dict[str, Any] = {"model": request.model.model_id, "prompt": request.prompt, "n": request.n}
    optional = {
        "aspect_ratio": request.aspect_ratio, "resolution": request.image_size.lower() if request.image_size else None,
        "quality": request.quality, "response_format": request.response_format, "user": request.user,
    }  # fmt: skip
    sent.update({k: v for k, v in optional.items() if v is not None})
    if request.images:
        parts = [{"url": DataUri(image), "type": "image_url"} for image in request.images]
        if len(parts) == 1:
            sent["image"] = parts[0]
        else:
            sent["images"] = parts
    sent.update(request.params)
    return sent


class XaiProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """`POST {api_base}/images/generations`, or `/images/edits` with the inputs as data URIs."""
        path = "images/edits" if request.images else "images/generations"
        return inline_json(join(str(settings.get("api_base")), path), bearer(_key(settings, dry_run)), body(request))

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        fields = error_fields(response)
        text = f"{fields.code or ''} {fields.message}".lower()
        if fields.filter_hint is None and response.status_code == 400 and any(w in text for w in FILTER_WORDS):
            fields.filter_hint = FILTER_HINT
        return fields


PROVIDER: Provider = XaiProvider()
