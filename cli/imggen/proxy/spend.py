"""The spend log: one row per images request (time, key alias, model, deployment, images, cost,
latency, status), written off the request path in batches, with each key's spend settled in the same
transaction (its cost added to the key's spend, what it held taken off this instance's budget lease:
keys.py); /spend/logs and /global/spend/report read it, and so does `imggen serve spend`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..settings import redact
from .db import Database, keys_table, spend_table
from .keys import Hold, Keys
from .router import ProxyError

FLUSH_SECONDS = 0.5  # a record reaches the database at most this long after its request ended …
BATCH = 500  # … or as soon as this many wait
GROUPS = ("key", "model", "day")


@dataclass
class Record:
    request_id: str
    time: float
    route: str
    model: str
    deployment: str
    images: int
    cost: float
    latency_ms: float
    status: int
    hold: Hold | None = None
    token: str | None = None
    key_alias: str | None = None


class SpendLog:
    def __init__(self, database: Database, keys: Keys | None = None) -> None:
        self.db = database
        self.keys = keys
        self.pending: list[Record] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def add(self, record: Record) -> None:
        """Queue a record (never waits): the writer task stores it."""
        self.pending.append(record)
        if len(self.pending) >= BATCH:
            self.wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), FLUSH_SECONDS)
            self.wake.clear()
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            await self._write(batch)
        except Exception as exc:  # the database away: keep the records for the next flush, say so once a batch
            self.pending[:0] = batch[-50_000:]
            sys.stderr.write(redact(f"imggen serve: cannot write the spend log: {exc}\n"))

    async def _write(self, batch: list[Record]) -> None:
        rows = [{"request_id": r.request_id, "time": r.time, "token": r.token, "key_alias": r.key_alias,
                 "route": r.route, "model": r.model[:200], "deployment": r.deployment[:200], "images": r.images,
                 "cost": r.cost, "latency_ms": r.latency_ms, "status": r.status} for r in batch]  # fmt: skip
        settle: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # token: [cost, held]
        for r in batch:
            if r.token:
                settle[r.token][0] += r.cost
                settle[r.token][1] += r.hold.estimate if r.hold else 0.0
        amounts: dict[str, float | None] = {}
        async with contextlib.AsyncExitStack() as stack:
            for lock in self.keys.locks(list(settle)) if self.keys else []:  # this instance's view of each lease
                await stack.enter_async_context(lock)
            started = time.monotonic()
            async with self.db.engine.begin() as conn:
                await conn.execute(spend_table.insert(), rows)
                for token, (cost, held) in sorted(settle.items()):  # one order: no deadlock between instances
                    if self.keys:
                        amounts[token] = await self.keys.settle(conn, token, cost, held)
                    else:
                        await conn.execute(keys_table.update().where(keys_table.c.token == token)
                                           .values(spend=keys_table.c.spend + cost))  # fmt: skip
            if self.keys:
                for token, (_, held) in settle.items():
                    self.keys.settled(token, held, amounts[token], started)

    async def aclose(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.flush()


def parse_day(text: str | None, name: str, end: bool = False) -> float | None:
    """YYYY-MM-DD (a whole UTC day; an end date includes its day) or an ISO time, as unix seconds."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return (day + timedelta(days=1 if end else 0)).timestamp()
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except ValueError as exc:
        raise ProxyError(400, f"'{name}' must be a date YYYY-MM-DD, not {text[:40]!r}", param=name) from exc


def _range(query: Any, start: float | None, end: float | None) -> Any:
    if start is not None:
        query = query.where(spend_table.c.time >= start)
    if end is not None:
        query = query.where(spend_table.c.time < end)
    return query


async def logs(db: Database, start: float | None, end: float | None, key: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
    """LiteLLM's /spend/logs rows (the fields imggen records), newest first."""
    query = _range(sa.select(spend_table), start, end).order_by(spend_table.c.time.desc()).limit(limit)
    if key:
        query = query.where(spend_table.c.token == key)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{
        "request_id": r.request_id, "startTime": _iso(r.time), "endTime": _iso(r.time + r.latency_ms / 1000),
        "api_key": r.token or "", "key_alias": r.key_alias, "call_type": r.route, "model": r.model,
        "model_id": r.deployment, "images": r.images, "spend": r.cost, "request_duration_ms": round(r.latency_ms, 1),
        "status": "success" if r.status < 400 else "failure", "status_code": r.status,
    } for r in rows]  # fmt: skip


async def report(db: Database, by: str, start: float | None, end: float | None) -> list[dict[str, Any]]:
    """Totals per key, model or UTC day over a range: requests, images and spend, largest spend first."""
    if by not in GROUPS:
        raise ProxyError(400, f"'group_by' must be one of {', '.join(GROUPS)}", param="group_by")
    columns = [spend_table.c.time, spend_table.c.key_alias, spend_table.c.token, spend_table.c.model,
               spend_table.c.images, spend_table.c.cost]  # fmt: skip
    async with db.engine.connect() as conn:
        rows = (await conn.execute(_range(sa.select(*columns), start, end))).all()
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        if by == "key":
            name = r.key_alias or (f"{r.token[:12]}…" if r.token else "master key")
        elif by == "model":
            name = r.model
        else:
            name = datetime.fromtimestamp(r.time, UTC).date().isoformat()
        entry = totals.setdefault(name, {by: name, "requests": 0, "images": 0, "spend": 0.0})
        entry["requests"] += 1
        entry["images"] += r.images
        entry["spend"] += r.cost
    ordered = sorted(totals.values(), key=lambda e: (e[by]) if by == "day" else (-e["spend"], e[by]))
    for entry in ordered:
        entry["spend"] = round(entry["spend"], 6)
    return ordered


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


def now() -> float:
    return time.time()
