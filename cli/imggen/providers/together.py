"""Together AI's image API: OpenAI's images path with Together's own body (width and height, steps).

Wire facts, as of 2026-11-30:
- `POST {api_base}/images/generations`, JSON, `Authorization: Bearer` (together 3.1.1
  resources/images.py posts `/v1/images/generations` on https://api.together.ai; LiteLLM 1.110.2
  get_llm_provider_logic: TOGETHER_AI_API_BASE, default https://api.together.ai/v1, the key from
  TOGETHER_API_KEY, TOGETHER_AI_API_KEY or TOGETHERAI_API_KEY).
- Body (together 3.1.1 types/image_generate_params.py; https://docs.together.ai/reference/
  post-images-generations): `model`, `prompt`, `width`, `height` (pixels: imggen's `--size WxH` is
  sent as these two, never as `size`), `n`, `steps`, `seed`, `negative_prompt`, `response_format`
  (`base64` or `url`: imggen's `b64_json` is sent as `base64`), `output_format` (jpeg, png),
  `guidance_scale`, `image_url`, `reference_images`, `image_loras`, `disable_safety_checker`; the
  rest (-p) is merged as given.
- Edits go to the same endpoint: one input as `image_url` (FLUX.1 Kontext pro/max, FLUX.2 pro/flex),
  several as `reference_images` (FLUX.2): https://docs.together.ai/docs/inference/images/reference-images;
  a local file is sent as a data URI.
- Answer (together 3.1.1 types/image_file.py): `{"id", "model", "object": "list", "data": [{"index",
  "type": "b64_json" | "url", "b64_json" | "url"}]}`; imggen downloads a URL at once, with a
  User-Agent (Together's CDN refuses a blank one: https://docs.together.ai/docs/images-overview).
- Errors: OpenAI's `{"error": {"message", "type", "code"}}`, read by openai_wire.error_fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..types import HttpRequest, ImageRequest
from .contract import Provider
from .openai_wire import SIZE, DataUri, OpenAIWire, bearer, inline_json, join
from .together_spec import SPEC

if TYPE_CHECKING:
    from ..settings import Resolved

RESPONSE_FORMATS = {"b64_json": "base64", "url": "url"}  # imggen's (OpenAI's) names -> Together's


def _key(settings: Resolved, dry_run: bool) -> str | None:
    if dry_run:
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the Together AI API key", SPEC.key_hint))


def body(request: ImageRequest) -> dict[str, Any]:
    sent: dict[str, Any] = {"model": request.model.model_id, "prompt": request.prompt, "n": request.n}
    if request.size and SIZE.fullmatch(request.size):
        width, height = request.size.split("x")
        sent.update(width=int(width), height=int(height))
    optional = {
        "seed": request.seed, "negative_prompt": request.negative_prompt,
        "response_format": RESPONSE_FORMATS.get(request.response_format or "", request.response_format),
    }  # fmt: skip
    sent.update({k: v for k, v in optional.items() if v is not None})
    if len(request.images) == 1:
        sent["image_url"] = DataUri(request.images[0])
    elif request.images:
        sent["reference_images"] = [DataUri(image) for image in request.images]
    sent.update(request.params)
    return sent


class TogetherProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """`POST {api_base}/images/generations` for generations and edits alike (the inputs as data URIs)."""
        url = join(str(settings.get("api_base")), "images/generations")
        return inline_json(url, bearer(_key(settings, dry_run)), body(request))


PROVIDER: Provider = TogetherProvider()
