"""Azure OpenAI: the deployment route (or the v1 surface), `api-key` or an Entra ID bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, UsageError
from ..types import HttpRequest, ImageRequest
from .azure_spec import CHECK, SPEC
from .contract import Provider
from .openai_wire import OpenAIWire, bearer, build_body, build_form, join, parse_model_list

if TYPE_CHECKING:
    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport

DRY_RUN_BASE = "https://{resource}.openai.azure.com"
V1_VERSIONS = frozenset({"v1", "preview", "latest"})
MODELS_VERSION = "2024-10-21"  # the GA version that documents Models - List
BASE_HINT = "Set AZURE_API_BASE, or run: imggen config set azure api_base https://<resource>.openai.azure.com/"
KEY_HINT = SPEC.key_hint
# The first api-version whose deployment route serves `/images/edits` (older ones answer 404):
# MicrosoftDocs/azure-ai-docs articles/ai-foundry/openai/how-to/dall-e.md (the edit example's
# api-version); pollinations/pollinations#8239, Azure/azure-sdk-for-net#49697 (404 before it).
FIRST_EDIT_VERSION = "2025-04-01-preview"


def _url(settings: Resolved, deployment: str, version: str, dry_run: bool, operation: str) -> str:
    """`operation` is `images/generations` or `images/edits`: on the v1 surface
    (`{endpoint}/openai/v1/images/edits`, Microsoft Foundry REST reference "Images - Create an image
    edit multipart") or the deployment route (`…/openai/deployments/{d}/images/edits?api-version=`)."""
    base = settings.get("api_base")
    if base is None:
        base = DRY_RUN_BASE if dry_run else settings.require("api_base", "the Azure endpoint", BASE_HINT)
    base = str(base)
    if version in V1_VERSIONS:
        suffix = "" if version == "v1" else f"?api-version={version}"
        return join(base, f"openai/v1/{operation}") + suffix
    if "/openai/deployments/" in base:  # a full deployment URL was given as the base
        return join(base, operation) + f"?api-version={version}"
    return join(base, f"openai/deployments/{deployment}/{operation}") + f"?api-version={version}"


def _check_edit_version(version: str) -> None:
    """An edit on the deployment route needs api-version 2025-04-01-preview or later; an older one set
    by the user is exit 2 before sending (Azure would answer a bare 404), not silently replaced: the
    user chose that version for their resource, and a later one may not be deployed there."""
    if version in V1_VERSIONS or version[:10] >= FIRST_EDIT_VERSION[:10]:
        return
    raise UsageError(
        f"Azure image edits need api-version {FIRST_EDIT_VERSION} or later; {version} is set", param="api_version",
        hint=f"Pass --api-version {FIRST_EDIT_VERSION} (or v1), or unset AZURE_API_VERSION.",
    )  # fmt: skip


def _auth(settings: Resolved, dry_run: bool) -> dict[str, str]:
    key = settings.get("api_key")
    if key:
        return {"api-key": str(key)}
    token = settings.get("azure_ad_token")
    if token or dry_run:
        return bearer(token)
    settings.require("api_key", "the Azure API key", KEY_HINT)
    return {}


def _check(request: ImageRequest) -> None:
    if str(request.params.get("output_format", "")).lower() == "webp":
        error = UsageError(
            "Azure OpenAI does not return WebP images", hint="Use -p output_format=png or jpeg.", param="output_format"
        )
        error.wordings["proxy"] = (
            "Azure OpenAI deployments do not return WebP images",
            "Send 'output_format' png or jpeg.",
        )
        raise error


class AzureProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        _check(request)
        version = str(settings.get("api_version"))
        if request.images:
            return self._edit(request, settings, version, dry_run)
        url = _url(settings, request.model.model_id, version, dry_run, "images/generations")
        # The deployment route names the model in the path; a `model` in the body breaks gpt-image-2.
        body = build_body(request, include_model=version in V1_VERSIONS)
        if version in V1_VERSIONS:
            body["model"] = request.model.model_id
        headers = {"Content-Type": "application/json", **_auth(settings, dry_run)}
        return HttpRequest("POST", url, headers, body)

    def _edit(self, request: ImageRequest, settings: Resolved, version: str, dry_run: bool) -> HttpRequest:
        """The OpenAI edit form (openai_wire.build_form): `model` (the deployment) only on the v1
        surface, as for generations; `user`, as for generations."""
        _check_edit_version(version)
        url = _url(settings, request.model.model_id, version, dry_run, "images/edits")
        form, files = build_form(request, include_model=version in V1_VERSIONS)
        return HttpRequest.multipart("POST", url, _auth(settings, dry_run), form, files)

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return [models_request(settings, True)]

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """`GET {endpoint}/openai/models?api-version=2024-10-21` with `api-key` -> `{"data": [{"id",
        "lifecycle_status", "deprecation": {"inference": unix seconds}}]}`:
        https://learn.microsoft.com/rest/api/azureopenai/models/list"""
        from ..modelcheck import known_ids
        from . import response_json
        from .contract import error_mapper

        response = await transport.send(models_request(settings, False), error_mapper(self, settings))
        return parse_model_list(response_json(response, None, CHECK.label), known_ids(SPEC.name), listed)


def models_request(settings: Resolved, dry_run: bool) -> HttpRequest:
    base, key, token = settings.get("api_base"), settings.get("api_key"), settings.get("azure_ad_token")
    if not dry_run and not base:
        raise ConfigError("no Azure endpoint (AZURE_API_BASE)", hint=CHECK.hint)
    base = str(base).split("/openai/", 1)[0] if base else None  # a deployment URL given as the base
    if not dry_run and not (key or token):
        raise ConfigError("no Azure API key", hint=CHECK.hint)
    url = join(str(base or DRY_RUN_BASE), "openai/models") + f"?api-version={MODELS_VERSION}"
    return HttpRequest("GET", url, {"api-key": str(key)} if key else bearer(token))


def listed(model_id: str, item: dict[str, Any]) -> Listed:
    from ..modelcheck import Listed, date_of

    deprecation = item.get("deprecation")
    ends = date_of(deprecation.get("inference")) if isinstance(deprecation, dict) else None
    status = str(item.get("lifecycle_status") or "listed")
    words = status + (f", inference retires {ends}" if ends else "")
    legacy = status.lower().startswith("deprecat") or status.lower() == "legacy"
    return Listed(model_id, words, "legacy" if legacy else None, ends)


PROVIDER: Provider = AzureProvider()
