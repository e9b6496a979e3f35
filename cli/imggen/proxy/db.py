"""The proxy's database: virtual keys and the spend log, shared by every instance that names it.

SQLAlchemy Core on an async driver: SQLite (aiosqlite) by default, a file in the user data directory
or `general_settings.database_url: sqlite:///path`; PostgreSQL (asyncpg) for a `postgresql://` URL.
The schema carries its version in `imggen_schema`; `open_database` upgrades an older one in place.
Version 3 adds `imggen_leases`: the budget each instance holds of a key, with an owner and an expiry
(keys.py explains the leases); v2's `imggen_keys.reserved` (holds without an owner, never cleared
when their process died) becomes one expiring lease per key and is 0 from then on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import ConfigError
from ..privatedb import BUSY_TIMEOUT, set_wal

metadata = sa.MetaData()
schema_table = sa.Table("imggen_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
keys_table = sa.Table(
    "imggen_keys", metadata,
    sa.Column("token", sa.String(64), primary_key=True),  # sha256 of the key, as LiteLLM stores it
    sa.Column("key_name", sa.String(32), nullable=False),  # sk-...abcd
    sa.Column("key_alias", sa.String(200), unique=True),
    sa.Column("models", sa.Text, nullable=False, default="[]"),  # JSON list; empty = every model
    sa.Column("rpm_limit", sa.Integer),
    sa.Column("max_budget", sa.Float),
    sa.Column("spend", sa.Float, nullable=False, default=0.0),
    sa.Column("reserved", sa.Float, nullable=False, default=0.0),  # v2's holds; 0 since v3 (imggen_leases)
    sa.Column("budget_duration", sa.String(20)),
    sa.Column("budget_reset_at", sa.Float),  # unix seconds
    sa.Column("expires", sa.Float),  # unix seconds
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)  # fmt: skip
spend_table = sa.Table(
    "imggen_spend", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("time", sa.Float, nullable=False),  # unix seconds, when the request started
    sa.Column("token", sa.String(64)),  # the key's hash; null for the master key
    sa.Column("key_alias", sa.String(200)),
    sa.Column("route", sa.String(40), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("deployment", sa.String(200), nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
)  # fmt: skip

leases_table = sa.Table(
    "imggen_leases", metadata,
    sa.Column("token", sa.String(64), primary_key=True),  # the key's hash
    sa.Column("owner", sa.String(64), primary_key=True),  # the instance holding it (a random id per process)
    sa.Column("amount", sa.Float, nullable=False),  # USD of the key's budget this instance may spend
    sa.Column("expires", sa.Float, nullable=False),  # unix seconds: after it, any instance reclaims the lease
)  # fmt: skip
PRE_V3_OWNER = "pre-v3"  # the holds an older imggen left in `reserved`, as one lease that expires
PRE_V3_SECONDS = 60.0


async def _v1(conn: AsyncConnection) -> None:
    """The first schema: keys without `reserved`, the spend log without its time index."""
    v1 = sa.MetaData()
    for table in (schema_table, keys_table, spend_table):
        sa.Table(table.name, v1, *(_fresh(c) for c in table.columns if c.name != "reserved"))
    await conn.run_sync(v1.create_all)


def _fresh(column: sa.Column[Any]) -> sa.Column[Any]:
    """A column as it is created in the database (Python-side defaults are not in the DDL)."""
    return sa.Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable,
                     unique=column.unique, autoincrement=column.autoincrement)  # fmt: skip


async def _v2(conn: AsyncConnection) -> None:
    """Cross-instance budget holds (`reserved`) and date-range reports (an index on the log's time)."""
    await conn.execute(sa.text("ALTER TABLE imggen_keys ADD COLUMN reserved FLOAT NOT NULL DEFAULT 0"))
    await conn.execute(sa.text("CREATE INDEX ix_imggen_spend_time ON imggen_spend (time)"))


async def _v3(conn: AsyncConnection) -> None:
    """Budget leases with an owner and an expiry. What `reserved` held (an older imggen's requests in
    flight, or holds a killed process never cleared) becomes one lease that expires in a minute."""
    await conn.run_sync(lambda sync: leases_table.create(sync))
    expires = time.time() + PRE_V3_SECONDS
    await conn.execute(
        sa.insert(leases_table).from_select(
            ["token", "owner", "amount", "expires"],
            sa.select(keys_table.c.token, sa.literal(PRE_V3_OWNER), keys_table.c.reserved, sa.literal(expires))
            .where(keys_table.c.reserved > 0),
        )
    )  # fmt: skip
    await conn.execute(sa.update(keys_table).where(keys_table.c.reserved != 0).values(reserved=0.0))


MIGRATIONS: list[Callable[[AsyncConnection], Awaitable[None]]] = [_v1, _v2, _v3]
VERSION = len(MIGRATIONS)


def engine_url(url: str | None) -> str:
    """The async driver's URL for a LiteLLM-style database_url; None is the default SQLite file."""
    if not url:
        import platformdirs

        folder = Path(platformdirs.user_data_dir("imggen"))
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{folder / 'proxy.db'}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError("general_settings.database_url must be a sqlite:/// or postgresql:// URL")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    raise ConfigError(
        f"general_settings.database_url: '{scheme}://' is not supported", hint="Use sqlite:///path or postgresql://…"
    )


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    async def aclose(self) -> None:
        await self.engine.dispose()


async def open_database(url: str | None, upgrade_to: int = VERSION) -> Database:
    """Connect, create or upgrade the schema (under a lock: PostgreSQL's advisory lock, SQLite's write
    lock; so instances starting together upgrade it once), and return the database."""
    target = engine_url(url)
    if not target.startswith("sqlite"):
        engine = create_async_engine(target)
    else:
        _sqlite_wal(target)
        engine = create_async_engine(target, connect_args={"timeout": BUSY_TIMEOUT})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_connection)
    database = Database(engine)
    try:
        async with engine.begin() as conn:
            if database.postgres:
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7140014)"))
            else:  # the write lock before the version is read
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await _upgrade(conn, upgrade_to)
    except Exception:
        await engine.dispose()
        raise
    return database


def _sqlite_wal(target: str) -> None:
    """The SQLite file in WAL mode before the pool opens it, by privatedb's retry: a new file's switch
    answers SQLITE_BUSY at once, without the busy timeout, when another instance opens it meanwhile."""
    import sqlite3
    from contextlib import closing

    path = sa.make_url(target).database
    if path and path != ":memory:":
        with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT)) as db:
            set_wal(db.execute)


def _sqlite_connection(connection: Any, record: Any) -> None:
    """WAL's `synchronous=NORMAL`: a commit does not wait for the disk (the database stays consistent;
    a power cut may lose the last commits, as SQLite documents), so the spend log and budget leases
    cost no fsync per transaction."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def _upgrade(conn: AsyncConnection, upgrade_to: int) -> None:
    exists = await conn.run_sync(lambda sync: sa.inspect(sync).has_table(schema_table.name))
    version = 0
    if exists:
        version = (await conn.execute(sa.select(sa.func.max(schema_table.c.version)))).scalar() or 0
    if version > VERSION:
        raise ConfigError(
            f"the proxy database has schema version {version}; this imggen knows up to {VERSION}",
            hint="Upgrade imggen on this machine.",
        )
    for number in range(version, upgrade_to):
        await MIGRATIONS[number](conn)
    if upgrade_to > version:
        await conn.execute(sa.delete(schema_table))
        await conn.execute(sa.insert(schema_table).values(version=upgrade_to))


async def schema_version(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.max(schema_table.c.version)))).scalar() or 0)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
