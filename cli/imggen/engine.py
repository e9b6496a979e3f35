"""The send path, the same for every provider: build → authorise → send → parse, then poll while the
answer is a job still running. Providers supply the pure halves (providers/contract.py); retries and
each attempt's deadline are the transport's.

A job (a `Pending` answer) is followed here, the same for every queue API:
- its whole life, from the submit to the last byte of its result, is held to the run's `--timeout`;
- polls back off: the provider's `wait` first, then ×1.5 each poll up to POLL_CAP seconds (or the
  provider's own wait, when longer); a `Retry-After` on a poll's answer (a 202, or the 429 and 503 the
  transport retries) is honoured instead;
- `on_job` hears of it: once when it is submitted (its id, before the first poll, so the run can
  write it to the manifest) and whenever its status changes ("queued", "running": the progress display);
- when the run is interrupted (the task is cancelled: Ctrl-C, SIGTERM) its `cancel` request is sent
  once, best effort, within CANCEL_TIMEOUT seconds;
- a result whose URLs expire (`ProviderResult.download`) is downloaded at once, with the download
  retries, inside the same deadline (a plain GET: no key goes to the result's host);
- `job_id` (from the manifest, with --resume) collects a job an earlier run submitted, through the
  provider's `resume_job`, instead of paying for a new one; a job the provider no longer has is
  submitted again."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import AuthError, BadResponseError, ContentFilterError, NetworkError, ProviderError
from .providers.contract import LOCAL, Pending, ProviderResult, error_mapper
from .transport import MAX_RETRY_AFTER, NETWORK_HINT, _host, is_image, retry_after

if TYPE_CHECKING:
    import httpx

    from .providers.contract import Provider
    from .settings import Resolved
    from .transport import Transport
    from .types import HttpRequest, ImageRequest

POLL_GROWTH = 1.5  # each wait between polls is this much longer than the last ...
POLL_CAP = 4.0  # ... up to this many seconds (a provider asking for longer is waited for)
CANCEL_TIMEOUT = 5.0  # a job's cancel request on Ctrl-C: one try, this long at most
POLL_ENV = "IMGGEN_POLL_INTERVAL"  # seconds: poll every job at this fixed pace instead (tests, local servers)

# Told of a job: (the job, True when it was just submitted: its id is new) — then on each status change.
JobHook = Callable[[Pending, bool], None]


async def run(
    provider: Provider,
    request: ImageRequest,
    settings: Resolved,
    transport: Transport,
    *,
    on_job: JobHook | None = None,
    job_id: str | None = None,
) -> ProviderResult:
    """One request's images: sent with the transport's retries, parsed, and a job polled to the end.
    With `job_id`, the job an earlier run submitted is collected instead, when the provider still has it."""
    credentials = await provider.prepare(request, settings)
    if job_id is not None:
        resumed = provider.resume_job(request, job_id, settings)
        if resumed is not None:
            follow = _Job(provider, request, settings, credentials, transport, on_job)
            try:
                return await follow.to_the_end(resumed, resumed=True)
            except (BadResponseError, ProviderError) as exc:
                if not _gone(exc):
                    raise
                # The provider no longer has it (expired, not found, its result URL gone): a new one.
    http = provider.build_request(request, settings)
    if http.method == LOCAL:
        return await provider.answer_locally(request)
    started = asyncio.get_running_loop().time()
    response = await _send(provider, http, settings, credentials, transport)
    outcome = _answer(provider, request, response, None)
    if isinstance(outcome, Pending):
        follow = _Job(provider, request, settings, credentials, transport, on_job, started)
        return await follow.to_the_end(outcome, response=response)
    if outcome.download:
        await download_results(outcome, transport)
    return outcome


class _Job:
    """One job followed to its result under one deadline; `job` is always the latest answer's."""

    def __init__(
        self, provider: Provider, request: ImageRequest, settings: Resolved, credentials: Any, transport: Transport,
        on_job: JobHook | None, started: float | None = None,
    ) -> None:  # fmt: skip
        self.provider, self.request, self.settings, self.credentials = provider, request, settings, credentials
        self.transport, self.on_job = transport, on_job
        self.started = asyncio.get_running_loop().time() if started is None else started
        self.deadline = self.started + transport.timeout
        self.job: Pending | None = None
        self.told: tuple[str | None, str | None] = (None, None)  # (job id, status) on_job last heard

    async def to_the_end(
        self, job: Pending, *, response: httpx.Response | None = None, resumed: bool = False
    ) -> ProviderResult:
        self.job = job
        try:
            async with asyncio.timeout_at(self.deadline):
                return await self._follow(job, response, resumed)
        except TimeoutError:
            raise self._late() from None
        except asyncio.CancelledError:
            await self._cancel()
            raise

    async def _follow(self, job: Pending, response: httpx.Response | None, resumed: bool) -> ProviderResult:
        outcome: ProviderResult | Pending = job
        polls = 0
        asked = retry_after(response.headers) if response is not None else None
        loop = asyncio.get_running_loop()
        # Polls are paced from when the last request went out (its round trip is not added to the wait);
        # a Retry-After counts from its answer, as the server meant it.
        sent = self.started
        answered = loop.time()
        while isinstance(outcome, Pending):
            self.job = job = outcome
            self._tell(job, resumed)
            due = (answered if asked is not None else sent) + self._delay(job, polls, asked)
            if due >= self.deadline:
                raise self._late()  # waiting would only end in the deadline: say so now
            await asyncio.sleep(max(0.0, due - loop.time()))
            sent = loop.time()
            response = await _send(self.provider, job.request, self.settings, self.credentials, self.transport)
            answered = loop.time()
            asked = retry_after(response.headers)
            polls += 1
            outcome = _answer(self.provider, self.request, response, job)
            if isinstance(outcome, Pending):  # what the provider left out of the next step stays the job's
                outcome.job_id = outcome.job_id or job.job_id
                outcome.cancel = outcome.cancel or job.cancel
        if outcome.download:
            await download_results(outcome, self.transport)
        return outcome

    def _tell(self, job: Pending, resumed: bool) -> None:
        """on_job: once with a new id (before the first poll), then when the status changes."""
        if self.on_job is None:
            return
        heard = (job.job_id, job.status)
        if heard == self.told:
            return
        new = job.job_id is not None and job.job_id != self.told[0] and not resumed
        self.told = heard
        self.on_job(job, new)

    def _delay(self, job: Pending, polls: int, asked: float | None) -> float:
        """Seconds before the next poll: what the server asked (Retry-After), else the backoff."""
        if asked is not None:
            return min(asked, MAX_RETRY_AFTER)
        fixed = poll_interval()
        if fixed is not None:
            return fixed
        return float(min(job.wait * POLL_GROWTH**polls, max(POLL_CAP, job.wait)))

    def _late(self) -> NetworkError:
        """The deadline passed with the job unfinished; it may still finish at the provider."""
        job = self.job
        where = _host(job.request.url) if job is not None else "the provider"
        named = f"job {job.job_id}" if job is not None and job.job_id else "the job"
        status = f" (still {job.status})" if job is not None and job.status else ""
        hint = (
            "Raise --timeout, or run the same command with --resume later to collect it without paying again."
            if job is not None and job.job_id
            else "Raise --timeout. " + NETWORK_HINT
        )
        return NetworkError(f"{named} at {where} did not finish within {self.transport.timeout:g} s{status}", hint=hint)

    async def _cancel(self) -> None:
        """Ctrl-C: the job's cancel request, sent once, best effort, within CANCEL_TIMEOUT, even while
        the run keeps cancelling this task; nothing is said of how it went."""
        job = self.job
        if job is None or job.cancel is None:
            return
        cancel = job.cancel
        sent = asyncio.ensure_future(self._send_cancel(cancel))
        loop = asyncio.get_running_loop()
        ends = loop.time() + CANCEL_TIMEOUT
        while not sent.done() and (left := ends - loop.time()) > 0:
            with contextlib.suppress(asyncio.CancelledError):  # the run cancels its tasks again: finish first
                await asyncio.wait({sent}, timeout=left)
        if not sent.done():
            sent.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait({sent}, timeout=0.1)
        if sent.done() and not sent.cancelled():
            sent.exception()  # retrieved: a failed cancel is not worth a warning

    async def _send_cancel(self, cancel: HttpRequest) -> None:
        from .transport import Transport

        await self.provider.authorize(cancel, self.settings, self.credentials)
        once = Transport(timeout=CANCEL_TIMEOUT, retries=0, ca_env=self.transport.ca_env).open()
        try:
            await once.send(cancel, error_mapper(self.provider, self.settings))
        finally:
            await once.aclose()


