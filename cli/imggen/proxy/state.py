"""What the router counts: requests per deployment in the last minute, recent failures and cooldowns.

In memory for one instance; in Redis when several `imggen serve` share one load balancer, so their
rpm limits and cooldowns add up across machines. Both give the same answers to the same calls.
When Redis cannot be reached (at start or later), SharedState says so once, counts in this instance's
memory meanwhile (`degraded`) and tries Redis again in the background until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections import deque
from typing import Any, Protocol

WINDOW = 60.0  # rpm: requests started in any 60-second window, not per calendar minute


class State(Protocol):
    async def take(self, key: str, limit: int) -> float:
        """Record one request start if fewer than `limit` started in the last minute: 0.0.
        Otherwise record nothing and return the seconds until one may start."""
        ...

    async def usage(self, keys: list[str]) -> list[int]: ...

    async def failed(self, key: str) -> int:
        """Count a failure; returns the failures in the last minute."""
        ...

    async def cool_down(self, key: str, seconds: float) -> None: ...

    async def cooling(self, keys: list[str]) -> dict[str, float]:
        """The keys cooling down now, with the seconds each has left."""
        ...

    async def ping(self) -> None:
        """Raise when the shared store cannot be reached."""
        ...

    async def aclose(self) -> None: ...


class MemoryState:
    def __init__(self) -> None:
        self.starts: dict[str, deque[float]] = {}
        self.failures: dict[str, deque[float]] = {}
        self.cool_until: dict[str, float] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        times = table.setdefault(key, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        return times

    async def take(self, key: str, limit: int) -> float:
        now = time.monotonic()
        starts = self._recent(self.starts, key, now)
        if len(starts) < limit:
            starts.append(now)
            return 0.0
        return starts[len(starts) - limit] + WINDOW - now

    async def usage(self, keys: list[str]) -> list[int]:
        now = time.monotonic()
        return [len(self._recent(self.starts, key, now)) for key in keys]

    async def failed(self, key: str) -> int:
        now = time.monotonic()
        failures = self._recent(self.failures, key, now)
        failures.append(now)
        return len(failures)

    async def cool_down(self, key: str, seconds: float) -> None:
        self.cool_until[key] = max(self.cool_until.get(key, 0.0), time.monotonic() + seconds)

    async def cooling(self, keys: list[str]) -> dict[str, float]:
        now = time.monotonic()
        return {key: left for key in keys if (left := self.cool_until.get(key, 0.0) - now) > 0}

    async def ping(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


# A sliding-window log in a sorted set, checked and added in one step so two instances can never
# both take the last place; the Redis server's clock is the only clock, so instances need not agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local held = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tostring(tonumber(held[2]) + window - now)
"""
_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('ZCOUNT', key, now - tonumber(ARGV[1]), '+inf')
end
return counts
"""


class RedisState:
    def __init__(self, host: str, port: int, password: str | None, prefix: str = "imggen:") -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No client-side retries: a failed call falls back to memory at once (SharedState) and is not
        # held for seconds of reconnect attempts on the request path.
        self.redis: Any = Redis(
            host=host,
            port=port,
            password=password or None,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )
        self.where = f"{host}:{port}"
        self.prefix = prefix
        self._take = self.redis.register_script(_TAKE)
        self._usage = self.redis.register_script(_USAGE)

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    async def take(self, key: str, limit: int) -> float:
        member = uuid.uuid4().hex
        return float(await self._take(keys=[self._key("rpm", key)], args=[WINDOW, limit, member]))

    async def usage(self, keys: list[str]) -> list[int]:
        counts = await self._usage(keys=[self._key("rpm", k) for k in keys], args=[WINDOW])
        return [int(c) for c in counts]

    async def failed(self, key: str) -> int:
        name = self._key("fails", key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, int(WINDOW), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def cool_down(self, key: str, seconds: float) -> None:
        await self.redis.set(self._key("cooldown", key), "1", px=max(1, int(seconds * 1000)))

    async def cooling(self, keys: list[str]) -> dict[str, float]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(self._key("cooldown", key))
            left = await pipe.execute()
        return {key: ms / 1000 for key, ms in zip(keys, left, strict=True) if ms > 0}

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        await self.redis.aclose()


RECONNECT_EVERY = 1.0  # seconds between tries to reach Redis again while degraded


class SharedState:
    """Redis while it answers; this instance's memory while it does not, never an error to a request.

    The first failure is one warning on stderr; a background task then pings Redis every
    RECONNECT_EVERY seconds and, when it answers, the counts are shared again (one more line says so).
    What was counted in memory meanwhile stays with this instance."""

    def __init__(self, shared: RedisState, say: Any = None) -> None:
        self.shared = shared
        self.memory = MemoryState()
        self.degraded: str | None = None  # why, while Redis cannot be reached
        self._task: asyncio.Task[None] | None = None
        self._say = say or (lambda text: sys.stderr.write(f"imggen serve: {text}\n"))

    async def start(self) -> None:
        """Reach Redis once at start-up; unreachable, start degraded (one warning) and keep trying."""
        try:
            await self.shared.ping()
        except Exception as exc:
            self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        if self.degraded is None:
            from ..secrets import redact

            self.degraded = redact(f"{type(exc).__name__}: {exc}")[:300]
            self._say(f"warning: cannot reach Redis at {self.shared.where} ({self.degraded}); rpm limits and "
                      "cooldowns are counted in this instance's memory until it answers again")  # fmt: skip
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while self.degraded is not None:
            await asyncio.sleep(RECONNECT_EVERY)
            try:
                await self.shared.ping()
            except Exception:
                continue
            self.degraded = None
            self._say(f"Redis at {self.shared.where} answers again; rpm limits and cooldowns are shared again")

    async def _call(self, name: str, *args: Any) -> Any:
        if self.degraded is None:
            try:
                return await getattr(self.shared, name)(*args)
            except Exception as exc:  # redis.exceptions.* and OSError alike: never a traceback to a client
                self._lost(exc)
        return await getattr(self.memory, name)(*args)

    async def take(self, key: str, limit: int) -> float:
        return float(await self._call("take", key, limit))

    async def usage(self, keys: list[str]) -> list[int]:
        return list(await self._call("usage", keys))

    async def failed(self, key: str) -> int:
        return int(await self._call("failed", key))

    async def cool_down(self, key: str, seconds: float) -> None:
        await self._call("cool_down", key, seconds)

    async def cooling(self, keys: list[str]) -> dict[str, float]:
        return dict(await self._call("cooling", keys))

    async def ping(self) -> None:
        """Readiness: Redis unreachable is `degraded` (the server still serves), not an error."""

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):  # closing a connection to a server that is gone
            await self.shared.aclose()
