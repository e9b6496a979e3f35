"""Virtual keys, budgets and the spend log of `imggen serve` (LiteLLM's /key/* and /spend/* routes), end
to end: real `imggen serve` processes on a real SQLite file and a real PostgreSQL server (pghelp.py),
the official openai client as the caller and the OpenAI fake as the upstream."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

import opentogether
from conftest import OPENAI_KEY, run_cli, wait_for
from fakeedits import png
from fakeserver import FakeProvider, Reply
from imggen.proxy import db as dbmod
from pghelp import PASSWORD, PostgresServer
from servehelp import MASTER_KEY, Served, deployment, free_port, proxy_config

IMAGES = "/v1/images/generations"
PRICE = 0.04  # dall-e-3, 1024x1024 standard: the catalog's price, the fake reports no usage


def config(fake: FakeProvider, database_url: str) -> dict[str, Any]:
    return proxy_config(
        deployment("dall-e-3", "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY),
        deployment("draw", "placeholder/default"),
        general_settings={"master_key": MASTER_KEY, "database_url": database_url},
    )


def manage(served: Served, path: str, body: dict[str, Any] | None = None, auth: str = MASTER_KEY,
           **params: Any) -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {auth}"}
    if body is None:
        return httpx.get(served.base + path, params=params, headers=headers, timeout=30)
    return httpx.post(served.base + path, json=body, headers=headers, timeout=30)


def generate_key(served: Served, **fields: Any) -> str:
    answer = manage(served, "/key/generate", fields)
    assert answer.status_code == 200, answer.text
    key = answer.json()["key"]
    assert key.startswith("sk-") and len(key) > 20
    return str(key)


def client(served: Served, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base + "/v1", api_key=key, max_retries=0)


def test_a_virtual_key_within_its_limits_on_a_sqlite_file(fake: FakeProvider, start: Any, tmp_path: Path) -> None:
    path = tmp_path / "proxy.db"
    served = start(config(fake, f"sqlite:///{path}"))
    key = generate_key(served, models=["dall-e-3", "draw"], key_alias="team-a", metadata={"team": "a"},
                       max_budget=10, budget_duration="30d", duration="7d")  # fmt: skip
    api = client(served, key)
    assert api.images.generate(model="dall-e-3", prompt="otter").data[0].b64_json
    image = ("otter.png", png(), "image/png")
    assert api.images.edit(model="draw", image=image, prompt="a hat").data[0].b64_json
    # info, list and update, as LiteLLM answers them
    info = manage(served, "/key/info", key=key).json()
    assert info["key"] == key and info["info"]["key_alias"] == "team-a" and info["info"]["metadata"] == {"team": "a"}
    assert info["info"]["token"] == hashlib.sha256(key.encode()).hexdigest() and info["info"]["expires"]
    listed = manage(served, "/key/list").json()
    assert listed["keys"] == [info["info"]["token"]] and listed["total_count"] == 1
    updated = manage(served, "/key/update", {"key": key, "models": ["draw"], "rpm_limit": 100})
    assert updated.status_code == 200 and updated.json()["models"] == ["draw"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        api.images.generate(model="dall-e-3", prompt="otter")
    assert denied.value.status_code == 403 and denied.value.body["type"] == "key_model_access_denied"  # type: ignore[index]
    # only the master key manages keys
    assert manage(served, "/key/generate", {}, auth=key).status_code == 401
    assert manage(served, "/key/list", auth=key).status_code == 401
    # stored hashed, never in clear; never logged
    time.sleep(0.8)  # the spend log's batch
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("proxy.db-*"))
    assert key.encode() not in raw and hashlib.sha256(key.encode()).hexdigest().encode() in raw
    assert key not in served.stderr()
    # deleted: refused at once on this instance
    assert manage(served, "/key/delete", {"keys": [key]}).json() == {"deleted_keys": [key]}
    with pytest.raises(openai.AuthenticationError):
        api.images.generate(model="draw", prompt="otter")


def test_budget_rpm_and_expiry_answer_as_litellm_does(fake: FakeProvider, start: Any, tmp_path: Path) -> None:
    served = start(config(fake, f"sqlite:///{tmp_path / 'proxy.db'}"))
    budget = client(served, generate_key(served, key_alias="small", max_budget=0.05))
    budget.images.generate(model="dall-e-3", prompt="one")
    budget.images.generate(model="dall-e-3", prompt="two")  # 0.04 spent or held: still under 0.05
    with pytest.raises(openai.UnprocessableEntityError) as over:
        budget.images.generate(model="dall-e-3", prompt="three")
    error = over.value.body
    assert over.value.status_code == 422 and error["type"] == "budget_exceeded"  # type: ignore[index]
    assert "Budget has been exceeded! Key=small" in error["message"]  # type: ignore[index]

    limited = client(served, generate_key(served, rpm_limit=1))
    limited.images.generate(model="draw", prompt="one")
    with pytest.raises(openai.RateLimitError) as fast:
        limited.images.generate(model="draw", prompt="two")
    assert fast.value.response.headers["retry-after"] and fast.value.body["type"] == "rate_limit_error"  # type: ignore[index]

    expiring = client(served, generate_key(served, duration="1s"))
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError) as expired:
        expiring.images.generate(model="draw", prompt="late")
    assert expired.value.body["type"] == "expired_key"  # type: ignore[index]
    assert manage(served, "/key/generate", {"duration": "soon"}).status_code == 400


def test_spend_log_report_and_command(fake: FakeProvider, start: Any, tmp_path: Path) -> None:
    path = tmp_path / "proxy.db"
    yaml_config = config(fake, f"sqlite:///{path}")
    served = start(yaml_config)
    key = generate_key(served, key_alias="team-b")
    client(served, key).images.generate(model="dall-e-3", prompt="otter", n=1)
    client(served, key).images.generate(model="draw", prompt="otter")
    client(served, MASTER_KEY).images.generate(model="dall-e-3", prompt="otter")
    logs = manage(served, "/spend/logs").json()
    assert len(logs) == 3 and {r["key_alias"] for r in logs} == {"team-b", None}
    first = next(r for r in logs if r["key_alias"] == "team-b" and r["model"] == "dall-e-3")
    assert first["spend"] == pytest.approx(PRICE) and first["images"] == 1 and first["status"] == "success"
    assert first["model_id"] and first["request_duration_ms"] >= 0
    by_model = manage(served, "/global/spend/report", group_by="model").json()
    assert {r["model"]: r["requests"] for r in by_model} == {"dall-e-3": 2, "draw": 1}
    by_key = manage(served, "/global/spend/report", group_by="key", start_date="2000-01-01").json()
    assert {r["key"]: round(r["spend"], 4) for r in by_key}["team-b"] == PRICE
    assert manage(served, "/global/spend/report", start_date="2000-01-01", end_date="2000-01-02").json() == []
    info = manage(served, "/key/info", key=key).json()["info"]
    assert info["spend"] == pytest.approx(PRICE)
    config_file = next(tmp_path.glob("proxy-*.yaml"))
    result = run_cli("serve", "spend", "--config", str(config_file), "--by", "model")
    assert result.code == 0, result.stderr
    assert "dall-e-3" in result.stdout and "0.0800" in result.stdout and "total" in result.stdout
    result = run_cli("serve", "spend", "-c", str(config_file), "--by", "day", "--since", "2000-01-01", "--json")
    assert result.code == 0 and '"requests": 3' in result.stdout


LEASE = "1.5"  # IMGGEN_KEY_LEASE_SECONDS for these tests: leases expire (and idle ones go back) in seconds


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database two `imggen serve` processes share: a SQLite file, or a private PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    server = PostgresServer(tmp_path)
    yield server.url
    server.stop()


def leases(url: str, token: str) -> list[tuple[str, float]]:
    """The key's budget leases in the database: (owner, amount)."""

    async def read() -> list[tuple[str, float]]:
        database = await dbmod.open_database(url)
        try:
            async with database.engine.connect() as conn:
                table = dbmod.leases_table
                rows = await conn.execute(sa.select(table.c.owner, table.c.amount).where(table.c.token == token))
                return [(r[0], float(r[1])) for r in rows]
        finally:
            await database.aclose()

    return asyncio.run(read())


