"""The Gemini API (generativelanguage): image models with an API key sent in `x-goog-api-key`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..types import HttpRequest, ImageRequest
from . import Provider, ProviderResult, google_wire
from .gemini_spec import SPEC
from .vertex import PROVIDER as VERTEX

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved
    from ..transport import Transport

KEY_HINT = SPEC.key_hint


class GeminiProvider(Provider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the Gemini API key", KEY_HINT)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-goog-api-key"] = str(key)  # a header, never the URL: URLs end up in logs
        base = str(settings.get("api_base")).rstrip("/")
        url = f"{base}/models/{request.model.model_id}:{google_wire.method_of(request)}"
        body = google_wire.build_body(request)
        return HttpRequest("POST", url, headers, body, content=json.dumps(body).encode())

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        return VERTEX.parse_response(request, response)

    async def generate(self, request: ImageRequest, settings: Resolved, transport: Transport) -> ProviderResult:
        http = self.build_request(request, settings)
        hint = "Check the Gemini API key (imggen config explain shows which one was used)."
        response = await transport.send(http, lambda r: google_wire.map_error(r, hint))
        return self.parse_response(request, response)

    def plan_notes(self, request: ImageRequest) -> list[str]:
        return google_wire.plan_notes(request)


PROVIDER: Provider = GeminiProvider()
