"""The batch ledger: a SQLite file in the user data directory (`imggen/batches.sqlite`, or the path in
IMGGEN_BATCH_LEDGER) that remembers every `imggen batch` so status and collect work after a reboot and
from another shell. The file is 0600 and in WAL mode; it holds ids, counts, states and the options a
batch was made with, never a credential (`clean_options` drops every secret setting)."""

from __future__ import annotations

import json
import secrets as _random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# clean_options lives in privatedb so that the log, which uses it too, need not import this module (1.5 ms)
from ..privatedb import PrivateDB, clean_options, data_file
from .service import DONE

SCHEMA_VERSION = 1
ENV = "IMGGEN_BATCH_LEDGER"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL,
    prompts_sha256 TEXT, output_dir TEXT, state TEXT NOT NULL, options TEXT NOT NULL DEFAULT '{}',
    total INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS parts (
    batch_id TEXT NOT NULL REFERENCES batches(id), n INTEGER NOT NULL, provider_batch_id TEXT,
    input_file_id TEXT, output_file_id TEXT, error_file_id TEXT, state TEXT NOT NULL,
    request_count INTEGER NOT NULL, first_index INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, n)
);
CREATE TABLE IF NOT EXISTS collected (
    batch_id TEXT NOT NULL, custom_id TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (batch_id, custom_id)
);
"""


def default_path() -> Path:
    return data_file(ENV, "batches.sqlite")


def prompts_dir() -> Path:
    """Where submit keeps a copy of each batch's prompts, named by its id (collect reads them again)."""
    return default_path().parent / "batch-prompts"


@dataclass
class Part:
    """One provider batch of an imggen batch: requests first_index .. first_index+request_count-1."""

    batch_id: str
    n: int
    provider_batch_id: str | None
    input_file_id: str | None
    state: str
    request_count: int
    first_index: int
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0

    @property
    def finished(self) -> bool:
        """The provider batch will not change again (completed, failed, expired, cancelled)."""
        return self.state in DONE


@dataclass
class Record:
    id: str
    provider: str
    model: str
    created: float
    prompts_sha256: str | None
    output_dir: str | None
    state: str
    options: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    parts: list[Part] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Nothing the service says will change it again: its state is final, or it is collected."""
        return self.state in DONE or self.state == "collected"

    @property
    def requests(self) -> int:
        """Requests submitted, in all its provider batches (one provider call each)."""
        return sum(p.request_count for p in self.parts)


class Ledger(PrivateDB):
    what = "the batch ledger"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path or default_path())

    def prepare(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.stored_version(SCHEMA_VERSION)

    def new_batch(self, provider: str, model: str, *, prompts_sha256: str | None, output_dir: str | None,
                  options: dict[str, Any], total: int) -> str:  # fmt: skip
        batch_id = "b_" + _random.token_hex(8)
        with self.transaction():
            self.db.execute(
                "INSERT INTO batches (id, provider, model, created, prompts_sha256, output_dir, state, options, total)"
                " VALUES (?, ?, ?, ?, ?, ?, 'submitting', ?, ?)",
                (batch_id, provider, model, time.time(), prompts_sha256, output_dir,
                 json.dumps(clean_options(options), sort_keys=True), total),
            )  # fmt: skip
        return batch_id

    def add_part(self, part: Part) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO parts (batch_id, n, provider_batch_id, input_file_id, output_file_id,"
                " error_file_id, state, request_count, first_index, completed, failed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (part.batch_id, part.n, part.provider_batch_id, part.input_file_id, part.output_file_id,
                 part.error_file_id, part.state, part.request_count, part.first_index, part.completed, part.failed),
            )  # fmt: skip

    def update_part(self, part: Part) -> None:
        self.add_part(part)
        self._roll_up(part.batch_id)

    def set_state(self, batch_id: str, state: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE batches SET state=? WHERE id=?", (state, batch_id))

    def _roll_up(self, batch_id: str) -> None:
        """The batch's state and counts from its parts': the least advanced state wins."""
        parts = self.parts(batch_id)
        if not parts:
            return
        order = ("submitting", "validating", "in_progress", "finalizing", "cancelling", "failed", "expired",
                 "cancelled", "completed")  # fmt: skip
        state = min((p.state for p in parts), key=lambda s: order.index(s) if s in order else 0)
        with self.transaction():
            self.db.execute(
                "UPDATE batches SET state=?, completed=?, failed=? WHERE id=? AND state != 'collected'",
                (state, sum(p.completed for p in parts), sum(p.failed for p in parts), batch_id),
            )

    def parts(self, batch_id: str) -> list[Part]:
        rows = self.db.execute("SELECT * FROM parts WHERE batch_id=? ORDER BY n", (batch_id,)).fetchall()
        return [Part(**dict(row)) for row in rows]

    def get(self, batch_id: str) -> Record | None:
        row = self.db.execute("SELECT * FROM batches WHERE id=?", (batch_id,)).fetchone()
        if row is None:
            return None
        values = dict(row)
        values["options"] = json.loads(values["options"])
        return Record(**values, parts=self.parts(batch_id))

    def all(self) -> list[Record]:
        ids = [row[0] for row in self.db.execute("SELECT id FROM batches ORDER BY created, id").fetchall()]
        return [record for record in (self.get(i) for i in ids) if record is not None]

    def latest(self) -> Record | None:
        row = self.db.execute("SELECT id FROM batches ORDER BY created DESC LIMIT 1").fetchone()
        return self.get(row[0]) if row else None

    def outcome(self, batch_id: str, custom_id: str) -> str | None:
        """What collect did with a result already (saved, failed), None if not yet: asked per result, so
        a collect of 100,000 results holds none of them."""
        row = self.db.execute("SELECT outcome FROM collected WHERE batch_id=? AND custom_id=?", (batch_id, custom_id))
        found = row.fetchone()
        return str(found[0]) if found else None

    def any_failed(self, batch_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM collected WHERE batch_id=? AND outcome='failed' LIMIT 1", (batch_id,))
        return row.fetchone() is not None

    def mark_collected(self, batch_id: str, custom_id: str, outcome: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO collected VALUES (?, ?, ?)", (batch_id, custom_id, outcome))
