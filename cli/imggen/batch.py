"""One scheduler for every request of a run, whatever the provider: at most `concurrency` in flight,
starts spaced for `rpm`, and a 429 anywhere pauses every new start, not just the one request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AuthError, GenerationError, NotSentError
from .providers import SPECS
from .transport import Transport

if TYPE_CHECKING:
    from .settings import Resolved

# Settings that pick the credentials a request is sent with: the common ones and each provider's.
_IDENTITY_SETTINGS = (s.key for spec in SPECS for s in spec.settings if s.identity)
CREDENTIAL_KEYS = frozenset({"api_key", "api_base", "profile", *_IDENTITY_SETTINGS})


class Scheduler:
    def __init__(self, concurrency: int = 4, rpm: float | None = None) -> None:
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.interval = 60.0 / rpm if rpm else 0.0
        self.next_start = 0.0  # monotonic time before which no request may start
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the in-flight places, entered no sooner than rpm and any pause allow."""
        async with self.slots:
            await self._wait_turn()
            yield

    async def _wait_turn(self) -> None:
        async with self.lock:  # starts are handed out in order, each interval after the last
            now = time.monotonic()
            start = max(now, self.next_start, self.paused_until)
            self.next_start = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
        while (wait := self.paused_until - time.monotonic()) > 0:  # a 429 came in while we waited
            await asyncio.sleep(wait)

    def back_off(self, seconds: float) -> None:
        """The provider said slow down: hold every new start for `seconds`; it recovers by itself."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


def _credentials(settings: Resolved) -> tuple[str, ...]:
    """What says which credentials a request carries: another provider, key or profile in the same
    batch (JSONL lines may name other models) is not stopped by this one's refusal."""
    values = settings.values
    return (settings.model.provider, *(str(values[k].value) for k in sorted(values) if k in CREDENTIAL_KEYS))


class Session:
    """What one run shares: the scheduler and one HTTP client per (CA bundle, timeout).

    With `stop_on_auth`, the first 401/403 stops every request not yet sent: the same credentials
    would be refused again. Requests already in flight finish. A batch run wants this; a server
    (the proxy), whose requests come from many clients, does not."""

    def __init__(
        self,
        *,
        retries: int = 2,
        concurrency: int = 4,
        rpm: float | None = None,
        spill_dir: Path | None = None,
        stop_on_auth: bool = False,
    ) -> None:
        self.retries = retries
        self.stop_on_auth = stop_on_auth
        self.refused: GenerationError | None = None  # the first 401/403 that stopped requests
        self.refusals: dict[tuple[str, ...], GenerationError] = {}  # by the credentials refused
        self.spill_dir = spill_dir  # where image strings stream to as responses arrive (None: kept in memory)
        self.scheduler = Scheduler(concurrency, rpm)
        self.transports: dict[tuple[tuple[str, ...], float], Transport] = {}

    def refused_for(self, settings: Resolved) -> GenerationError | None:
        """The 401/403 these settings' credentials got earlier in the run, if they did."""
        return self.refusals.get(_credentials(settings)) if self.refusals else None

    def check_sendable(self, images: int, settings: Resolved) -> None:
        """Raise NotSentError once these credentials were refused (see stop_on_auth)."""
        refused = self.refused_for(settings)
        if refused is not None:
            raise NotSentError(refused, images)

    def note_refusal(self, error: GenerationError, settings: Resolved) -> None:
        if self.stop_on_auth and isinstance(error, AuthError):
            self.refusals.setdefault(_credentials(settings), error)
            self.refused = self.refused or error

    def transport(self, ca_env: tuple[str, ...], timeout: float) -> Transport:
        key = (ca_env, timeout)
        if key not in self.transports:
            transport = Transport(timeout=timeout, retries=self.retries, ca_env=ca_env).open()
            transport.spill_dir = self.spill_dir
            self.transports[key] = transport
        return self.transports[key]

    async def aclose(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
