"""Virtual keys as LiteLLM's proxy offers them: /key/generate, /key/info, /key/update, /key/delete,
/key/list for the master key; every image route for a virtual key within its models, rpm_limit,
max_budget (reset every budget_duration) and expiry.

Keys are `sk-` + 16 random bytes in URL-safe base64 (LiteLLM's format) and are stored as their SHA-256
(LiteLLM's `hash_token`); the key itself is shown once, in /key/generate's answer, and never logged.
A key read from the database is cached for CACHE_SECONDS (dropped at once on this instance's
/key/update and /key/delete; another instance's change is seen within that time); rpm_limit is counted
in the router's state (memory, or Redis shared by the instances).

Budgets: leases, not a database write per request
-------------------------------------------------
Each instance leases a block of a key's remaining budget from the database (a row of `imggen_leases`:
key, owner = a random id per process, amount in USD, expiry) and admits requests against it in memory:
a request holds its estimated cost (`Teams.estimate`) of the lease until the spend log (spend.py)
settles it, in the same transaction that adds its real cost to the key's spend. The database is asked
only when the lease is used up or about to expire, so a busy key costs one transaction per block of
requests instead of one per request.

Every change to a key's leases (lease, settle, renew, return, reclaim) first updates the key's row,
which locks it (PostgreSQL's row lock; SQLite's one writer), so for one key these changes are one after
the other on every instance.
A lease is granted only while `spend + leases < max_budget`, and never more than that difference:

    granted = min(estimate × N, max_budget − spend − leases),  N = LEASE_ROUNDS × (this instance's
                                        requests in flight on the key + 1), at most LEASE_REQUESTS

So the leases and the settled spend never add up to more than max_budget. Locally, a request is
admitted while its instance's lease has something left (`granted − held > 0`); only the request that
finds less than its estimate left can go past it, and after it the instance admits nothing more until
a new lease covers that excess first. Hence the bound issue 14 item 12 asks for, across any number of
instances: the spend of a key never exceeds its budget by more than one in-flight request per
instance (each over by less than its own estimate), plus what the estimates miss of the real costs.
The block is sized by the requests in flight on this instance (N): what one instance holds unused
(and another instance cannot spend meanwhile) is at most what its in-flight requests will need in the
next LEASE_ROUNDS rounds (their holds are released when the spend log settles them, every
FLUSH_SECONDS, so a smaller block would send a busy key to the database every few requests);
after a /key/update that lowers a budget, each other instance admits at most its current block
before it asks the database again.

Leases expire: LEASE_SECONDS (30; `IMGGEN_KEY_LEASE_SECONDS` sets it, e.g. for tests) after they were
granted or last renewed. A live instance renews its leases once a quarter of that time has passed
(each spend-log batch that settles a key renews its lease too), gives back a lease it has not used for
LEASE_IDLE seconds, and returns all of them when it stops (SIGTERM, after the last spend-log batch).
A lease whose owner died (SIGKILL, a lost machine) is reclaimed by the next instance that needs room
on that key once it has expired, so a dead process holds nothing longer than LEASE_SECONDS. An
instance only uses its own lease until its local clock says it expired (less a margin), so instances'
clocks may differ by up to that margin (LEASE_SECONDS / 4) without a lease being used after another
instance reclaimed it; if one stalls longer than that (a lease reclaimed under it), its requests in
flight are again the most a key can go over.

SQLite: one writer at a time, so two processes on one file serialise these transactions (a busy
writer is waited for up to 30 s). PostgreSQL: READ COMMITTED, the key's row lock orders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..settings import redact
from .db import Database, dumps, keys_table, leases_table
from .router import ProxyError
from .state import State

CACHE_SECONDS = 5.0  # a key read from the database is trusted this long (a delete here is seen at once)
LEASE_SECONDS = 30.0  # a budget lease's life, renewed while it is used (IMGGEN_KEY_LEASE_SECONDS)
LEASE_IDLE = 2.0  # a lease not used this long is given back (at most LEASE_SECONDS / 4)
LEASE_REQUESTS = 64  # the most requests one lease is sized for
LEASE_ROUNDS = 4  # a lease covers this many rounds of the requests in flight on the key
SMALLEST = 1e-6  # USD: what a request of unknown price holds, so even those are counted against a lease
EPSILON = 1e-9  # USD: less than this left of a lease or a budget is nothing left
DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 30 * 86400}
FIELDS = ("key_alias", "models", "rpm_limit", "max_budget", "budget_duration", "duration", "metadata", "spend")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def abbreviate(token: str) -> str:
    return f"sk-...{token[-4:]}" if len(token) >= 8 else "sk-..."


def seconds(duration: str, name: str) -> float:
    """LiteLLM's durations: 30s, 30m, 30h, 30d, 2w, 1mo (30 days here)."""
    match = DURATION.match(str(duration))
    if not match or int(match[1]) <= 0:
        raise ProxyError(400, f"'{name}' must be a duration such as 30s, 30m, 30h, 30d, 2w or 1mo, not "
                         f"{str(duration)[:40]!r}", param=name)  # fmt: skip
    return int(match[1]) * UNIT_SECONDS[match[2]]


