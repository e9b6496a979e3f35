"""OpenAI Images API, and any OpenAI-compatible server when an api_base is set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..types import HttpRequest, ImageRequest
from .contract import Provider
from .openai_spec import CHECK, SPEC
from .openai_wire import OpenAIWire, bearer, build_body, build_form, is_gpt_image, join, parse_model_list

if TYPE_CHECKING:
    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport

KEY_HINT = SPEC.key_hint
OPENAI_HOST = "api.openai.com"


def _key(settings: Resolved, dry_run: bool) -> str | None:
    if dry_run or settings.given("api_base"):  # an OpenAI-compatible server may need no key
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the OpenAI API key", KEY_HINT))


def _user_field(request: ImageRequest, url: str) -> str:
    """OpenAI's GPT image models take `safety_identifier` (openai 3.57.0 ImageGenerateParams: `user` is
    deprecated there, still accepted); dall-e and OpenAI-compatible servers know only `user`."""
    own_endpoint = urlsplit(url).hostname == OPENAI_HOST
    return "safety_identifier" if own_endpoint and is_gpt_image(request) else "user"


class OpenAIProvider(OpenAIWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """`POST {api_base}/images/generations` (JSON), or for an edit `POST {api_base}/images/edits`
        (multipart/form-data, openai_wire.build_form): OpenAI's own endpoint and OpenAI-compatible
        servers alike (openai 3.57.0 `resources/images.py`)."""
        key = bearer(_key(settings, dry_run))
        if request.images:
            url = join(settings.get("api_base"), "images/edits")
            form, files = build_form(request, user_field=_user_field(request, url))
            return HttpRequest.multipart("POST", url, key, form, files)
        url = join(settings.get("api_base"), "images/generations")
        headers = {"Content-Type": "application/json", **key}
        return HttpRequest("POST", url, headers, build_body(request, user_field=_user_field(request, url)))

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return [models_request(settings, True)]

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """`GET {api_base}/models` -> `{"data": [{"id", "created", "owned_by", "shutdown_date"?}]}`:
        openai 3.57.0 `resources/models.py`, `types/model.py`."""
        from ..modelcheck import known_ids
        from . import response_json
        from .contract import error_mapper

        response = await transport.send(models_request(settings, False), error_mapper(self, settings))
        return parse_model_list(response_json(response, None, CHECK.label), known_ids(SPEC.name), listed)


def models_request(settings: Resolved, dry_run: bool) -> HttpRequest:
    from ..errors import ConfigError

    key = settings.get("api_key")
    if not key and not dry_run and not settings.given("api_base"):
        raise ConfigError("no OpenAI API key", hint=CHECK.hint)
    return HttpRequest("GET", join(str(settings.get("api_base")), "models"), bearer(key))


def listed(model_id: str, item: dict[str, Any]) -> Listed:
    from ..modelcheck import Listed, date_of

    ends = date_of(item.get("shutdown_date"))
    return Listed(model_id, f"shuts down {ends}" if ends else "listed", "legacy" if ends else None, ends)


PROVIDER: Provider = OpenAIProvider()
