"""Virtual keys as LiteLLM's proxy offers them: /key/generate, /key/info, /key/update, /key/delete,
/key/list for the master key; every image route for a virtual key within its models, rpm_limit,
max_budget (reset every budget_duration) and expiry.

Keys are `sk-` + 16 random bytes in URL-safe base64 (LiteLLM's format) and are stored as their SHA-256
(LiteLLM's `hash_token`); the key itself is shown once, in /key/generate's answer, and never logged.
A budget holds across instances: before a request is sent its estimated cost is reserved with one
conditional UPDATE that only succeeds while spend + reserved is under max_budget, and the reservation
is settled against the real cost after (spend.py, in batches)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .db import Database, dumps, keys_table
from .router import ProxyError
from .state import State

CACHE_SECONDS = 5.0  # a key read from the database is trusted this long (a delete here is seen at once)
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
    """What a request reserved against its key's budget, to be settled after."""

    key: Key
    estimate: float


class Keys:
    def __init__(self, database: Database, state: State) -> None:
        self.db = database
        self.state = state
        self.cache: dict[str, tuple[float, Key | None]] = {}

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
        """The model allowed, the rpm_limit, then the budget reserved; else LiteLLM's error."""
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
        table = keys_table
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                table.update()
                .where(table.c.token == key.token, table.c.spend + table.c.reserved < table.c.max_budget)
                .values(reserved=table.c.reserved + estimate)
            )
            if result.rowcount == 1:
                return Hold(key, estimate)
            row = (await conn.execute(sa.select(table.c.spend).where(table.c.token == key.token))).first()
        spend = float(row[0]) if row else key.spend
        raise ProxyError(
            422, f"Budget has been exceeded! Key={key.label} Current cost: {spend}, Max budget: {key.max_budget}",
            type="budget_exceeded",
        )  # fmt: skip

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
        self.cache.pop(hashed, None)
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
        if len(found) < len(set(hashes)) + len(set(aliases)):
            missing = len(set(hashes)) + len(set(aliases)) - len(found)
            if not found:
                raise ProxyError(404, f"{missing} of the keys given were not found", type="not_found_error")
        for hashed in found:
            self.cache.pop(hashed, None)
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
