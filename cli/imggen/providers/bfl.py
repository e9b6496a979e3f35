"""Black Forest Labs' API (FLUX models): a job API. Submit, poll the URL it answers, download the
signed result before it expires; the engine (engine.py) does the sending, polling and downloading.

Wire facts, from BFL's API reference (docs.bfl.ai / docs.bfl.ml, its OpenAPI at api.bfl.ai/openapi.json),
BFL's own integration guide (github.com/black-forest-labs/skills, skills/bfl-api: SKILL.md,
references/endpoints.md, references/rate-limiting.md) and LiteLLM (litellm/llms/black_forest_labs):
- `POST {api_base}/{model}` (api_base `https://api.bfl.ai/v1`; regional `api.eu.bfl.ai`, `api.us.bfl.ai`),
  the key in the `x-key` header, a JSON body: `prompt`, `seed`, `output_format` ("jpeg" or "png"; imggen
  asks "png" unless `-p output_format=`), `safety_tolerance` (0 strictest to 6; FLUX.2: 0-5),
  `prompt_upsampling`; FLUX.2 and FLUX1.1 [pro] take `width`/`height`, FLUX1.1 [pro] Ultra and Kontext an
  `aspect_ratio` (between 21:9 and 9:21); an edit sends its images as base64 in `input_image`,
  `input_image_2`, … (Kontext up to 4, FLUX.2 [pro]/[max]/[flex] up to 8).
- The answer: `{"id", "polling_url", "cost", "input_mp", "output_mp"}`. The polling URL may be on
  another BFL host than the submit (`api.us1.bfl.ai`, `api.eu2.bfl.ai`, `gateway.bfl.ai`: LiteLLM's
  common_utils.assert_bfl_polling_url), so the key goes only to a host of bfl.ai / bfl.ml or the
  api_base's own (see `trusted`).
- `GET polling_url` (with `x-key`) → `{"id", "status", "result", "progress", "details"}`; status is one
  of Ready, Pending, Request Moderated (the input was flagged; not charged), Content Moderated (the
  output was flagged; not charged), Task not found (unknown or expired), Error (docs.bfl.ai
  api_integration/errors; help.bfl.ai "Why did my request fail?"). Ready carries `result.sample`, a
  signed URL valid for 10 minutes (docs.bfl.ml flux_models/flux_1_1_pro: "Our signed URLs are only
  valid for 10 minutes"), and `result.seed`.
- Errors: 400/422 (FastAPI `detail`), 402 no credits, 403 key refused, 429 too many jobs in flight
  (24 per key; 6 for Kontext Max), 500, 503. BFL documents no way to cancel a job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError, ContentFilterError, ProviderError
from ..types import HttpRequest, ImageData, ImageRequest, Inline
from .bfl_spec import KEY_HINT, SPEC
from .contract import ErrorFields, HttpProvider, Pending, Provider, ProviderResult, detail_text, error_body

if TYPE_CHECKING:
    import httpx

    from ..settings import Resolved

WHO = SPEC.label
API = "the BFL API"  # as response_json words it: "the BFL API's response is not JSON"
WAIT = 0.5  # seconds before the first poll: BFL's own examples poll every 0.5 s (the engine backs off)
BFL_DOMAINS = ("bfl.ai", "bfl.ml")
MODERATED = {
    "Request Moderated": "the prompt or an input image was flagged by Black Forest Labs' moderation",
    "Content Moderated": "the generated image was flagged by Black Forest Labs' moderation",
}
FILTER_HINT = "Nothing was charged. Rephrase the prompt (or change the input image)."
FAILED = ("Error", "Failed", "Task not found")


class BflProvider(HttpProvider):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        key = settings.get("api_key") if dry_run else settings.require("api_key", "the Black Forest Labs API key",
                                                                       KEY_HINT)  # fmt: skip
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["x-key"] = str(key)
        url = f"{_base(settings)}/{request.model.model_id}"
        body: dict[str, Any] = {"prompt": request.prompt}
        if request.size and "x" in request.size:
            width, height = request.size.lower().split("x", 1)
            body["width"], body["height"] = int(width), int(height)
        elif request.aspect_ratio:
            body["aspect_ratio"] = request.aspect_ratio
        if request.seed is not None:
            body["seed"] = request.seed
        body["output_format"] = "png"
        for number, image in enumerate(request.images, 1):
            body["input_image" if number == 1 else f"input_image_{number}"] = Inline(image)
        body.update(request.params)
        if request.images:
            return HttpRequest.inline("POST", url, headers, body)
        return HttpRequest("POST", url, headers, body)

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: Any) -> None:
        """The key goes with every request (the submit has it from build_request; polls get it here),
        but only to Black Forest Labs' hosts or the api_base's own: a polling URL elsewhere is refused."""
        if not trusted(http.url, settings):
            raise BadResponseError(f"{WHO} answered a polling URL on {_host(http.url)}, not one of its hosts; "
                                   "the key is not sent there")  # fmt: skip
        if "x-key" not in http.headers:
            http.headers["x-key"] = str(settings.require("api_key", "the Black Forest Labs API key", KEY_HINT))

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        """The submit's answer `{"id", "polling_url", …}`: the job, polled at its polling URL; the URL is
        the job's id in the manifest (it names the region that holds it)."""
        from . import response_json

        payload = response_json(response, None, API)
        task = payload.get("id") if isinstance(payload, dict) else None
        polling = payload.get("polling_url") if isinstance(payload, dict) else None
        if not isinstance(polling, str) or not polling.startswith(("https://", "http://")):
            raise BadResponseError(f"{WHO} answered no polling_url for the job", request_id=_text(task))
        return Pending(_poll_request(polling), wait=WAIT, state=_text(task), job_id=polling, status="queued")

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        """`{"status": "Pending" | "Ready" | …, "result": {"sample", "seed"}, "progress", "details"}`."""
        from . import response_json

        payload = response_json(response, _text(job.state), API)
        if not isinstance(payload, dict):
            raise BadResponseError(f"{WHO} answered the poll with something other than an object",
                                   request_id=_text(job.state))  # fmt: skip
        task = _text(payload.get("id")) or _text(job.state)
        status = payload.get("status")
        if status == "Ready":
            return _result(request, payload.get("result"), task)
        if status in MODERATED:
            raise ContentFilterError(_with_details(MODERATED[status], payload.get("details")), hint=FILTER_HINT,
                                     request_id=task, code=status)  # fmt: skip
        if status in FAILED:
            detail = _with_details(
                f"the job ended with status {status!r}", payload.get("details") or payload.get("error")
            )
            raise ProviderError(
                detail, request_id=task, code=status, status=404 if status == "Task not found" else None
            )
        # "Pending" (or a status this version does not know yet): running once it reports progress.
        progress = payload.get("progress")
        running = (isinstance(progress, int | float) and not isinstance(progress, bool)) or status not in (
            "Pending",
            None,
        )
        status = "running" if running else "queued"
        return Pending(job.request, wait=job.wait, state=task, job_id=job.job_id, status=status, cancel=job.cancel)

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        """A job an earlier run submitted: its polling URL (what parse_response made its id), asked at
        once; results are kept a while ("Task not found" once they are gone: the engine submits anew)."""
        from urllib.parse import quote

        url = (
            job_id if job_id.startswith(("https://", "http://")) else f"{_base(settings)}/get_result?id={quote(job_id)}"
        )
        return Pending(_poll_request(url), wait=0.0, job_id=job_id, status="queued")

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        """`{"detail": "…"}` or FastAPI's `{"detail": [{"loc", "msg"}]}`; a 429 may say `message`."""
        payload, message = error_body(response)
        if isinstance(payload, dict):
            detail = payload.get("detail")
            if isinstance(detail, list):
                parts = [detail_text(item) for item in detail[:5]]
                message = "; ".join(p for p in parts if p) or message
            elif isinstance(detail, str) and detail:
                message = detail
            elif isinstance(payload.get("message"), str):
                message = payload["message"]
        hint = None
        if response.status_code == 402:
            hint = "The account has no credits left: add some at https://dashboard.bfl.ai."
        elif response.status_code == 429:
            hint = "Too many jobs in flight for the key (24; 6 for FLUX.1 Kontext [max]): lower -j."
        return ErrorFields(message[:500], request_id=response.headers.get("x-request-id"),
                           auth_hint=KEY_HINT, hint=hint)  # fmt: skip


