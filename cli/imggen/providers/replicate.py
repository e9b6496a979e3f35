"""Replicate predictions: created with `Prefer: wait` (the answer may already hold the output), then
polled until they succeed, fail or are canceled; any `owner/model` or `owner/model:version` passes through.

Wire facts (replicate-python 1.0.7 `prediction.py`, `model.py`, `client.py`, `exceptions.py`; Replicate
docs "Create a prediction", "Data retention"; changelog 2025-01-29 "Official models"):
- `POST {base}/v1/models/{owner}/{name}/predictions` with `{"input": {…}}` (official models, no version),
  or `POST {base}/v1/predictions` with `{"version": "<id>", "input": {…}}`; `Authorization: Bearer <token>`.
- `Prefer: wait` holds the request up to 60 s (`wait=N`, 1 to 60, holds N s): the answer is the
  prediction, finished or not (`_create_prediction_headers`, `run.py`).
- A prediction: `{"id", "status": "starting" | "processing" | "succeeded" | "failed" | "canceled",
  "output", "error", "urls": {"get", "cancel"}}` (`Prediction`); `GET /v1/predictions/{id}` reads it again,
  `POST /v1/predictions/{id}/cancel` cancels it (`Predictions.get`, `Predictions.cancel`).
- `output` of an image model is a URL or a list of URLs (e.g. flux-schnell: array of uri; flux-1.1-pro: a
  uri), served without credentials; API predictions' inputs, outputs and files are deleted after an hour.
- Errors: RFC 7807 `{"title", "detail", "status"}` (`ReplicateError.from_response`).
- A safety refusal is a failed prediction whose `error` says so: "NSFW content detected" (replicate/cog-flux
  #7, cog-stable-diffusion #24) or "flagged as sensitive … (E005)": a content-filter error.
The poll and cancel URLs the answer gives are used only on the host the prediction was created on (the
token goes with them); otherwise they are built from its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..types import HttpRequest, ImageData, ImageRequest
from . import as_dict, image_at, response_json, same_origin, sent_authorization, shape_guard, with_common
from .contract import ErrorFields, HttpProvider, Pending, Provider, ProviderResult, error_body
from .replicate_spec import KEY_HINT

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

WHO = "Replicate"
WAIT = 0.5  # seconds between polls (replicate-python's REPLICATE_POLL_INTERVAL default)
HOLD = 60  # the longest `Prefer: wait` (seconds)
_MODEL_ID = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)/([A-Za-z0-9][A-Za-z0-9._-]*)(?::([A-Za-z0-9]+))?$")
_FILTERED = re.compile(r"nsfw|flagged as sensitive|\(E005\)", re.IGNORECASE)
FILTER_HINT = "Replicate's safety checker refused it; rephrase the prompt (or see the model's safety inputs, -p)."


@dataclass(frozen=True)
class Job:
    prediction_id: str
    get_url: str
    cancel_url: str
    headers: dict[str, str]


class ReplicateProvider(HttpProvider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the Replicate API token", KEY_HINT)
        owner, name, version = parse_id(request.model.model_id)
        base = api_root(settings)
        hold = max(1, min(HOLD, int(float(settings.get("timeout", 600) or 600)) - 5))
        headers = {"Content-Type": "application/json", "Prefer": f"wait={hold}", **auth(key)}
        if version:
            return HttpRequest(
                "POST", f"{base}/v1/predictions", headers, {"version": version, "input": inputs(request)}
            )
        return HttpRequest("POST", f"{base}/v1/models/{owner}/{name}/predictions", headers, {"input": inputs(request)})

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        return error_fields(response)

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        headers = sent_authorization(response)
        origin = str(response.request.url)
        payload = response_json(response, None, WHO)
        with shape_guard(WHO, None):
            return _prediction(request, payload, _root(origin), headers)

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        state: Job = job.state
        payload = response_json(response, state.prediction_id, WHO)
        with shape_guard(WHO, state.prediction_id):
            return _prediction(request, payload, _root(state.get_url), state.headers)

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        """Read an earlier run's prediction again (`GET /v1/predictions/{id}`): Replicate keeps an API
        prediction's output for an hour."""
        key = settings.require("api_key", "the Replicate API token", KEY_HINT)
        job = _job(api_root(settings), job_id, {}, auth(key))
        return _pending(job, "queued", wait=0.0)


