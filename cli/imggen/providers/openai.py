"""OpenAI Images API, and any OpenAI-compatible server when an api_base is set."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..types import HttpRequest, ImageRequest
from . import Provider, ProviderResult
from .openai_spec import SPEC
from .openai_wire import bearer, build_body, is_gpt_image, join, parse_images, send_and_parse

if TYPE_CHECKING:
    from ..settings import Resolved
    from ..transport import Transport

KEY_HINT = SPEC.key_hint
OPENAI_HOST = "api.openai.com"


def _key(settings: Resolved, dry_run: bool) -> str | None:
    custom_base = settings.values["api_base"].source != "default"
    if dry_run or custom_base:  # an OpenAI-compatible server may need no key
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the OpenAI API key", KEY_HINT))


def _user_field(request: ImageRequest, url: str) -> str:
    """OpenAI's GPT image models take `safety_identifier` (openai 3.57.0 ImageGenerateParams: `user` is
    deprecated there, still accepted); dall-e and OpenAI-compatible servers know only `user`."""
    own_endpoint = urlsplit(url).hostname == OPENAI_HOST
    return "safety_identifier" if own_endpoint and is_gpt_image(request) else "user"


class OpenAIProvider(Provider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        headers = {"Content-Type": "application/json", **bearer(_key(settings, dry_run))}
        url = join(settings.get("api_base"), "images/generations")
        return HttpRequest("POST", url, headers, build_body(request, user_field=_user_field(request, url)))

    parse_response = staticmethod(parse_images)

    async def generate(self, request: ImageRequest, settings: Resolved, transport: Transport) -> ProviderResult:
        return await send_and_parse(self.build_request(request, settings), request, transport)


PROVIDER: Provider = OpenAIProvider()
