"""Azure AI Foundry's image models, `azure_ai/<deployment>` as LiteLLM names them: three routes on one
Foundry resource, each answering OpenAI's `{"data": [{"b64_json"}]}` (parsed by openai_wire).

Microsoft's pages (MicrosoftDocs/azure-ai-docs articles/foundry/foundry-models/includes/
use-foundry-models-flux.md, 2026-03-23, and use-foundry-models-mai.md, 2026-09-04) and LiteLLM 1.110.2
(litellm/llms/azure/azure.py `create_azure_base_url`, litellm/llms/azure_ai/image_generation/
flux_transformation.py and mai_transformation.py, litellm/images/main.py's azure_ai branch) agree on:

- the Image API for FLUX-1.1-pro and FLUX.1-Kontext-pro: the Azure OpenAI deployment route
  `{endpoint}/openai/deployments/{deployment}/images/generations?api-version=preview` (Kontext also
  `/images/edits`, multipart), the OpenAI body without `model`, `api-key: KEY`;
- the BFL provider route for FLUX.2: `{endpoint}/providers/blackforestlabs/v1/{flux-2-pro|flux-2-flex}
  ?api-version=preview`, a JSON body with `model`, `prompt`, `width`, `height`, `num_images`, `seed`,
  `output_format` and BFL's own fields (`guidance`, `steps`, `safety_tolerance`), reference images as
  base64 `input_image`, `input_image_2`, …; Microsoft's examples send `Authorization: Bearer KEY`;
- the MAI route: `{endpoint}/mai/v1/images/generations` (edits: `/mai/v1/images/edits`, multipart with
  one `image`), a body with `model` (the deployment), `prompt`, `width`, `height`; one PNG per request;
  `api-key: KEY`.

An Entra ID token goes as `Authorization: Bearer TOKEN` on every route (scope
https://cognitiveservices.azure.com/.default, the same pages). Which route an id takes: its catalog
family, else LiteLLM's rule on the name (`get_azure_ai_image_generation_config`: "maiimage" in it is
MAI, "flux-2"/"flux2" is FLUX.2, anything else the Image API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..types import HttpRequest, ImageRequest, Inline
from .azure_ai_spec import KEY_HINT
from .contract import Provider
from .openai_wire import OpenAIWire, bearer, build_body, build_form, join

if TYPE_CHECKING:
    from ..settings import Resolved

DRY_RUN_BASE = "https://{resource}.services.ai.azure.com"
BASE_HINT = (
    "Set AZURE_AI_API_BASE, or run: imggen config set azure_ai api_base https://<resource>.services.ai.azure.com"
)
IMAGE_API, BFL, MAI = "image-api", "bfl", "mai"
ROUTES = {"flux-image-api": IMAGE_API, "flux-2": BFL, "mai-image": MAI}  # catalog family -> route


def route(request: ImageRequest) -> str:
    """The route of a model: its catalog family's (a listed id or a `families` pattern), else LiteLLM's
    rule on the deployment name (litellm/llms/azure_ai/image_generation/__init__.py and
    flux_transformation.py `is_flux2_model`)."""
    info = request.model.info
    if info is not None and info.family in ROUTES:
        return ROUTES[info.family]
    name = request.model.model_id.lower().replace("_", "-").replace(".", "-")
    if "maiimage" in name.replace("-", ""):
        return MAI
    if "flux-2" in name or "flux2" in name:
        return BFL
    return IMAGE_API


def bfl_path(model_id: str) -> str:
    """The BFL route's model path (Microsoft's table: FLUX.2 [flex] `flux-2-flex`, FLUX.2 [pro]
    `flux-2-pro`); any other FLUX.2 deployment name goes to `flux-2-pro`, as LiteLLM's
    `get_flux2_provider_model_path` does."""
    name = model_id.lower().replace(".", "-").replace("_", "-")
    return "flux-2-flex" if "flux-2-flex" in name else "flux-2-pro"


def _base(settings: Resolved, dry_run: bool) -> str:
    base = settings.get("api_base")
    if base is None:
        return DRY_RUN_BASE if dry_run else str(settings.require("api_base", "the Foundry endpoint", BASE_HINT))
    return str(base).rstrip("/")


def _url(request: ImageRequest, settings: Resolved, kind: str, edit: bool, dry_run: bool) -> str:
    """The route's URL. An api_base that already names the route (`…/providers/…`, `…/mai/…`,
    `…/openai/deployments/…`, as LiteLLM accepts) is kept and only the operation is put on it."""
    base, version = _base(settings, dry_run), str(settings.get("api_version") or "preview")
    operation = "images/edits" if edit else "images/generations"
    if kind == MAI:
        root = base.split("/mai/", 1)[0]
        return join(root, f"mai/v1/{operation}")
    if kind == BFL:
        if "/providers/" in base:
            return base if "?" in base else f"{base}?api-version={version}"
        return (
            join(base, f"providers/blackforestlabs/v1/{bfl_path(request.model.model_id)}") + f"?api-version={version}"
        )
    if "/openai/deployments/" in base:  # a full deployment URL was given as the base
        return join(base.split("?", 1)[0].removesuffix("/images/generations"), operation) + f"?api-version={version}"
    return join(base, f"openai/deployments/{request.model.model_id}/{operation}") + f"?api-version={version}"


def _auth(settings: Resolved, kind: str, dry_run: bool) -> dict[str, str]:
    key, token = settings.get("api_key"), settings.get("azure_ad_token")
    if key:
        return bearer(str(key)) if kind == BFL else {"api-key": str(key)}
    if token or dry_run:
        return bearer(token)
    settings.require("api_key", "the Azure AI API key", KEY_HINT)
    return {}


def _dimensions(request: ImageRequest) -> dict[str, int]:
    """`size` WxH as the `width` and `height` the BFL and MAI routes take (checked against the catalog's
    size rule before this)."""
    if not request.size or "x" not in request.size:
        return {}
    width, height = request.size.split("x", 1)
    return {"width": int(width), "height": int(height)}


def _bfl_body(request: ImageRequest) -> dict[str, Any]:
    """Microsoft's FLUX.2 examples: `model`, `prompt`, `width`, `height`, `output_format`, `num_images`
    (LiteLLM maps `n` to it), `seed`; reference images as `input_image`, `input_image_2`, … (base64)."""
    body: dict[str, Any] = {"model": request.model.model_id, "prompt": request.prompt, **_dimensions(request)}
    if request.n is not None:
        body["num_images"] = request.n
    if request.seed is not None:
        body["seed"] = request.seed
    for i, image in enumerate(request.images):
        body["input_image" if i == 0 else f"input_image_{i + 1}"] = Inline(image)
    body.update(request.params)
    return body


def _mai_body(request: ImageRequest) -> dict[str, Any]:
    """Microsoft's MAI request parameters: `model` (the deployment), `prompt`, `width`, `height`; no
    count (one image a request, the catalog's max_n)."""
    body: dict[str, Any] = {"model": request.model.model_id, "prompt": request.prompt, **_dimensions(request)}
    body.update(request.params)
    return body


class AzureAIProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        kind = route(request)
        edit = bool(request.images)
        url = _url(request, settings, kind, edit, dry_run)
        auth = _auth(settings, kind, dry_run)
        if kind == BFL:
            return HttpRequest.inline("POST", url, {"Content-Type": "application/json", **auth}, _bfl_body(request))
        if kind == MAI:
            if edit:  # multipart: `prompt`, `model`, one `image` (JPEG or PNG)
                form = {"prompt": request.prompt, "model": request.model.model_id}
                form.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in request.params.items()})
                return HttpRequest.multipart("POST", url, auth, form, [("image", request.images[0].part())])
            return HttpRequest("POST", url, {"Content-Type": "application/json", **auth}, _mai_body(request))
        if edit:  # FLUX.1 Kontext's `/images/edits`: the OpenAI edit form, the deployment in the path
            if request.mask is not None:
                raise UsageError("FLUX on Azure AI Foundry takes no mask", param="mask", hint="Leave out --mask.")
            form, files = build_form(request, include_model=False)
            return HttpRequest.multipart("POST", url, auth, form, files)
        # The deployment route names the model in the path (no `model` in the body, as LiteLLM's
        # azure_deployment_image_generation_json_body drops it).
        return HttpRequest(
            "POST", url, {"Content-Type": "application/json", **auth}, build_body(request, include_model=False)
        )


PROVIDER: Provider = AzureAIProvider()
