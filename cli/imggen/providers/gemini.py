"""The Gemini API (generativelanguage): image models with an API key sent in `x-goog-api-key`; a
prompt generates, a prompt with input images edits (google_wire.image_parts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..types import HttpRequest, ImageRequest
from . import google_wire
from .contract import Provider
from .gemini_spec import CHECK, SPEC

if TYPE_CHECKING:
    import httpx

    from ..errors import GenerationError
    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport

KEY_HINT = SPEC.key_hint
# The most inline data one request may carry: 100 MB, base64-encoded, since 2026-01-12 (20 MB before):
# "Increased file size limits and expanded inputs support in Gemini API", blog.google (developers-tools/
# gemini-api-new-file-limits). Each image is limited to 7 MiB by the catalog (the model cards' inline
# limit), so 14 large images can pass each check and still not fit: plan_notes refuses that before sending.
INLINE_LIMIT = 100_000_000
PAGE_SIZE = 1000  # models a page of the model list holds
MAX_PAGES = 50


class GeminiProvider(google_wire.GoogleWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the Gemini API key", KEY_HINT)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-goog-api-key"] = str(key)  # a header, never the URL: URLs end up in logs
        base = str(settings.get("api_base")).rstrip("/")
        url = f"{base}/models/{request.model.model_id}:{google_wire.method_of(request)}"
        return google_wire.build_http(url, headers, request)

    def auth_hint(self, settings: Resolved) -> str:
        return "Check the Gemini API key (imggen config explain shows which one was used)."

    def plan_notes(self, request: ImageRequest) -> list[str]:
        return google_wire.plan_notes(request, INLINE_LIMIT)

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return [models_request(settings, True)]

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """`GET {api_base}/models?pageSize=&pageToken=` with `x-goog-api-key` -> `{"models": [{"name":
        "models/ID"}], "nextPageToken"}`: google-genai 3.6.1 `models.py` (_ListModelsParameters,
        _ListModelsResponse)."""
        from . import response_json

        found: dict[str, Listed] = {}
        token: str | None = None
        for _ in range(MAX_PAGES):
            response = await transport.send(models_request(settings, False, token), _list_error)
            page, token = parse_model_page(response_json(response, None, "the Gemini API"))
            found.update(page)
            if token is None:
                break
        return found


def models_request(settings: Resolved, dry_run: bool, page_token: str | None = None) -> HttpRequest:
    from urllib.parse import urlencode

    from ..errors import ConfigError

    key = settings.get("api_key")
    if not key and not dry_run:
        raise ConfigError("no Gemini API key", hint=CHECK.hint)
    query = {"pageSize": PAGE_SIZE, **({"pageToken": page_token} if page_token else {})}
    url = f"{str(settings.get('api_base')).rstrip('/')}/models?{urlencode(query)}"
    return HttpRequest("GET", url, {"x-goog-api-key": str(key)} if key else {})


def parse_model_page(payload: Any) -> tuple[dict[str, Listed], str | None]:
    """One page of the model list (image models only: gemini-*-image*, imagen-*) and the next page's token."""
    from ..modelcheck import Listed, items, known_ids

    known = known_ids(SPEC.name)
    found: dict[str, Listed] = {}
    for item in items(payload, "models"):
        name = item.get("name")
        model_id = name.removeprefix("models/") if isinstance(name, str) else None
        if model_id and (model_id in known or "image" in model_id):
            found[model_id] = Listed(model_id)
    token = payload.get("nextPageToken") if isinstance(payload, dict) else None
    return found, token if isinstance(token, str) and token else None


def _list_error(response: httpx.Response) -> GenerationError:
    """Google's error mapping, with a rejected key (400 API_KEY_INVALID) as a credentials error."""
    from ..errors import AuthError
    from .contract import map_error

    hint = "Check the Gemini API key (imggen config explain -m gemini/… shows which one was used)."
    error = map_error(response, google_wire.error_fields(response, hint))
    if response.status_code == 400 and ("API_KEY_INVALID" in response.text or "API key not valid" in response.text):
        return AuthError(error.message, hint=hint, status=error.status, request_id=error.request_id, code=error.code)
    return error


PROVIDER: Provider = GeminiProvider()
