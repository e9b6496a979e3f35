"""The send path of a provider, as the engine (engine.py) drives it: build → authorise → send → parse,
then poll while the answer is a job still running.

A provider supplies the pure halves (`build_request`, `parse_response`, `error_fields`, and `poll` for a
job API) and whatever credentials building leaves out (`prepare`, `authorize`); the engine owns sending,
retries, deadlines and the mapping of an error answer to imggen's errors (`map_error`: one shape for all).
`HttpProvider` gives the defaults, so a provider writes only what it does differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import AuthError, ContentFilterError, GenerationError, ProviderError

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport
    from ..types import HttpRequest, ImageData, ImageRequest, Usage

LOCAL = "LOCAL"  # the method of a request that is answered on this machine (nothing is sent)


@dataclass
class ProviderResult:
    images: list[ImageData]
    usage: Usage | None = None
    request_id: str | None = None
    errors: list[GenerationError] = field(default_factory=list)  # images asked for but not returned
    # An OpenAI-shaped answer's own top-level fields besides `data` (`created`, `usage` with every
    # detail, `background`, `output_format`, `quality`, `size`, …), as the provider sent them: the
    # proxy passes them on unchanged.
    fields: dict[str, Any] = field(default_factory=dict)
    # The images' URLs expire soon (signed for minutes): the engine downloads them at once, within
    # the job's deadline and with the download retries, before anything else is done with them.
    download: bool = False


@dataclass
class Pending:
    """A job the provider accepted and has not finished: the engine waits `wait` seconds, authorises and
    sends `request` (a status or result URL), and hands the answer to `poll`, until it gives a result.
    `state` is the provider's own (a job id, a stage), passed back to it untouched."""

    request: HttpRequest
    wait: float = 1.0
    state: Any = None
    # The provider's id for the job, once it has one: recorded in the manifest before the first poll,
    # so `--resume` after an interrupt collects the job (`resume_job`) instead of paying for a new one.
    job_id: str | None = None
    status: str | None = None  # the job's state as the progress display shows it: "queued", "running"
    cancel: HttpRequest | None = None  # sent once, best effort, when the run is interrupted (where the API allows)


@dataclass
class ErrorFields:
    """What a provider reads out of an error answer; `map_error` makes the one error from it.
    `code` is shown after the status (unless it is the status again); `refused` says the credentials
    were refused whatever the status; `filter_hint`, when set, makes it a content-filter refusal."""

    message: str
    code: Any = None
    request_id: str | None = None
    refused: bool = False
    auth_hint: str | None = None
    filter_hint: str | None = None
    hint: str | None = None


def map_error(response: httpx.Response, fields: ErrorFields) -> GenerationError:
    """The one mapping of an error answer: a filter's refusal a ContentFilterError (a 403 too), `401/403`
    (or refused credentials) an AuthError, anything else a ProviderError; all with status, code and
    request id."""
    status = response.status_code
    code = fields.code
    detail = f"{status} {code}: {fields.message}" if code and code != str(status) else f"{status}: {fields.message}"
    kwargs: dict[str, Any] = {"status": status, "request_id": fields.request_id, "code": code}
    # A 403 that the provider reads as its content filter's (Stability's `content_moderation`) is that.
    if fields.filter_hint is not None and not fields.refused and status != 401:
        return ContentFilterError(detail, hint=fields.filter_hint, **kwargs)
    if status in (401, 403) or fields.refused:
        return AuthError(detail, hint=fields.auth_hint, **kwargs)
    return ProviderError(detail, hint=fields.hint, **kwargs)


def error_body(response: httpx.Response) -> tuple[Any, str]:
    """An error answer's JSON (None when it is not JSON), and the message to give when that JSON says
    none: the start of its text, else its reason phrase."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    from ..secrets import cut  # redacted before it is cut: no stub of a secret left at the cut

    return payload, cut(response.text.strip(), 200) or response.reason_phrase or "no message"


def detail_text(item: Any) -> str:
    """One entry of a FastAPI validation error's `detail` list (`{"loc", "msg", "type"}`) as `field: message`."""
    if not isinstance(item, dict):
        return str(item)[:200]
    loc = item.get("loc")
    where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
    text = str(item.get("msg") or item.get("type") or "invalid")[:200]
    return f"{where}: {text}" if where else text


