"""The send path, the same for every provider: build → authorise → send → parse, then poll while the
answer is a job still running. Providers supply the pure halves (providers/contract.py); retries and
each attempt's deadline are the transport's, and a job's whole wait is held to the same deadline."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from .providers.contract import LOCAL, Pending, ProviderResult, error_mapper
from .transport import deadline_error, is_image

if TYPE_CHECKING:
    import httpx

    from .providers.contract import Provider
    from .settings import Resolved
    from .transport import Transport
    from .types import HttpRequest, ImageRequest


async def run(provider: Provider, request: ImageRequest, settings: Resolved, transport: Transport) -> ProviderResult:
    """One request's images: sent with the transport's retries, parsed, and polled to the end."""
    credentials = await provider.prepare(request, settings)
    http = provider.build_request(request, settings)
    if http.method == LOCAL:
        return await provider.answer_locally(request)
    response = await _send(provider, http, settings, credentials, transport)
    outcome = _answer(provider, request, response, None)
    started = time.monotonic()
    while isinstance(outcome, Pending):
        job = outcome
        if time.monotonic() - started + job.wait > transport.timeout:
            raise deadline_error(job.request.url, transport.timeout)
        await asyncio.sleep(job.wait)
        response = await _send(provider, job.request, settings, credentials, transport)
        outcome = _answer(provider, request, response, job)
    return outcome


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
