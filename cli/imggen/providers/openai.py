"""OpenAI Images API, and any OpenAI-compatible server when an api_base is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..types import HttpRequest, ImageRequest
from . import ProviderResult
from .openai_wire import bearer, build_body, join, parse_images, send_and_parse

if TYPE_CHECKING:
    from ..settings import Resolved
    from ..transport import Transport

KEY_HINT = "Set OPENAI_API_KEY, or run: imggen config set openai api_key"


def _key(settings: Resolved, dry_run: bool) -> str | None:
    custom_base = settings.values["api_base"].source != "default"
    if dry_run or custom_base:  # an OpenAI-compatible server may need no key
        key = settings.get("api_key")
        return str(key) if key else None
    return str(settings.require("api_key", "the OpenAI API key", KEY_HINT))


class OpenAIProvider:
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        headers = {"Content-Type": "application/json", **bearer(_key(settings, dry_run))}
        url = join(settings.get("api_base"), "images/generations")
        return HttpRequest("POST", url, headers, build_body(request))

    parse_response = staticmethod(parse_images)

    async def generate(self, request: ImageRequest, settings: Resolved, transport: Transport) -> ProviderResult:
        return await send_and_parse(self.build_request(request, settings), request, transport)


PROVIDER = OpenAIProvider()