def test_two_instances_hold_one_budget_and_a_killed_ones_lease_is_reclaimed(
    fake: FakeProvider, start: Any, shared_url: str
) -> None:
    """Issue 14 item 12 with leases (keys.py): two processes on one SQLite file or PostgreSQL server
    never admit more than the budget plus one in-flight request each; a SIGKILLed process's lease holds
    its budget only until it expires; a stopped (or idle) one gives its leases back."""
    env = {"DATABASE_URL": shared_url, "IMGGEN_KEY_LEASE_SECONDS": LEASE}
    shared = config(fake, "os.environ/DATABASE_URL")
    one, two = start(shared, env), start(shared, env)
    key = generate_key(one, key_alias="shared", max_budget=0.1)  # 3 images at 0.04: the third goes over
    token = hashlib.sha256(key.encode()).hexdigest()
    assert manage(two, "/key/info", key=key).status_code == 200

    def send(i: int) -> int:
        served = (one, two)[i % 2]
        return served.post({"model": "dall-e-3", "prompt": f"otter {i}"}, key=key).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(send, range(10)))
    assert statuses.count(200) == 3 and statuses.count(422) == 7, statuses
    wait_for(lambda: manage(two, "/key/info", key=key).json()["info"]["spend"] == pytest.approx(3 * PRICE), 15)
    wait_for(lambda: leases(shared_url, token) == [], 15)  # settled, then given back once idle

    # One image of budget; instance one leases it for a request the upstream answers slowly, and is killed.
    victim = generate_key(one, key_alias="victim", max_budget=0.04)
    fake.script("/images/generations", Reply(delay=3.0, default=True))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(one.post, {"model": "dall-e-3", "prompt": "slow"}, key=victim)
        wait_for(lambda: fake.in_flight == 1, 5)
        one.proc.kill()
        one.proc.wait(timeout=10)
        with pytest.raises(httpx.TransportError):
            pending.result()  # the process died with it
        answer = two.post({"model": "dall-e-3", "prompt": "while it holds"}, key=victim)  # within its lease's life
    assert answer.status_code == 422 and answer.json()["error"]["type"] == "budget_exceeded"
    token = hashlib.sha256(victim.encode()).hexdigest()
    held = leases(shared_url, token)
    assert len(held) == 1 and held[0][1] == pytest.approx(PRICE)  # the dead process's lease
    wait_for(lambda: two.post({"model": "dall-e-3", "prompt": "after"}, key=victim).status_code == 200, 15)
    assert [owner for owner, _ in leases(shared_url, token)] != [held[0][0]]
    assert two.post({"model": "dall-e-3", "prompt": "over"}, key=victim).status_code == 422
    # Stopped: what instance two holds goes back at once.
    two.stop()  # SIGTERM: uvicorn ends the lifespan, then exits by the signal
    assert leases(shared_url, token) == []
    assert PASSWORD not in one.stderr() + two.stderr()  # PostgreSQL's password


