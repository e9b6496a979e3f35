"""The Gemini API (generativelanguage): image models with an API key sent in `x-goog-api-key`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..types import HttpRequest, ImageRequest
from . import google_wire

if TYPE_CHECKING:
    from ..settings import Resolved

KEY_HINT = "Set GEMINI_API_KEY, or run: imggen config set gemini api_key"


class GeminiProvider(google_wire.GoogleWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the Gemini API key", KEY_HINT)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-goog-api-key"] = str(key)  # a header, never the URL: URLs end up in logs
        base = str(settings.get("api_base")).rstrip("/")
        url = f"{base}/models/{request.model.model_id}:{google_wire.method_of(request)}"
        body = google_wire.build_body(request)
        return HttpRequest("POST", url, headers, body, content=json.dumps(body).encode())

    def auth_hint(self, settings: Resolved) -> str:
        return "Check the Gemini API key (imggen config explain shows which one was used)."


def plan_notes(request: ImageRequest) -> list[str]:
    return google_wire.plan_notes(request)


PROVIDER = GeminiProvider()
