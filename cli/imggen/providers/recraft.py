"""Recraft's image API: OpenAI's images format with Recraft's styles, sizes and controls.

Wire facts, as of 2026-11-30:
- `POST {api_base}/v1/images/generations`, JSON, `Authorization: Bearer <token>`
  (https://www.recraft.ai/docs/api-reference/endpoints.md, agents.md; LiteLLM 1.110.2
  llms/recraft/image_generation/transformation.py: base https://external.api.recraft.ai).
- Body (Recraft's OpenAPI, external.api.recraft.ai/doc, as tryAGI/Recraft src/libs/Recraft/openapi.yaml
  carries it: GenerateImageRequest): `prompt`, `model`, `n` (1 to 6), `style`, `substyle`, `style_id`,
  `size` (`WxH` from the model's list, or `w:h`: docs appendix, "List of supported image sizes"),
  `response_format` (`url`, `b64_json`), `negative_prompt`, `random_seed` (uint32), `controls`
  (`colors`, `background_color` as `{"rgb": [r, g, b]}`, `artistic_level`, `no_text`), `text_layout`,
  `image_format` (png, webp), `block_nsfw`, `expire`; imggen sends what it plans and merges -p params.
- Edits: `POST {api_base}/v1/images/imageToImage` (ImageToImageRequest: `image`, `prompt`, `strength`
  in [0, 1], required, and the generation fields). Recraft takes it as JSON with the input as
  `image_url`, a URL or a data URL, so nested `controls` keep working (docs examples.md
  image_to_image_json.sh; agents.md rule 7); imggen sends strength 0.5 unless -p strength=….
- Output: models whose id ends in `_vector` and the vector styles (families `vector_illustration`,
  `icon`) answer SVG (docs models/overview.md, appendix "List of styles"): imggen saves raster images
  only, so it refuses them before sending, and an SVG in an answer is a clear error, not a broken file.
- Answer: `{"created", "credits", "data": [{"image_id", "url" | "b64_json", "revised_prompt"?}]}`;
  URLs are temporary, about 24 hours (agents.md rule 6): downloaded at once.
- Errors: 401 `text/plain` "request unauthorized", 404 `text/plain`, others JSON or text
  (https://www.recraft.ai/docs/api-reference/error-handling.md); read by openai_wire.error_fields.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import BadResponseError, UsageError
from ..types import HttpRequest, ImageRequest
from .contract import Provider, ProviderResult
from .openai_wire import DataUri, OpenAIWire, bearer, inline_json, join, parse_images
from .recraft_spec import SPEC

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved
    from ..types import ImageData

VECTOR_STYLES = frozenset({"vector_illustration", "icon"})  # the OpenAPI ImageStyle values that answer SVG
DEFAULT_STRENGTH = 0.5
RASTER_HINT = "Pick a raster model (e.g. recraft/recraftv4_1) and a raster style; imggen saves PNG, JPEG, WebP, GIF."


def _key(settings: Resolved, dry_run: bool) -> str | None:
    if dry_run:
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the Recraft API token", SPEC.key_hint))


def check_raster(request: ImageRequest) -> None:
    """A vector model or style answers SVG, which imggen does not save: exit 2 before paying for it."""
    name = request.model.name
    if request.model.model_id.endswith("_vector"):
        raise UsageError(f"{name} answers SVG (vector) images, which imggen does not save", param="model",
                         hint=RASTER_HINT)  # fmt: skip
    style = (request.style or "").strip().lower().replace(" ", "_")
    if style in VECTOR_STYLES:
        raise UsageError(f"Recraft's {request.style} style answers SVG (vector) images, which imggen does not save",
                         param="style", hint=RASTER_HINT)  # fmt: skip


def body(request: ImageRequest) -> dict[str, Any]:
    sent: dict[str, Any] = {"prompt": request.prompt, "model": request.model.model_id, "n": request.n}
    if request.images:
        sent["image_url"] = DataUri(request.images[0])
        sent["strength"] = DEFAULT_STRENGTH
    optional = {  # imageToImage takes no size (OpenAPI ImageToImageRequest): the input's is kept
        "size": None if request.images else request.size or request.aspect_ratio, "style": request.style,
        "response_format": request.response_format, "negative_prompt": request.negative_prompt,
        "random_seed": request.seed,
    }  # fmt: skip
    sent.update({k: v for k, v in optional.items() if v is not None})
    sent.update(request.params)
    return sent


class RecraftProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """`POST {api_base}/v1/images/generations`, or `/v1/images/imageToImage` for an edit (JSON,
        the input image as a data URL)."""
        check_raster(request)
        path = "v1/images/imageToImage" if request.images else "v1/images/generations"
        return inline_json(join(str(settings.get("api_base")), path), bearer(_key(settings, dry_run)), body(request))

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        result = parse_images(request, response)
        for image in result.images:
            if _is_svg(image):
                raise BadResponseError(
                    "Recraft answered an SVG (vector) image, which imggen does not save", hint=RASTER_HINT,
                    status=response.status_code, request_id=result.request_id,
                )  # fmt: skip
        return result

    def plan_notes(self, request: ImageRequest) -> list[str]:
        if request.images and "strength" not in request.params:
            return [
                f"Recraft image-to-image strength {DEFAULT_STRENGTH} (-p strength=0..1; 1 departs most from the input)"
            ]
        return []


def _is_svg(image: ImageData) -> bool:
    """An SVG by its URL's extension or its first bytes (`<svg`, `<?xml`)."""
    if image.url and urlsplit(image.url).path.lower().endswith(".svg"):
        return True
    if image.file is not None:
        with image.file.open("rb") as handle:
            head = handle.read(64)
    elif image.b64_json:
        try:
            head = base64.b64decode(image.b64_json[:88] + "=" * (-len(image.b64_json[:88]) % 4))
        except ValueError:
            return False
    else:
        return False
    return head.lstrip().lower().startswith((b"<svg", b"<?xml"))


PROVIDER: Provider = RecraftProvider()