def test_a_bad_database_is_one_line_without_its_password(fake: FakeProvider, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config(fake, "postgresql://imggen:secret-pw-9876@127.0.0.1:1/x")))
    result = run_cli("serve", "--config", str(path), "--port", str(free_port()), timeout=60)
    assert result.code != 0 and "cannot open the database" in result.stderr
    assert "secret-pw-9876" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_schema_upgrade_keeps_keys(kind: str, tmp_path: Path) -> None:
    """v1 → v3 keeps keys; v2's ownerless holds (`reserved`, never cleared when their process died)
    become one lease per key that expires."""
    server = PostgresServer(tmp_path) if kind == "postgresql" else None
    url = server.url if server else f"sqlite:///{tmp_path / 'old.db'}"
    row = {"token": "a" * 64, "key_name": "sk-...abcd", "models": "[]", "metadata": "{}", "spend": 1.5,
           "created_at": 1.0, "updated_at": 1.0}  # fmt: skip

    async def run() -> None:
        old = await dbmod.open_database(url, upgrade_to=1)
        assert await dbmod.schema_version(old) == 1
        async with old.engine.begin() as conn:
            columns = {c.name for c in dbmod.keys_table.columns if c.name != "reserved"}
            await conn.execute(sa.text(f"INSERT INTO imggen_keys ({', '.join(row)}) VALUES "
                                       f"({', '.join(':' + k for k in row)})"), row)  # fmt: skip
            assert set(row) <= columns
        await old.aclose()
        v2 = await dbmod.open_database(url, upgrade_to=2)
        async with v2.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE imggen_keys SET reserved = 0.25"))
        await v2.aclose()
        new = await dbmod.open_database(url)
        assert await dbmod.schema_version(new) == dbmod.VERSION == 3
        async with new.engine.connect() as conn:
            kept = (await conn.execute(sa.select(dbmod.keys_table))).one()
            lease = (await conn.execute(sa.select(dbmod.leases_table))).one()
        assert kept.spend == 1.5 and kept.reserved == 0
        assert lease.token == "a" * 64 and lease.owner == dbmod.PRE_V3_OWNER and lease.amount == 0.25
        assert time.time() < lease.expires <= time.time() + dbmod.PRE_V3_SECONDS
        await new.aclose()

    try:
        asyncio.run(run())
    finally:
        if server:
            server.stop()
    if kind == "sqlite":
        assert sqlite3.connect(tmp_path / "old.db").execute("SELECT version FROM imggen_schema").fetchall() == [(3,)]