def auth(key: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def api_root(settings: Resolved) -> str:
    """The API root without `/v1` (replicate-python's REPLICATE_BASE_URL has none; LiteLLM's api_base has it)."""
    return str(settings.get("api_base")).rstrip("/").removesuffix("/v1")


def _root(url: str) -> str:
    """The API root of a URL this provider built (`…/v1/…`)."""
    head, sep, _ = url.partition("/v1/")
    return head if sep else url.rstrip("/")


def parse_id(model_id: str) -> tuple[str, str, str | None]:
    match = _MODEL_ID.match(model_id)
    if not match:
        from ..errors import UsageError

        raise UsageError(
            f"replicate/{model_id} is not a Replicate model (owner/name or owner/name:version, "
            "e.g. replicate/black-forest-labs/flux-schnell)", param="model",
        )  # fmt: skip
    return match[1], match[2], match[3]


def inputs(request: ImageRequest) -> dict[str, Any]:
    """The model's input: the prompt and the options the plan kept (it dropped those the model lacks),
    then `-p` fields as given. A pixel size goes as width and height, an aspect ratio as it is."""
    payload: dict[str, Any] = {"prompt": request.prompt}
    info = request.model.info
    if (info is None and request.n > 1) or (info is not None and info.has_field("n") and info.max_n > 1):
        payload["num_outputs"] = request.n
    if request.aspect_ratio:
        payload["aspect_ratio"] = request.aspect_ratio
    elif (size := (request.size or "").partition("x"))[0].isdigit() and size[2].isdigit():
        payload.update(width=int(size[0]), height=int(size[2]))
    return with_common(payload, request)


def _job(root: str, prediction_id: str, urls: Any, headers: dict[str, str]) -> Job:
    own = f"{root}/v1/predictions/{quote(prediction_id, safe='')}"
    get_url, cancel_url = f"{own}", f"{own}/cancel"
    if isinstance(urls, dict):
        given_get, given_cancel = urls.get("get"), urls.get("cancel")
        if isinstance(given_get, str) and same_origin(given_get, root):
            get_url = given_get
        if isinstance(given_cancel, str) and same_origin(given_cancel, root):
            cancel_url = given_cancel
    return Job(prediction_id, get_url, cancel_url, headers)


def _pending(job: Job, status: str, wait: float | None = None) -> Pending:
    return Pending(
        HttpRequest("GET", job.get_url, dict(job.headers)), WAIT if wait is None else wait, job,
        job_id=job.prediction_id, status=status, cancel=HttpRequest("POST", job.cancel_url, dict(job.headers)),
    )  # fmt: skip


def _prediction(request: ImageRequest, payload: Any, root: str, headers: dict[str, str]) -> ProviderResult | Pending:
    from ..errors import BadResponseError, ContentFilterError, ProviderError

    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise BadResponseError("Replicate's answer is not a prediction")
    prediction_id, status = payload["id"], payload.get("status")
    if status in ("starting", "processing"):
        job = _job(root, prediction_id, payload.get("urls"), headers)
        return _pending(job, "queued" if status == "starting" else "running")
    if status == "succeeded":
        return _output(request, payload.get("output"), prediction_id)
    error = payload.get("error")
    message = str(error)[:500] if error else f"the prediction {status or 'ended'} without output"
    if status == "failed" and _FILTERED.search(message):
        raise ContentFilterError(message, hint=FILTER_HINT, request_id=prediction_id, code="failed")
    if status == "failed":
        raise ProviderError(message, request_id=prediction_id, code="failed")
    if status == "canceled":
        raise ProviderError("the prediction was canceled", request_id=prediction_id, code="canceled")
    raise BadResponseError(f"Replicate answered an unknown status {str(status)[:40]!r}", request_id=prediction_id)


def _output(request: ImageRequest, output: Any, prediction_id: str) -> ProviderResult:
    """`output`: a URL or a list of URLs (downloaded when saved, without the token; a `data:` URI is decoded)."""
    from ..errors import BadResponseError, ProviderError

    urls = [output] if isinstance(output, str) else output if isinstance(output, list) else []
    urls = [u for u in urls if isinstance(u, str) and u]
    if not urls:
        raise BadResponseError("Replicate's prediction succeeded without an image URL", request_id=prediction_id)
    seed = request.seed if len(urls) == 1 else None
    size = request.size if request.size and "x" in request.size else None
    images: list[ImageData] = []
    for number, url in enumerate(urls):
        images.append(image_at(url, seed=seed, size=size, index=request.first_index + number,
                               request_id=prediction_id))  # fmt: skip
    errors: list[Any] = []
    if len(images) < request.n:
        missing = request.n - len(images)
        errors.append(ProviderError(
            f"{missing} of {request.n} images were not returned", request_id=prediction_id,
            hint="The model's safety checker may have left them out; see the prediction's logs.",
        ))  # fmt: skip
    # Output files are deleted an hour after the prediction (docs "Data retention"): downloaded at once.
    return ProviderResult(images, request_id=prediction_id, errors=errors, download=True)


def error_fields(response: httpx.Response) -> ErrorFields:
    """RFC 7807 `{"title", "detail", "status"}`."""
    payload, message = error_body(response)
    fields = as_dict(payload)
    detail, title = fields.get("detail"), fields.get("title")
    if isinstance(detail, str) and detail:
        message = detail[:500]
    elif isinstance(title, str) and title:
        message = title[:200]
    status = response.status_code
    filtered = bool(_FILTERED.search(message)) and status in (400, 422)
    return ErrorFields(
        message, title if isinstance(title, str) and title != message else None, None,
        auth_hint="Check the Replicate API token (imggen config explain shows which one was used)."
        if status in (401, 403) else None,
        filter_hint=FILTER_HINT if filtered else None,
        hint="Add credit to the Replicate account." if status == 402 else
        "Replicate failed; try again later." if status >= 500 else
        "Check the model: owner/name or owner/name:version." if status == 404 else None,
    )  # fmt: skip


PROVIDER: Provider = ReplicateProvider()