def _result(request: ImageRequest, result: Any, task: str | None) -> ProviderResult:
    sample = result.get("sample") if isinstance(result, dict) else None
    if not isinstance(sample, str) or not sample.startswith(("https://", "http://")):
        raise BadResponseError(f"{WHO} said the job is Ready without a result URL", request_id=task)
    seed = result.get("seed")
    image = ImageData(
        url=sample, seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else request.seed,
        size=request.size or request.aspect_ratio, index=request.first_index, request_id=task,
    )  # fmt: skip
    return ProviderResult([image], request_id=task, download=True)  # signed for 10 minutes: fetched at once


def trusted(url: str, settings: Resolved) -> bool:
    """A URL the key may go to: the api_base's own scheme, host and port, or https on bfl.ai / bfl.ml."""
    import httpx

    try:
        target, base = httpx.URL(url), httpx.URL(_base(settings))
    except httpx.InvalidURL:
        return False
    if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
        return True
    host = target.host.lower()
    return target.scheme == "https" and any(host == d or host.endswith("." + d) for d in BFL_DOMAINS)


def _poll_request(url: str) -> HttpRequest:
    return HttpRequest("GET", url, {"Accept": "application/json"})


def _base(settings: Resolved) -> str:
    return str(settings.get("api_base")).rstrip("/")


def _host(url: str) -> str:
    from ..transport import _host as host

    return host(url)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _with_details(message: str, details: Any) -> str:
    """The moderation reasons or error details BFL gives (`{"Moderation Reasons": [...]}`), briefly."""
    if isinstance(details, dict):
        reasons = details.get("Moderation Reasons") or details.get("reasons")
        if isinstance(reasons, list) and reasons:
            return f"{message}: {', '.join(str(r)[:80] for r in reasons[:5])}"
    if isinstance(details, str) and details.strip():
        return f"{message}: {details.strip()[:200]}"
    return message


PROVIDER: Provider = BflProvider()
