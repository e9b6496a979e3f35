"""The Google half of the fake provider: an OAuth token endpoint that checks the signed JWT (or the
refresh token), Vertex AI `:predict` / `:generateContent`, and the Gemini API. `:generateContent`
bodies are checked as Google's JSON mapping of GenerateContentRequest takes them (camelCase or the
proto field names, no unknown fields), and an edit's image parts as the image models take them."""

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
# GenerateContentRequest's fields (REST: ai.google.dev/api/generate-content, Vertex AI
# projects.locations.publishers.models.generateContent), each as proto3 JSON takes it: the lowerCamel
# name or the field name.
REQUEST_FIELDS = {"contents", "generationConfig", "safetySettings", "systemInstruction", "tools", "toolConfig",
                  "cachedContent", "labels"}  # fmt: skip
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult"}  # fmt: skip
PART_EXTRA = {"thought", "thoughtSignature", "mediaResolution", "videoMetadata"}
BLOB_FIELDS = {"mimeType", "data", "displayName"}
# What the image models take inline (Vertex AI image-understanding table), by the bytes each starts with.
IMAGE_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",),
               "image/heic": (b"",), "image/heif": (b"",)}  # fmt: skip
MAX_IMAGES = {"gemini-2.5-flash-image": 3}  # Gemini 3 image models: 14
INLINE_FILE_LIMIT = 7 * 1024 * 1024  # each inline file (the image models' cards: 7 MB)


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
    return _checked(fake, req, reply, model, method)


def gemini_api(fake: FakeProvider, req: Recorded, reply: type[Reply]) -> Reply:
    match = GEMINI_PATH.match(req.path)
    if not match:
        return google_error(reply, 404, "NOT_FOUND", f"no route {req.path}")
    if "key" in req.query or req.headers.get("x-goog-api-key") != GEMINI_KEY:
        message = "API key not valid. Please pass a valid API key."
        return google_error(reply, 400, "INVALID_ARGUMENT", message, reason="API_KEY_INVALID")
    model, method = match.groups()
    return _checked(fake, req, reply, model, method)


def _checked(fake: FakeProvider, req: Recorded, reply: type[Reply], model: str, method: str) -> Reply:
    if not req.headers.get("content-type", "").startswith("application/json"):
        return google_error(reply, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected content type.")
    if not isinstance(req.json, dict):
        return google_error(reply, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    if method == "generateContent":
        problem = content_problem(req.json, model)
        if problem:
            return google_error(reply, 400, "INVALID_ARGUMENT", problem)
    return _answer(fake, reply, model, method, req.json)


def _field(name: str) -> str:
    """A proto3 JSON name as its lowerCamel form (`inline_data` -> `inlineData`)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _fields(obj: dict[str, Any], allowed: set[str], where: str) -> tuple[dict[str, Any], str | None]:
    """The object with lowerCamel keys, or why Google would refuse it (an unknown or repeated field)."""
    seen: dict[str, Any] = {}
    for key, value in obj.items():
        name = _field(key)
        if name not in allowed:
            return seen, f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
        if name in seen:
            return seen, f"Invalid JSON payload received. Duplicate field \"{key}\" at '{where}'."
        seen[name] = value
    return seen, None


def content_problem(body: dict[str, Any], model: str) -> str | None:
    """Why Google would answer 400 INVALID_ARGUMENT to this generateContent body, or None."""
    top, problem = _fields(body, REQUEST_FIELDS, "")
    if problem:
        return problem
    contents = top.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    images = 0
    for i, content in enumerate(contents):
        content, problem = _fields(content if isinstance(content, dict) else {}, {"role", "parts"}, f"contents[{i}]")
        if problem:
            return problem
        if content.get("role", "user") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}].role)"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            part, problem = _fields(part if isinstance(part, dict) else {}, PART_DATA | PART_EXTRA, where)
            if problem:
                return problem
            data = [k for k in part if k in PART_DATA]
            if len(data) != 1:
                oneof = "required oneof field 'data' must have one initialized field"
                return f"* GenerateContentRequest.{where}.data: {oneof}"
            if "text" in part and not isinstance(part["text"], str):
                return f"Invalid value at '{where}.text' (TYPE_STRING)"
            if "inlineData" in part:
                images += 1
                problem = blob_problem(part["inlineData"], f"{where}.inline_data")
                if problem:
                    return problem
    most = MAX_IMAGES.get(model, 14)
    if images > most:
        return f"Too many images in the request: {images}; {model} takes at most {most}."
    return None


def blob_problem(blob: Any, where: str) -> str | None:
    """An inline image as the image models take it: a known image MIME type, base64 data of that type."""
    blob, problem = _fields(blob if isinstance(blob, dict) else {}, BLOB_FIELDS, where)
    if problem:
        return problem
    mime, data = blob.get("mimeType"), blob.get("data")
    if not mime:
        return f"* GenerateContentRequest.{where}.mime_type: required field is not specified"
    if not isinstance(data, str) or not data:
        return f"* GenerateContentRequest.{where}.data: required field is not specified"
    if mime not in IMAGE_TYPES:
        return f"Unsupported MIME type: {mime}"
    try:  # proto3 JSON bytes: standard or URL-safe base64, padding optional
        raw = base64.b64decode(data.replace("-", "+").replace("_", "/") + "=" * (-len(data) % 4), validate=True)
    except ValueError:
        return f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for \"{data[:20]}...\""
    if len(raw) > INLINE_FILE_LIMIT:
        return f"Inline data at '{where}' exceeds the maximum size of {INLINE_FILE_LIMIT} bytes."
    if not raw.startswith(IMAGE_TYPES[mime]):
        return "Provided image is not valid."
    return None


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
    inputs = sum(_field(k) == "inlineData" for c in body["contents"] for p in c["parts"] for k in p)
    prompt = 5 + 560 * inputs  # Gemini 3 Pro Image counts 560 tokens an input image
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": 1290, "totalTokenCount": prompt + 1290}
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
