"""The Google half of the fake provider: an OAuth token endpoint that checks the signed JWT (or the
refresh token), Vertex AI `:predict` / `:generateContent`, and the Gemini API."""

from __future__ import annotations

import base64
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from google.auth import jwt

if TYPE_CHECKING:
    from fakeserver import FakeProvider, Recorded, Reply

GEMINI_KEY = "gemini-test-key-ABCDEFGHIJKL5678"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth signs for this, whatever token_uri is
REFRESH_TOKEN = "1//test-refresh-token-abcdefgh"
VERTEX_PATH = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(\w+)$")
GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):(\w+)$")


def google_error(reply: type[Reply], status: int, name: str, message: str, reason: str | None = None) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if reason:  # a google.rpc.ErrorInfo, as Google sends it (and a LocalizedMessage beside it)
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
        ]  # fmt: skip
    return reply(status=status, json={"error": error})


def token(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    form = dict(parse_qsl(req.body.decode()))
    if form.get("grant_type") == "refresh_token":
        if form.get("refresh_token") != REFRESH_TOKEN:
            return reply(400, {"error": "invalid_grant", "error_description": "Bad refresh token."})
    else:
        try:
            claims = jwt.decode(form.get("assertion", ""), certs=fake.google_public_pem, audience=GOOGLE_TOKEN_AUDIENCE)
        except ValueError as exc:
            return reply(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"})
        if "cloud-platform" not in str(claims.get("scope", "")):
            return reply(400, {"error": "invalid_scope", "error_description": "scope missing"})
    issued = f"ya29.test-token-{fake.next_id():04d}-secret"
    fake.google_tokens.append(issued)
    return reply(json={"access_token": issued, "expires_in": fake.token_lifetime, "token_type": "Bearer"})


def vertex(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    match = VERTEX_PATH.match(req.path)
    if not match:
        return google_error(reply, 404, "NOT_FOUND", f"no route {req.path}")
    auth = req.headers.get("authorization", "")
    if auth.removeprefix("Bearer ") not in fake.google_tokens:
        return google_error(reply, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    project, location, model, method = match.groups()
    fake.google_calls.append((project, location, model, method, auth.removeprefix("Bearer ")))
    return _answer(fake, reply, model, method, req.json)


def gemini_api(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    match = GEMINI_PATH.match(req.path)
    if not match:
        return google_error(reply, 404, "NOT_FOUND", f"no route {req.path}")
    if "key" in req.query or req.headers.get("x-goog-api-key") != GEMINI_KEY:
        message = "API key not valid. Please pass a valid API key."
        return google_error(reply, 400, "INVALID_ARGUMENT", message, reason="API_KEY_INVALID")
    model, method = match.groups()
    return _answer(fake, reply, model, method, req.json)


def _answer(fake: FakeProvider, reply: type[Reply], model: str, method: str, body: Any) -> Reply:
    b64 = base64.b64encode(fake.image_bytes).decode()
    if method == "predict":
        parameters = body["parameters"]
        if "seed" in parameters and parameters.get("addWatermark", True):
            return google_error(reply, 400, "INVALID_ARGUMENT", "Seed is not supported when watermark is enabled.")
        count = int(parameters.get("sampleCount", 1))
        return reply(json={"predictions": [{"bytesBase64Encoded": b64, "mimeType": "image/png"}] * count})
    count = int(body["generationConfig"].get("candidateCount", 1))
    parts = [{"text": "Here is your image."}, {"inlineData": {"mimeType": "image/png", "data": b64}}]
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}
    return reply(json={"candidates": [candidate] * count, "usageMetadata": usage, "modelVersion": model,
                       "createTime": time.time()})  # fmt: skip


def _key_rejected(reply: type[Reply]) -> Reply:
    """The Gemini API's answer to a wrong key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID."""
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]  # fmt: skip
    error = {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
             "details": details}  # fmt: skip
    return reply(status=400, json={"error": error})


def gemini_model_list(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    """`GET /v1beta/models?pageSize=&pageToken=`: pages of `models[]` and a `nextPageToken`."""
    if "key" in req.query or req.headers.get("x-goog-api-key") != GEMINI_KEY:
        return _key_rejected(reply)
    size = min(int(req.query.get("pageSize", 50)), fake.gemini_page_cap)
    start = int(req.query.get("pageToken") or 0)
    page: dict[str, Any] = {"models": fake.gemini_models[start : start + size]}
    if start + size < len(fake.gemini_models):
        page["nextPageToken"] = str(start + size)
    return reply(json=page)


def publisher_model(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    """`GET /v1beta1/publishers/google/models/{id}`: the PublisherModel, or 404."""
    if req.headers.get("authorization", "").removeprefix("Bearer ") not in fake.google_tokens:
        return google_error(reply, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    model = req.path.rsplit("/", 1)[1]
    found = fake.vertex_models.get(model)
    if found is None:
        return google_error(reply, 404, "NOT_FOUND", f"Publisher Model `publishers/google/models/{model}` not found.")
    return reply(json={"name": f"publishers/google/models/{model}", **found})
