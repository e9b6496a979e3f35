"""A SQLite file of imggen's own in the user data directory (the batch ledger, the log): created
private (0600, its -wal and -shm files too), in WAL mode with a busy timeout so several processes
write at once, and a schema version in its `meta` table that a newer imggen may have raised."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's


def data_file(env: str, name: str) -> Path:
    """The file `name` in imggen's user data directory, or the path the variable `env` names."""
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("imggen")) / name


class PrivateDB:
    what = "file"  # how messages name it: "the batch ledger", "the log"
    hint = "Upgrade imggen."  # what to do when a newer imggen wrote it

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # created private, never widened later
        os.close(fd)
        os.chmod(self.path, 0o600)
        self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        set_wal(self.db.execute)
        # In WAL mode NORMAL keeps every commit through a crash of imggen (only a power cut can lose the
        # last ones, as it can the images not yet flushed), without a sync per commit: batch collect and
        # the log commit once per image, and a sync each made 100,000 results take minutes
        # (tests/bench/batch.py). It never corrupts the file (sqlite.org/pragma.html#pragma_synchronous).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.prepare()
        for extra in ("-wal", "-shm"):  # SQLite makes these with the umask: private too
            side = Path(str(self.path) + extra)
            if side.exists():
                os.chmod(side, 0o600)

    def prepare(self) -> None:
        """Make or upgrade the schema (each file's own)."""

    def stored_version(self, current: int, new: int | None = None) -> int:
        """The file's schema version (a new file is at `new`, else `current`); one newer than `current`
        is refused: this imggen cannot know what it holds."""
        stored = self.schema_version()
        if stored is None:
            version = current if new is None else new
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
            return version
        if stored > current:
            from .errors import ConfigError

            raise ConfigError(f"{self.what} {self.path} was written by a newer imggen (schema {stored})",
                              hint=self.hint)  # fmt: skip
        return stored

    def schema_version(self) -> int | None:
        """The schema version its `meta` table holds, or None before one is written."""
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def set_wal(execute: Callable[[str], object], timeout: float = BUSY_TIMEOUT) -> None:
    """Put the file in WAL mode (the mode persists: after the first run this only reads it). Switching
    a new file takes its exclusive lock, and SQLite answers SQLITE_BUSY at once, without waiting the
    busy timeout, when another connection has the file open meanwhile: several runs starting together
    on a new log lost one run's entries so. Retried here for as long as the busy timeout would wait."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def clean_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options as the ledger and the log may keep them: every secret setting dropped, at any depth,
    as `secrets.is_secret` tells them (api keys, tokens, anything the providers' declarations mark
    secret, credentials given as inline JSON), and an `authorization` header."""
    from . import secrets

    def secret(key: str, value: Any) -> bool:
        key = key.lower()
        return key in ("api_key", "authorization") or secrets.is_secret(key, value)

    def keep(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: keep(v) for k, v in value.items() if not secret(str(k), v)}
        if isinstance(value, list | tuple):
            return [keep(v) for v in value]
        return value

    cleaned: dict[str, Any] = keep(options)
    return cleaned
