"""fal's queue API: submit, poll the status, fetch the result; any fal model id passes through.

Wire facts (fal docs, "Inference API" and "Queue" pages; fal-client 1.0.3 `client.py`, `auth.py`):
- `POST https://queue.fal.run/<model-id>` with `Authorization: Key <key>` and the model's input as JSON
  answers `{"request_id", "status_url", "response_url", "cancel_url"}` (`AsyncClient.submit`).
- `GET status_url` answers 202 `{"status": "IN_QUEUE", "queue_position"}` or `{"status": "IN_PROGRESS"}`,
  and 200 `{"status": "COMPLETED"}` (`_BaseRequestHandle._parse_status`).
- `GET response_url` answers the model's output, or the model's error with its status; fal keeps it for
  1 hour after completion (6 minutes when 10 KB or larger): docs "Get request result".
- `PUT cancel_url` cancels (`AsyncRequestHandle.cancel`).
- Status, result and cancel URLs use only the model's owner and app (`fal-ai/flux`, not `fal-ai/flux/dev`):
  `AsyncRequestHandle.from_request_id`, which is how a job is collected from its id alone (resume).
- Image models answer `{"images": [{"url", "width", "height", "content_type"}], "seed",
  "has_nsfw_concepts": [bool], "timings", "prompt"}` (docs "Flux Dev API"; LiteLLM
  `llms/fal_ai/image_generation/flux_pro_v11_ultra_transformation.py`). A flagged image comes back
  blacked out with its `has_nsfw_concepts` entry true: it is a content-filter error, not an image.
- Errors: `{"detail": "…"}` or `{"detail": [{"loc", "msg", "type"}]}`; a refused input is 422 with type
  `content_policy_violation` (docs "Model Errors"; fal-client `_raise_for_status` reads `detail`,
  `error_type` or the `x-fal-error-type` header).
The poll URLs the answer gives are used only on the host the job was submitted to (the key goes with
them); otherwise they are built from the request id as fal-client builds them. An api_base of fal's
synchronous endpoint (`https://fal.run`, LiteLLM's default) answers the result itself: parsed at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..types import HttpRequest, ImageData, ImageRequest
from . import image_at, response_json, same_origin, sent_authorization, shape_guard, with_common
from .contract import ErrorFields, HttpProvider, Pending, Provider, ProviderResult, detail_text, error_body
from .fal_spec import KEY_HINT

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

WHO = "fal"
WAIT = 0.5  # seconds between status polls (fal-client polls every 0.1 s: DEFAULT_QUEUE_POLL_INTERVAL)
# image_size presets (docs "Common Model Arguments"): what a catalogued WxH is sent as.
PRESETS = {
    "1024x1024": "square_hd", "512x512": "square", "768x1024": "portrait_4_3", "576x1024": "portrait_16_9",
    "1024x768": "landscape_4_3", "1024x576": "landscape_16_9",
}  # fmt: skip
NAMESPACES = ("workflows", "comfy")  # fal-client APP_NAMESPACES: the app is then the id's 2nd and 3rd parts
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+$")
FILTER_HINT = "fal's content checker refused it; rephrase the prompt (or see the model's safety options, -p)."


@dataclass(frozen=True)
class Job:
    """A submitted request: its id, where it was submitted (origin) and the URLs fal gave for it."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    headers: dict[str, str]
    stage: str = "status"  # "status" while polling, "result" once the result is being fetched