@dataclass
class Key:
    """One virtual key's row, as cached."""

    token: str  # the hash
    key_name: str
    key_alias: str | None
    models: list[str]
    rpm_limit: int | None
    max_budget: float | None
    spend: float
    budget_duration: str | None
    budget_reset_at: float | None
    expires: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: Any) -> Key:
        m = row._mapping
        return cls(
            m["token"], m["key_name"], m["key_alias"], json.loads(m["models"] or "[]"), m["rpm_limit"],
            m["max_budget"], float(m["spend"] or 0), m["budget_duration"], m["budget_reset_at"], m["expires"],
            json.loads(m["metadata"] or "{}"), m["created_at"], m["updated_at"],
        )  # fmt: skip

    def info(self) -> dict[str, Any]:
        """LiteLLM's /key/info `info` object (the fields imggen has)."""
        return {
            "token": self.token, "key_name": self.key_name, "key_alias": self.key_alias, "spend": self.spend,
            "max_budget": self.max_budget, "models": self.models, "rpm_limit": self.rpm_limit,
            "budget_duration": self.budget_duration, "budget_reset_at": _iso(self.budget_reset_at),
            "expires": _iso(self.expires), "metadata": self.metadata, "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }  # fmt: skip

    @property
    def label(self) -> str:
        return self.key_alias or self.key_name


@dataclass
class Hold:
    """What a request holds of its key's budget (of this instance's lease), to be settled after."""

    key: Key
    estimate: float  # 0 when the key has no max_budget
    lease: Lease | None = None  # until the request answered


@dataclass
class Lease:
    """This instance's lease of one key's budget, as it stands in `imggen_leases` (`granted`), and
    what requests admitted here hold of it until the spend log settles them (`held`)."""

    granted: float = 0.0  # the lease row's amount, as last written or read here
    held: float = 0.0
    until: float = 0.0  # monotonic: usable until then (the row's expiry less a margin); 0: ask the database
    owned: bool = False  # the row exists, as far as this instance knows
    inflight: int = 0  # requests admitted here that have not answered yet
    used: float = 0.0  # monotonic: the last admission
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def usable(self, now: float) -> bool:
        return self.granted - self.held > EPSILON and now < self.until

    def lost(self) -> None:
        """No row any more (given back, or reclaimed by another instance): lease again when needed."""
        self.granted, self.until, self.owned = 0.0, 0.0, False


def lease_seconds() -> float:
    """LEASE_SECONDS, or IMGGEN_KEY_LEASE_SECONDS when set (at least 0.2 s)."""
    text = os.environ.get("IMGGEN_KEY_LEASE_SECONDS", "").strip()
    try:
        return max(0.2, float(text)) if text else LEASE_SECONDS
    except ValueError:
        return LEASE_SECONDS


class Keys:
    def __init__(self, database: Database, state: State) -> None:
        self.db = database
        self.state = state
        self.cache: dict[str, tuple[float, Key | None]] = {}
        self.owner = uuid.uuid4().hex  # this process, as the owner of its leases
        self.ttl = lease_seconds()
        self.idle = min(LEASE_IDLE, self.ttl / 4)
        self.leases: dict[str, Lease] = {}  # key hash: this instance's lease
        self.task: asyncio.Task[None] | None = None
        self.refills: set[asyncio.Task[None]] = set()
        self.warned = False

    def start(self) -> None:
        self.task = asyncio.create_task(self._keep())

    async def aclose(self) -> None:
        """Stop renewing and give back every lease (after the spend log's last flush settled them)."""
        for task in [self.task, *self.refills]:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for token, lease in sorted(self.leases.items()):
            with contextlib.suppress(Exception):  # the database away: the leases expire
                await self._give_back(token, lease)
        self.leases.clear()

    # --- the request path -------------------------------------------------------------------------
    async def lookup(self, token: str) -> Key | None:
        hashed = hash_token(token)
        now = time.monotonic()
        cached = self.cache.get(hashed)
        if cached and cached[0] > now:
            return cached[1]
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sa.select(keys_table).where(keys_table.c.token == hashed))).first()
        key = Key.from_row(row) if row else None
        if len(self.cache) > 10000:
            self.cache.clear()
        self.cache[hashed] = (now + CACHE_SECONDS, key)
        return key

    def check(self, key: Key, token: str) -> None:
        """Expiry, as LiteLLM answers it (401 expired_key)."""
        if key.expires is not None and key.expires < time.time():
            raise ProxyError(
                401, f"Authentication Error - Expired Key. Key Expiry time {_iso(key.expires)} and current time "
                f"{_iso(time.time())}", type="expired_key", param=abbreviate(token),
            )  # fmt: skip

    async def admit(self, key: Key, model: str, estimate: float) -> Hold:
        """The model allowed, the rpm_limit, then the budget held of this instance's lease; else LiteLLM's error."""
        if key.models and model not in key.models and "all-proxy-models" not in key.models:
            raise ProxyError(
                403, f"The requested model '{model}' is not available for this API key, or the model name is "
                "invalid. Check the models available to you and try again.", type="key_model_access_denied",
                param="model",
            )  # fmt: skip
        if key.rpm_limit is not None:
            wait = await self.state.take(f"key:{key.token}", key.rpm_limit)
            if wait > 0:
                resets = datetime.fromtimestamp(time.time() + wait, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                raise ProxyError(
                    429, f"Rate limit exceeded for api_key: {key.token}. Limit type: requests. Current limit: "
                    f"{key.rpm_limit}, Remaining: 0. Limit resets at: {resets}", type="rate_limit_error",
                    retry_after=wait,
                )  # fmt: skip
        if key.max_budget is None:
            return Hold(key, 0.0)
        if key.budget_reset_at is not None and key.budget_reset_at <= time.time():
            await self._reset_budget(key)
        estimate = max(estimate, SMALLEST)
        lease = self.leases.get(key.token)
        if lease is None:
            lease = self.leases[key.token] = Lease()
        if not lease.usable(time.monotonic()):
            async with lease.lock:
                if not lease.usable(time.monotonic()):
                    spend = await self._lease(key, lease, estimate)
                    if not lease.usable(time.monotonic()):
                        raise ProxyError(
                            422, f"Budget has been exceeded! Key={key.label} Current cost: {spend}, Max budget: "
                            f"{key.max_budget}", type="budget_exceeded",
                        )  # fmt: skip
        lease.held += estimate
        lease.inflight += 1
        lease.used = time.monotonic()
        if lease.granted - lease.held < estimate * (lease.inflight + 1) / 2 and not lease.lock.locked():
            self._refill(key, lease, estimate)  # ahead of need: requests seldom wait for the database
        return Hold(key, estimate, lease)

    def _refill(self, key: Key, lease: Lease, estimate: float) -> None:
        async def refill() -> None:
            with contextlib.suppress(Exception):  # the request path leases again, and says why
                async with lease.lock:
                    if lease.granted - lease.held < estimate * (lease.inflight + 1) / 2:
                        await self._lease(key, lease, estimate)

        task = asyncio.create_task(refill())
        self.refills.add(task)
        task.add_done_callback(self.refills.discard)

    def finished(self, hold: Hold | None) -> None:
        """A request answered: no longer in flight (what it holds stays held until it is settled)."""
        if hold is not None and hold.lease is not None:
            hold.lease.inflight = max(0, hold.lease.inflight - 1)
            hold.lease = None

    async def _lease(self, key: Key, lease: Lease, estimate: float) -> float:
        """Under the key's row lock: reclaim its expired leases, then lease min(estimate × N, what is left
        of the budget) to this instance. Returns the key's spend (for the 422's message)."""
        want = estimate * min(LEASE_REQUESTS, LEASE_ROUNDS * (lease.inflight + 1))
        started, now = time.monotonic(), time.time()
        token, mine = key.token, _mine(key.token, self.owner)
        async with self.db.engine.begin() as conn:
            await _lock(conn, token)
            live = sa.and_(leases_table.c.token == token, leases_table.c.expires >= now)
            total = sa.select(sa.func.coalesce(sa.func.sum(leases_table.c.amount), 0.0)).where(live).scalar_subquery()
            own = sa.select(leases_table.c.amount).where(mine, leases_table.c.expires >= now).scalar_subquery()
            dead = sa.select(sa.func.count()).where(leases_table.c.token == token, leases_table.c.expires < now)
            row = (await conn.execute(
                sa.select(keys_table.c.spend, keys_table.c.max_budget, total, own, dead.scalar_subquery())
                .where(keys_table.c.token == token)
            )).first()  # fmt: skip
            if row is None:  # deleted by another instance
                self.cache.pop(token, None)
                raise ProxyError(401, "Authentication Error - Invalid proxy server token passed. The key was deleted.",
                                 type="auth_error")  # fmt: skip
            if row[4]:  # reclaim the expired leases (dead or stalled instances', or this one's)
                await conn.execute(leases_table.delete().where(leases_table.c.token == token,
                                                               leases_table.c.expires < now))  # fmt: skip
            spend, budget, leased, held_here = float(row[0] or 0), row[1], float(row[2]), row[3]
            key.spend, key.max_budget = spend, budget
            room = float("inf") if budget is None else budget - spend - leased
            grant = min(want, room) if room > EPSILON else 0.0
            amount = (float(held_here) if held_here is not None else 0.0) + grant
            if room < -EPSILON:  # more leased than the budget has left (lowered by /key/update): give back
                amount = max(0.0, amount + room)
            if held_here is not None:
                await conn.execute(leases_table.update().where(mine).values(amount=amount, expires=now + self.ttl))
            elif grant > 0:
                await conn.execute(leases_table.insert().values(token=token, owner=self.owner, amount=amount,
                                                                expires=now + self.ttl))  # fmt: skip
        lease.granted = amount
        lease.owned = held_here is not None or grant > 0
        lease.until = self._usable_until(started) if lease.owned else 0.0
        return spend

    async def settle(self, conn: Any, token: str, cost: float, held: float) -> float | None:
        """In the spend log's transaction: a key's settled requests' cost added to its spend, and what
        they held taken off this instance's lease (renewed). Returns the lease's amount after (None: no lease)."""
        await conn.execute(
            keys_table.update().where(keys_table.c.token == token).values(spend=keys_table.c.spend + cost)
        )  # the row lock first, as every change to a key's leases takes it
        if held <= 0:
            return None
        amount = sa.case((leases_table.c.amount < held, 0.0), else_=leases_table.c.amount - held)
        result = await conn.execute(
            leases_table.update().where(_mine(token, self.owner))
            .values(amount=amount, expires=time.time() + self.ttl).returning(leases_table.c.amount)
        )  # fmt: skip
        left = result.scalar()
        return None if left is None else float(left)

    def settled(self, token: str, held: float, amount: float | None, started: float) -> None:
        """After the spend log's transaction committed: this instance's view of the lease follows it."""
        lease = self.leases.get(token)
        if lease is None or held <= 0:
            return
        lease.held = lease.held - held if lease.held - held > EPSILON else 0.0
        if amount is None:
            lease.lost()  # reclaimed
        else:
            lease.granted = amount
            lease.until = max(lease.until, self._usable_until(started))

    def locks(self, tokens: list[str]) -> list[asyncio.Lock]:
        """The leases' locks the spend log takes (in one order) while it settles those keys."""
        return [self.leases[t].lock for t in sorted(tokens) if t in self.leases]

    async def _give_back(self, token: str, lease: Lease) -> None:
        """Give this instance's lease of a key back (its unused amount returns to the budget); called
        with nothing held of it, under its lock (or at the end)."""
        if not lease.owned:
            return  # no row: never leased, given back already, or reclaimed
        async with self.db.engine.begin() as conn:
            await _lock(conn, token)
            await conn.execute(leases_table.delete().where(_mine(token, self.owner)))
        lease.lost()

    async def _renew(self, token: str, lease: Lease) -> None:
        started = time.monotonic()
        async with self.db.engine.begin() as conn:
            await _lock(conn, token)
            result = await conn.execute(
                leases_table.update().where(_mine(token, self.owner)).values(expires=time.time() + self.ttl)
            )
        if result.rowcount == 1:
            lease.until = self._usable_until(started)
        else:  # reclaimed meanwhile (this process stalled longer than its lease)
            lease.lost()

    def _usable_until(self, started: float) -> float:
        """Until when (monotonic) a lease written at `started` is used here: its expiry less a quarter of
        its life, the margin for instances' clocks (the module's docstring)."""
        return started + self.ttl * 0.75

    async def _keep(self) -> None:
        """Renew the leases held once a quarter of their life passed; give back the ones not used lately."""
        tick = min(0.5, self.ttl / 8)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for token, lease in list(self.leases.items()):
                try:
                    async with lease.lock:
                        if self.leases.get(token) is not lease:
                            continue
                        if lease.held <= EPSILON and lease.inflight == 0 and now - lease.used > self.idle:
                            await self._give_back(token, lease)
                        elif lease.owned and lease.until and lease.until - now < self.ttl / 2:
                            await self._renew(token, lease)
                except Exception as exc:  # the database away: the lease runs out locally, and in the database
                    if not self.warned:
                        self.warned = True
                        sys.stderr.write(redact(f"imggen serve: cannot renew a budget lease: {exc}\n"))

    def forget(self, token: str) -> None:
        """After /key/update: this instance asks the database before admitting again on the key."""
        self.cache.pop(token, None)
        lease = self.leases.get(token)
        if lease is not None:
            lease.until = 0.0

    async def _reset_budget(self, key: Key) -> None:
        """Spend back to 0 once budget_reset_at passed; the one instance whose UPDATE matches does it."""
        assert key.budget_duration is not None and key.budget_reset_at is not None
        now = time.time()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                keys_table.update()
                .where(keys_table.c.token == key.token, keys_table.c.budget_reset_at <= now)
                .values(spend=0.0, budget_reset_at=now + seconds(key.budget_duration, "budget_duration"))
            )
        self.cache.pop(key.token, None)

    # --- management (master key only) -------------------------------------------------------------
    async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        values = _values(body, creating=True)
        token = body.get("key") or f"sk-{secrets.token_urlsafe(16)}"
        if not isinstance(token, str) or not token.startswith("sk-") or len(token) < 8:
            raise ProxyError(400, "'key' must start with 'sk-' and be at least 8 characters", param="key")
        now = time.time()
        row = {"token": hash_token(token), "key_name": abbreviate(token), "models": "[]", "metadata": "{}",
               "spend": 0.0, "reserved": 0.0, "created_at": now, "updated_at": now, **values}  # fmt: skip
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(keys_table.insert().values(**row))
        except sa.exc.IntegrityError as exc:
            raise ProxyError(400, "a key with this key_alias (or this key) already exists", param="key_alias") from exc
        key = await self._get(row["token"])
        return {**key.info(), "key": token, "token_id": key.token}

    async def info(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise ProxyError(400, "'key' is required: /key/info?key=sk-…", param="key")
        key = await self._get(token_hash(token))
        return {"key": token, "info": key.info()}

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("key")
        if not isinstance(token, str) or not token:
            raise ProxyError(400, "'key' is required", param="key")
        hashed = token_hash(token)
        await self._get(hashed)
        values = _values(body, creating=False)
        if values:
            try:
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        keys_table.update().where(keys_table.c.token == hashed).values(**values, updated_at=time.time())
                    )
            except sa.exc.IntegrityError as exc:
                raise ProxyError(400, "a key with this key_alias already exists", param="key_alias") from exc
        self.forget(hashed)
        key = await self._get(hashed)
        return {**key.info(), "key": token}

    async def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        tokens, aliases = body.get("keys") or [], body.get("key_aliases") or []
        if not isinstance(tokens, list) or not isinstance(aliases, list) or not (tokens or aliases):
            raise ProxyError(400, "At least one of 'keys' or 'key_aliases' must be provided.", param="keys")
        hashes = [token_hash(str(t)) for t in tokens]
        condition = sa.or_(keys_table.c.token.in_(hashes), keys_table.c.key_alias.in_([str(a) for a in aliases]))
        async with self.db.engine.begin() as conn:
            found = [r[0] for r in await conn.execute(sa.select(keys_table.c.token).where(condition))]
            await conn.execute(keys_table.delete().where(condition))
            await conn.execute(leases_table.delete().where(leases_table.c.token.in_(found)))
        if len(found) < len(set(hashes)) + len(set(aliases)):
            missing = len(set(hashes)) + len(set(aliases)) - len(found)
            if not found:
                raise ProxyError(404, f"{missing} of the keys given were not found", type="not_found_error")
        for hashed in found:
            self.cache.pop(hashed, None)
            self.leases.pop(hashed, None)
        return {"deleted_keys": tokens or aliases}

    async def list(self, page: int = 1, size: int = 100) -> dict[str, Any]:
        page, size = max(1, page), min(max(1, size), 1000)
        async with self.db.engine.connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(keys_table))).scalar() or 0
            rows = await conn.execute(
                sa.select(keys_table.c.token).order_by(keys_table.c.created_at).offset((page - 1) * size).limit(size)
            )
            tokens = [r[0] for r in rows]
        return {"keys": tokens, "total_count": total, "current_page": page,
                "total_pages": max(1, -(-total // size))}  # fmt: skip

    async def _get(self, hashed: str) -> Key:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sa.select(keys_table).where(keys_table.c.token == hashed))).first()
        if row is None:
            raise ProxyError(404, "Key not found", type="not_found_error", param="key")
        return Key.from_row(row)


def _mine(token: str, owner: str) -> Any:
    return sa.and_(leases_table.c.token == token, leases_table.c.owner == owner)


async def _lock(conn: Any, token: str) -> None:
    """The key's row locked for this transaction (a write: PostgreSQL's row lock, SQLite's write lock).
    (`reserved`, schema v2's sum of holds, is 0 since v3 moved it into a lease.)"""
    await conn.execute(keys_table.update().where(keys_table.c.token == token).values(reserved=keys_table.c.reserved))


def token_hash(token: str) -> str:
    """A key as given (sk-…) or already as its hash (what /key/list returns), as LiteLLM takes both."""
    return token if re.fullmatch(r"[0-9a-f]{64}", token) else hash_token(token)


def _values(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The key fields a /key/generate or /key/update body sets, checked."""
    values: dict[str, Any] = {}
    now = time.time()
    if body.get("key_alias") is not None:
        values["key_alias"] = _text(body["key_alias"], "key_alias")
    if body.get("models") is not None:
        models = body["models"]
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ProxyError(400, "'models' must be a list of model names", param="models")
        values["models"] = dumps(models)
    if "rpm_limit" in body and (body["rpm_limit"] is not None or not creating):
        values["rpm_limit"] = _number(body["rpm_limit"], "rpm_limit", whole=True)
    if "max_budget" in body and (body["max_budget"] is not None or not creating):
        values["max_budget"] = _number(body["max_budget"], "max_budget")
    if body.get("budget_duration") is not None:
        duration = str(body["budget_duration"])
        values["budget_duration"] = duration
        values["budget_reset_at"] = now + seconds(duration, "budget_duration")
    if body.get("duration") is not None:
        values["expires"] = now + seconds(str(body["duration"]), "duration")
    if body.get("metadata") is not None:
        if not isinstance(body["metadata"], dict):
            raise ProxyError(400, "'metadata' must be an object", param="metadata")
        values["metadata"] = dumps(body["metadata"])
    if not creating and body.get("spend") is not None:
        values["spend"] = _number(body["spend"], "spend")
    return values


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ProxyError(400, f"'{name}' must be a string of 1 to 200 characters", param=name)
    return value


def _number(value: Any, name: str, whole: bool = False) -> Any:
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 and value == value
    if not ok or (whole and not float(value).is_integer()) or value == float("inf"):
        kind = "a whole number" if whole else "a number"
        raise ProxyError(400, f"'{name}' must be {kind} ≥ 0 or null", param=name)
    return int(value) if whole else float(value)


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat()
