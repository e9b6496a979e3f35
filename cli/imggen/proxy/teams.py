"""What app.py hooks into for teams: the database (db.py), virtual keys (keys.py) and the spend log
(spend.py) opened together, the master key's management routes, and a request's budget estimate."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..catalog import estimate_cost
from ..errors import ConfigError
from ..settings import redact
from . import spend
from .db import Database, engine_url, open_database, shown_url
from .keys import Hold, Key, Keys, token_hash
from .router import ProxyError, Router
from .state import State

if TYPE_CHECKING:
    from starlette.requests import Request

    from .config import ProxyConfig

MANAGEMENT_ROUTES = [
    ("/key/generate", "POST"), ("/key/update", "POST"), ("/key/delete", "POST"), ("/key/info", "GET"),
    ("/key/list", "GET"), ("/spend/logs", "GET"), ("/global/spend/report", "GET"),
]  # fmt: skip


class Teams:
    def __init__(self, database: Database, state: State, router: Router) -> None:
        self.db = database
        self.keys = Keys(database, state)
        self.log = spend.SpendLog(database, self.keys)
        self.router = router
        self.last_cost: dict[str, float] = {}  # model name: the cost of its last answer here, per image

    @classmethod
    async def open(cls, config: ProxyConfig, state: State, router: Router) -> Teams:
        teams = cls(await connect(config.database_url), state, router)
        teams.log.start()
        teams.keys.start()
        return teams

    async def aclose(self) -> None:
        await self.log.aclose()
        await self.keys.aclose()  # after the last flush settled what the leases hold: they go back
        await self.db.aclose()

    async def admit(self, key: Key, model: str, n: Any, size: Any, quality: Any) -> Hold:
        return await self.keys.admit(key, model, self.estimate(model, n, size, quality))

    def estimate(self, model: str, n: Any, size: Any = None, quality: Any = None) -> float:
        """What a request will likely cost: the catalog's price for the model group's first deployment at
        the size and quality asked (else the model's defaults), else the last answer's cost here."""
        count = int(n) if isinstance(n, int | str) and str(n).isdigit() and 0 < int(n) <= 10 else 1
        try:
            group = self.router.groups[self.router.group_for(model)]
        except ProxyError:
            return 0.0
        info = group[0].settings.model.info
        size = size if isinstance(size, str) and size != "auto" else (info.default_size if info else None)
        quality = quality if isinstance(quality, str) else (info.default_quality if info else None)
        price = estimate_cost(info, count, size, quality)
        return price if price is not None else self.last_cost.get(group[0].group, 0.0) * count

    def record(
        self, call_id: str, request: Request, seen: Any, deployment: str, images: int, cost: float | None,
        status: int, started: float,
    ) -> None:  # fmt: skip
        latency = (time.perf_counter() - started) * 1000
        key: Key | None = seen.key
        self.keys.finished(seen.hold)
        if cost is not None and images and seen.model != "-":
            self.last_cost[seen.model] = cost / images
        self.log.add(spend.Record(
            call_id, time.time() - latency / 1000, request.url.path.rsplit("/", 1)[-1], seen.model, deployment,
            images, cost or 0.0, latency, status, seen.hold, key.token if key else None, key.key_alias if key else None,
        ))  # fmt: skip

    async def manage(self, request: Request) -> Any:
        path, query = request.url.path, request.query_params
        if request.method == "POST":
            body = await _body(request)
            if path == "/key/generate":
                return await self.keys.generate(body)
            if path == "/key/update":
                return await self.keys.update(body)
            return await self.keys.delete(body)
        if path == "/key/info":
            return await self.keys.info(query.get("key"))
        if path == "/key/list":
            return await self.keys.list(_int(query.get("page"), 1), _int(query.get("size"), 100))
        await self.log.flush()  # what this instance has waiting is in the answer too
        start = spend.parse_day(query.get("start_date"), "start_date")
        end = spend.parse_day(query.get("end_date"), "end_date", end=True)
        if path == "/spend/logs":
            key = query.get("api_key")
            return await spend.logs(self.db, start, end, token_hash(key) if key else None)
        return await spend.report(self.db, query.get("group_by") or "key", start, end)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ProxyError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProxyError(400, "the request body must be a JSON object")
    return body


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default


async def connect(url: str | None) -> Database:
    """The database, created or upgraded; a ConfigError naming it (without its password) when it cannot be."""
    try:
        return await open_database(url)
    except ConfigError:
        raise
    except Exception as exc:
        where = shown_url(engine_url(url))
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConfigError(f"cannot open the database at {where}: {reason}",
                          hint="Check general_settings.database_url and that the server is up.") from exc  # fmt: skip


async def check_database(url: str | None) -> None:
    """`imggen serve` before it listens: the database opens (and is upgraded), or one line and exit 3."""
    await (await connect(url)).aclose()


async def spend_report(url: str | None, by: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """`imggen serve spend`: the totals /global/spend/report gives, from the config's database."""
    try:
        start, end = spend.parse_day(since, "--since"), spend.parse_day(until, "--until", end=True)
    except ProxyError as exc:
        raise ValueError(exc.message) from exc
    database = await connect(url)
    try:
        return await spend.report(database, by, start, end)
    finally:
        await database.aclose()