class FalProvider(HttpProvider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the fal API key", KEY_HINT)
        model_id = checked_id(request.model.model_id)
        url = f"{str(settings.get('api_base')).rstrip('/')}/{model_id}"
        return HttpRequest("POST", url, {"Content-Type": "application/json", **auth(key)}, body(request))

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        return error_fields(response)

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        payload = response_json(response, None, WHO)
        with shape_guard(WHO, None):
            if isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
                return _queued(request, response, payload)
            return parse_result(request, payload, response.headers.get("x-fal-request-id"))

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        state: Job = job.state
        payload = response_json(response, state.request_id, WHO)
        with shape_guard(WHO, state.request_id):
            if state.stage == "result":
                return parse_result(request, payload, state.request_id)
            return _next(state, payload)

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        """Collect a request an earlier run submitted: its status URL from its id, as fal-client's
        `from_request_id` builds it; fal keeps the result an hour after it completes."""
        key = settings.require("api_key", "the fal API key", KEY_HINT)
        base = str(settings.get("api_base")).rstrip("/")
        job = _job_from_id(base, checked_id(request.model.model_id), job_id, auth(key))
        return _pending(job, "queued", wait=0.0)

    def plan_notes(self, request: ImageRequest) -> list[str]:
        if request.size and request.size not in PRESETS and request.model.info is None:
            return [f"{request.model.name}: --size {request.size} sent as image_size {{width, height}}"]
        return []


def auth(key: Any) -> dict[str, str]:
    return {"Authorization": f"Key {key}"} if key else {}


def checked_id(model_id: str) -> str:
    """A fal model id is `owner/app[/path]`: anything else (`..`, a query, a scheme) is refused before it
    becomes part of a URL."""
    if not _MODEL_ID.match(model_id) or any(part in (".", "..") for part in model_id.split("/")):
        from ..errors import UsageError

        raise UsageError(
            f"fal/{model_id} is not a fal model id (owner/app[/path], e.g. fal/fal-ai/flux/dev)", param="model"
        )
    return model_id


def body(request: ImageRequest) -> dict[str, Any]:
    """The model's input: the prompt and the options the plan kept (it dropped those the model lacks),
    then `-p` fields as given. `--size` is an image_size preset when one matches, else {width, height}."""
    payload: dict[str, Any] = {"prompt": request.prompt}
    info = request.model.info
    if info is None or info.has_field("n"):
        payload["num_images"] = request.n
    width, _, height = (request.size or "").partition("x")
    if request.aspect_ratio:
        payload["aspect_ratio"] = request.aspect_ratio
    elif width.isdigit() and height.isdigit():
        payload["image_size"] = PRESETS.get(f"{width}x{height}") or {"width": int(width), "height": int(height)}
    return with_common(payload, request)


def _queued(request: ImageRequest, response: httpx.Response, payload: dict[str, Any]) -> Pending:
    """The submit answer: poll the status URL (on the host submitted to), with the key submitted with."""
    submitted = str(response.request.url)
    headers = sent_authorization(response)
    model_id = checked_id(request.model.model_id)
    base = submitted.split("?", 1)[0].removesuffix(f"/{model_id}")
    job = _job_from_id(base, model_id, payload["request_id"], headers)
    given = {k: v for k in ("status_url", "response_url", "cancel_url") if isinstance(v := payload.get(k), str)}
    if len(given) == 3 and all(same_origin(url, submitted) for url in given.values()):
        job = replace(job, status_url=given["status_url"], response_url=given["response_url"],
                      cancel_url=given["cancel_url"])  # fmt: skip
    return _pending(job, "queued")


def _job_from_id(base: str, model_id: str, request_id: str, headers: dict[str, str]) -> Job:
    parts = model_id.split("/")
    app = "/".join(parts[:3] if parts[0] in NAMESPACES else parts[:2])
    root = f"{base.rstrip('/')}/{app}/requests/{quote(request_id, safe='')}"
    return Job(request_id, f"{root}/status", root, f"{root}/cancel", headers)


def _pending(job: Job, status: str, wait: float | None = None) -> Pending:
    url = job.response_url if job.stage == "result" else job.status_url
    return Pending(
        HttpRequest("GET", url, dict(job.headers)), WAIT if wait is None else wait, job, job_id=job.request_id,
        status=status, cancel=HttpRequest("PUT", job.cancel_url, dict(job.headers)),
    )  # fmt: skip


def _next(job: Job, payload: Any) -> Pending:
    """A status answer: IN_QUEUE and IN_PROGRESS poll again; COMPLETED fetches the result at once."""
    status = payload.get("status") if isinstance(payload, dict) else None
    if status == "IN_QUEUE":
        return _pending(job, "queued")
    if status == "IN_PROGRESS":
        return _pending(job, "running")
    if status == "COMPLETED":
        return _pending(replace(job, stage="result"), "running", wait=0.0)
    from ..errors import BadResponseError

    raise BadResponseError(f"fal answered an unknown job status {str(status)[:40]!r}", request_id=job.request_id)


def parse_result(request: ImageRequest, payload: Any, request_id: str | None) -> ProviderResult:
    """`images[]` (URLs on fal's CDN, downloaded when saved: no key goes there; a `data:` URI with
    sync_mode), less those `has_nsfw_concepts` flags, which become content-filter errors."""
    from ..errors import BadResponseError, ContentFilterError

    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not images:
        raise BadResponseError("fal's result has no images", request_id=request_id)
    flags = payload.get("has_nsfw_concepts")
    flags = flags if isinstance(flags, list) else []
    seed = payload.get("seed") if isinstance(payload.get("seed"), int) and len(images) == 1 else None
    found: list[ImageData] = []
    errors: list[Any] = []
    for number, item in enumerate(images):
        index = request.first_index + number
        if number < len(flags) and flags[number] is True:
            errors.append(ContentFilterError(f"image {index} was flagged as NSFW", hint=FILTER_HINT,
                                             request_id=request_id))  # fmt: skip
            continue
        url = item.get("url") if isinstance(item, dict) else item
        if not isinstance(url, str) or not url:
            raise BadResponseError("fal's result has an image without a URL", request_id=request_id)
        width, height = (item.get("width"), item.get("height")) if isinstance(item, dict) else (None, None)
        size = f"{width}x{height}" if isinstance(width, int) and isinstance(height, int) else None
        found.append(image_at(url, seed=seed, size=size, index=index, request_id=request_id))
    if not found:
        raise errors[0]
    # fal's CDN keeps media for a limited time (docs "Data retention"): downloaded at once by the engine.
    return ProviderResult(found, request_id=request_id, errors=errors, download=True)


def error_fields(response: httpx.Response) -> ErrorFields:
    """`detail` (a text, or a list of `{loc, msg, type}`); `content_policy_violation` is a filter's refusal."""
    request_id = response.headers.get("x-fal-request-id")
    payload, message = error_body(response)
    detail = payload.get("detail") if isinstance(payload, dict) else payload
    code = (payload.get("error_type") if isinstance(payload, dict) else None) or response.headers.get(
        "x-fal-error-type"
    )
    if isinstance(detail, str) and detail:
        message = detail[:500]
    elif isinstance(detail, list) and detail:
        items = [d for d in detail if isinstance(d, dict)]
        message = "; ".join(detail_text(d) for d in items)[:500] or message
        types = [d.get("type") for d in items if isinstance(d.get("type"), str)]
        code = code or (types[0] if types else None)
    filtered = code == "content_policy_violation"
    status = response.status_code
    return ErrorFields(
        message, code if isinstance(code, str) else None, request_id,
        auth_hint="Check the fal key (imggen config explain shows which one was used)." if status in (401, 403)
        else None,
        filter_hint=FILTER_HINT if filtered else None,
        hint="fal failed; try again later." if status >= 500 else (
            "Check the model id: imggen passes any fal id through (fal/<owner>/<app>[/<path>])." if status == 404
            else None),
    )  # fmt: skip


PROVIDER: Provider = FalProvider()