def error_mapper(provider: Provider, settings: Resolved) -> Callable[[httpx.Response], GenerationError]:
    """What the transport calls on an error answer to one of `provider`'s requests: `map_error` over the
    provider's own `error_fields`. The engine and `imggen models check` both use it."""
    return lambda response: map_error(response, provider.error_fields(response, settings))


class Provider(Protocol):
    """A provider module's `PROVIDER`, as the engine, dry runs and the proxy use it."""

    @property
    def spill(self) -> bool:
        """Long base64 strings of its JSON answers may be streamed to files (see spill.py)."""
        ...

    @property
    def image_bodies(self) -> bool:
        """A 2xx `image/*` answer is the image itself (else it goes to parse_response)."""
        ...

    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """The HTTP request for `request`; with dry_run, missing credentials are shown, not raised."""
        ...

    async def prepare(self, request: ImageRequest, settings: Resolved) -> Any:
        """Credentials fetched before building (a token, and what it says, e.g. the project); passed
        to `authorize`."""
        ...

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: Any) -> None:
        """Add what building leaves out (a signature, a fetched token) to `http`, in place."""
        ...

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        """The message, code, request id and hints of an error answer."""
        ...

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult | Pending:
        """Images out of a 2xx answer (or the job to wait for); raises GenerationError when there are none."""
        ...

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        """The answer to `job.request`: the result, or the job still running (what to ask next)."""
        ...

    def parse_image(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        """A 2xx answer whose body is the image itself (with `image_bodies`)."""
        ...

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        """The next poll of a job an earlier run submitted (`Pending.job_id`, read back from the
        manifest by `--resume`), or None when the provider keeps no result to collect."""
        ...

    async def answer_locally(self, request: ImageRequest) -> ProviderResult:
        """The result of a request built with method LOCAL (made here, nothing sent)."""
        ...

    # Around the send path: what planning, `imggen serve` and `imggen models check` ask of a provider.
    def complete_settings(self, settings: Resolved) -> None:
        """Fill settings only the provider can derive (Bedrock's region from the AWS config)."""
        ...

    def plan_notes(self, request: ImageRequest) -> list[str]:
        """Notes a plan shows before sending (what the provider will do with the options)."""
        ...

    def check_credentials(self, settings: Resolved) -> None:
        """Load what building a request does not (`imggen serve`'s /health): raise when it cannot."""
        ...

    # `imggen models check` (asked only of a provider whose declaration has `check`; others list nothing):
    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        """The requests that list its models (the first ones, for a listing in pages), as --dry-run shows them."""
        ...

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """The image models the account can use, by id; raises the provider's error."""
        ...


class HttpProvider(Provider):
    """The defaults of the contract: credentials added at build time, JSON answers, no job to poll, and
    nothing to add around the send path. A provider subclasses it, so mypy checks it against Provider
    (and refuses to build one that leaves out build_request or parse_response)."""

    spill: bool = False
    image_bodies: bool = False

    async def prepare(self, request: ImageRequest, settings: Resolved) -> Any:
        return None

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: Any) -> None:
        return None

    def error_fields(self, response: httpx.Response, settings: Resolved) -> ErrorFields:
        return ErrorFields(error_body(response)[1])

    def poll(self, request: ImageRequest, job: Pending, response: httpx.Response) -> ProviderResult | Pending:
        raise NotImplementedError(f"{type(self).__name__} answers no job to poll")

    def resume_job(self, request: ImageRequest, job_id: str, settings: Resolved) -> Pending | None:
        return None

    def parse_image(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        import base64

        from ..types import ImageData

        image = ImageData(
            b64_json=base64.b64encode(response.content).decode("ascii"), seed=request.seed, size=request.size,
            index=request.first_index, request_id=None,
        )  # fmt: skip
        return ProviderResult([image])

    async def answer_locally(self, request: ImageRequest) -> ProviderResult:
        raise NotImplementedError(f"{type(self).__name__} sends its requests")

    def complete_settings(self, settings: Resolved) -> None:
        return None

    def plan_notes(self, request: ImageRequest) -> list[str]:
        return []

    def check_credentials(self, settings: Resolved) -> None:
        return None

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return []

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        return {}