def _gone(exc: BadResponseError | ProviderError) -> bool:
    """A resumed job the provider no longer has: unknown to it (404, 410), or its result unusable (an
    expired URL). A refusal, a content filter or a provider failing for now is the job's own answer."""
    if isinstance(exc, AuthError | ContentFilterError):
        return False
    return isinstance(exc, BadResponseError) or exc.status in (404, 410)


def poll_interval() -> float | None:
    """IMGGEN_POLL_INTERVAL: a fixed number of seconds between polls, or None (the provider's pace)."""
    raw = os.environ.get(POLL_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value <= MAX_RETRY_AFTER):
        from .errors import ConfigError

        raise ConfigError(f"{POLL_ENV} must be a number of seconds from 0 to {MAX_RETRY_AFTER:g}, not '{raw}'")
    return value


async def download_results(result: ProviderResult, transport: Transport) -> None:
    """A result whose URLs expire: each image downloaded now (with the download retries), into the
    run's spill folder when it has one, else into memory; the URL is kept for what the run says."""
    from .output import fetch_result

    for image in result.images:
        if image.url and image.b64_json is None and image.file is None:
            image.file, data = await fetch_result(image.url, transport)
            if data is not None:
                import base64

                image.b64_json = base64.b64encode(data).decode("ascii")


async def open_stream(
    provider: Provider, request: ImageRequest, settings: Resolved, transport: Transport
) -> httpx.Response:
    """One request sent for a streamed answer (`stream: true`): the open 2xx response, its events not
    yet read; the caller relays and closes it. Errors are raised as `run` raises them."""
    credentials = await provider.prepare(request, settings)
    http = provider.build_request(request, settings)
    await provider.authorize(http, settings, credentials)
    return await transport.open_stream(http, error_mapper(provider, settings))


async def _send(
    provider: Provider, http: HttpRequest, settings: Resolved, credentials: Any, transport: Transport
) -> httpx.Response:
    await provider.authorize(http, settings, credentials)
    return await transport.send(http, error_mapper(provider, settings), spill=provider.spill)


def _answer(
    provider: Provider, request: ImageRequest, response: httpx.Response, job: Pending | None
) -> ProviderResult | Pending:
    if provider.image_bodies and is_image(response):
        return provider.parse_image(request, response)
    if job is None:
        return provider.parse_response(request, response)
    return provider.poll(request, job, response)