def test_instances_starting_together_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    """Four proxies opening one new SQLite database at the same instant: one creates the schema, the
    others wait for its write lock and find it made (before, most failed with "table imggen_schema
    already exists" or "duplicate column name"), and none is refused the switch to WAL."""
    assert opentogether.failures("proxy", 10, tmp_path) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_leases_never_admit_more_than_the_budget_and_one_request_per_instance(seed: int, tmp_path: Path) -> None:
    """The bound keys.py argues, in process: three instances (three owners, three connection pools on
    one SQLite file) admit 150 concurrent requests of random cost and latency against one budget, their
    spend logs settling at random moments; what they admit never exceeds the budget by more than one
    request per instance (and leave little of it unspent)."""
    import random

    from imggen.proxy.keys import Keys
    from imggen.proxy.router import ProxyError
    from imggen.proxy.spend import Record, SpendLog
    from imggen.proxy.state import MemoryState

    rng = random.Random(seed)
    budget, most = 0.5, 0.05

    async def run() -> tuple[float, float]:
        url = f"sqlite:///{tmp_path / 'bound.db'}"
        databases = [await dbmod.open_database(url) for _ in range(3)]
        instances = [Keys(database, MemoryState()) for database in databases]
        logs = [SpendLog(database, keys) for database, keys in zip(databases, instances, strict=True)]
        token = (await instances[0].generate({"max_budget": budget}))["key"]
        admitted: list[float] = []

        async def request(i: int) -> None:
            keys, log = instances[i % 3], logs[i % 3]
            key = await keys.lookup(token)
            assert key is not None
            cost = rng.uniform(0.001, most)
            await asyncio.sleep(rng.uniform(0, 0.05))
            try:
                hold = await keys.admit(key, "m", cost)
            except ProxyError as exc:
                assert exc.status == 422
                return
            admitted.append(cost)
            await asyncio.sleep(rng.uniform(0, 0.02))
            keys.finished(hold)
            log.add(Record(str(i), time.time(), "generations", "m", "d", 1, cost, 1.0, 200, hold, key.token, None))
            if rng.random() < 0.1:
                await log.flush()

        await asyncio.gather(*(request(i) for i in range(150)))
        for log in logs:
            await log.flush()
        async with databases[0].engine.connect() as conn:
            spend = (await conn.execute(sa.select(dbmod.keys_table.c.spend))).scalar()
        for keys, database in zip(instances, databases, strict=True):
            await keys.aclose()
            await database.aclose()
        return sum(admitted), float(spend or 0)

    admitted, spend = asyncio.run(run())
    assert spend == pytest.approx(admitted)
    assert budget * 0.8 <= admitted <= budget + 3 * most, admitted


def test_a_lowered_budget_is_asked_of_the_database_before_the_next_request(tmp_path: Path) -> None:
    """/key/update on this instance drops its lease's validity: the next request leases again, finds
    the lower budget (what it leased beyond it is given back) and is refused."""
    from imggen.proxy.keys import Keys
    from imggen.proxy.router import ProxyError
    from imggen.proxy.state import MemoryState

    async def run() -> None:
        database = await dbmod.open_database(f"sqlite:///{tmp_path / 'update.db'}")
        keys = Keys(database, MemoryState())
        token = (await keys.generate({"max_budget": 1.0}))["key"]
        key = await keys.lookup(token)
        assert key is not None
        holds = [await keys.admit(key, "m", 0.01) for _ in range(3)]
        await asyncio.gather(*keys.refills)
        await keys.update({"key": token, "max_budget": 0.02})
        key = await keys.lookup(token)
        assert key is not None and key.max_budget == 0.02
        with pytest.raises(ProxyError) as refused:
            await keys.admit(key, "m", 0.01)
        assert refused.value.status == 422
        lease = keys.leases[key.token]
        assert lease.granted == pytest.approx(0.02) and lease.held == pytest.approx(0.03)  # the rest went back
        for hold in holds:
            keys.finished(hold)
        await keys.aclose()
        await database.aclose()

    asyncio.run(run())
