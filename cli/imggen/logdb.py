"""The log: a SQLite file in the user data directory (`imggen/log.sqlite`, or the path in
IMGGEN_LOG_DB) with one entry per image `generate`, `edit` and `batch collect` saved: what was asked
(prompt, model, the options as given, input image paths), what was sent (the parameters), what came
back (seed, revised prompt, text, request id, cost) and what was written (path, sha256, bytes,
pixels), with its run's id and exit status. `imggen logs` reads it; `generate --from ID` replays an
entry.

Made like the batch ledger (batches/ledger.py): private (0600), WAL with a busy timeout so several
runs write at once, a schema version and upgrades run in order at open. Never a credential: the
options pass `privatedb.clean_options` (as the ledger's do), and api_base is not kept (a URL may
carry a key in its query).

Imported when a run that may log starts, or `imggen logs` runs (the file is opened only when the
first image is saved): `imggen --help` stays free of sqlite3 (tests/test_import.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImggenError
from .privatedb import PrivateDB, clean_options, data_file

if TYPE_CHECKING:
    from .jobs import Job
    from .plan import Plan
    from .types import ImageData, InputImage

SCHEMA_VERSION = 2
WAL_KEPT = 4 << 20  # bytes of WAL left between runs at most (wal_autocheckpoint's 1000 pages: ~4 MB)
ENV = "IMGGEN_LOG_DB"
OFF_ENV = "IMGGEN_NO_LOG"

# Version 1: runs and entries.
_V1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, command TEXT NOT NULL, started REAL NOT NULL,"
    " ended REAL, exit_status INTEGER)",
    "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, created REAL NOT NULL,"
    " command TEXT NOT NULL, task TEXT NOT NULL, prompt TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,"
    " profile TEXT, options TEXT NOT NULL DEFAULT '{}', parameters TEXT NOT NULL DEFAULT '{}', image_index INTEGER,"
    " seed INTEGER, revised_prompt TEXT, text TEXT, path TEXT NOT NULL, sha256 TEXT, bytes INTEGER,"
    " width INTEGER, height INTEGER, cost_usd REAL, request_id TEXT)",
    "CREATE INDEX IF NOT EXISTS entries_created ON entries (created)",
)
# Each later version: the statements that upgrade the one before, run in order at open.
UPGRADES: dict[int, tuple[str, ...]] = {
    # 2: the entries' models looked up without a scan (`imggen logs -m`, `logs cost --by model`)
    2: ("CREATE INDEX IF NOT EXISTS entries_model ON entries (model)",),
}
# The full-text index of prompts: an FTS5 external-content table kept by triggers. Not a fixed upgrade
# step: made at open by a Python whose SQLite has FTS5 (_ensure_search), filled from the entries.
_SEARCH = (
    "CREATE VIRTUAL TABLE entries_fts USING fts5(prompt, content='entries', content_rowid='id')",
    "CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN"
    " INSERT INTO entries_fts (rowid, prompt) VALUES (new.id, new.prompt); END",
    "CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN"
    " INSERT INTO entries_fts (entries_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt); END",
    "INSERT INTO entries_fts (entries_fts) VALUES ('rebuild')",
)


def default_path() -> Path:
    return data_file(ENV, "log.sqlite")


def enabled(config_log: bool | None) -> bool:
    """On unless IMGGEN_NO_LOG is set (to anything but empty or 0) or config.toml says `log = false`
    (--no-log: the command does not ask)."""
    return os.environ.get(OFF_ENV, "") in ("", "0") and config_log is not False


def has_fts5() -> bool:
    """This Python's SQLite was built with FTS5 (most are; some distributions' builds are not)."""
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(a)")
    except sqlite3.OperationalError:
        return False
    return True


class LogDB(PrivateDB):
    what = "the log"
    hint = "Upgrade imggen, or turn the log off: IMGGEN_NO_LOG=1."

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path or default_path())

    def prepare(self) -> None:
        # PrivateDB set WAL with synchronous=NORMAL: a commit is no fsync (checkpoints are)
        self._no_checkpoint_on_close()
        if self._version() != SCHEMA_VERSION:  # a run's open is a read, not a write, once the file is current
            self._upgrade()
        self.search = self._ensure_search()

    def _no_checkpoint_on_close(self) -> None:
        """Leave the WAL for the next run instead of checkpointing it when this, the last connection,
        closes: that checkpoint is two or more fsyncs (0.5-25 ms a run, as busy as the disk is), most
        of what a run pays for the log once. Safe: the WAL keeps every commit (a crash of imggen loses
        nothing, a power cut at worst the last entries, as any commit with synchronous=NORMAL), SQLite
        still checkpoints, with its syncs, whenever the WAL passes wal_autocheckpoint's 1000 pages
        (~4 MB, every few hundred runs), and the next opening reads the WAL as it is
        (https://www.sqlite.org/wal.html, "Automatic Checkpoint"; sqlite3.h,
        SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE). Python 3.12 and later: 3.11's sqlite3 has no
        Connection.setconfig, so there the close still checkpoints. So log.sqlite alone may lack the
        latest entries: copy it with `sqlite3 log.sqlite ".backup copy"`, not cp (or with its -wal)."""
        if sys.version_info >= (3, 12) and hasattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE"):
            self.db.setconfig(sqlite3.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, True)
            # A WAL that grew while several runs kept it busy is cut back to this when a checkpoint
            # restarts it, instead of staying at its largest (https://www.sqlite.org/pragma.html#pragma_journal_size_limit).
            self.db.execute(f"PRAGMA journal_size_limit={WAL_KEPT}")

    def _version(self) -> int | None:
        return self.schema_version() if self._has_table("meta") else None

    def _upgrade(self) -> None:
        with self.transaction():
            for statement in _V1:
                self.db.execute(statement)
            version = self.stored_version(SCHEMA_VERSION, new=1)  # a new file: version 1, then each upgrade
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in UPGRADES[target]:
                    self.db.execute(statement)
                self.db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(target),))

    def _ensure_search(self) -> bool:
        """The prompts' FTS5 index, made and filled the first time a Python whose SQLite has FTS5 opens
        the file; False when it has none (searches then use LIKE)."""
        if self._has_table("entries_fts"):
            return True
        if not has_fts5():
            return False
        with self.transaction():
            if not self._has_table("entries_fts"):  # another process may have made it meanwhile
                for statement in _SEARCH:
                    self.db.execute(statement)
        return True

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None

    # Writing.

    def start_run(self, command: str) -> str:
        run_id = "r_" + os.urandom(8).hex()  # os, not secrets: the secrets module costs a run 0.3 ms to import
        self.db.execute("INSERT INTO runs (id, command, started) VALUES (?, ?, ?)", (run_id, command, time.time()))
        return run_id

    def end_run(self, run_id: str, exit_status: int) -> None:
        self.db.execute("UPDATE runs SET ended=?, exit_status=? WHERE id=?", (time.time(), exit_status, run_id))

    def add(self, entry: dict[str, Any]) -> int:
        """One saved image (its columns by name; options and parameters as dicts); returns its id."""
        values = {**entry, "options": _json(entry.get("options", {})), "parameters": _json(entry.get("parameters", {}))}
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        cursor = self.db.execute(f"INSERT INTO entries ({columns}) VALUES ({marks})", tuple(values.values()))
        return int(cursor.lastrowid or 0)

    # Reading.

    def get(self, entry_id: int) -> Entry | None:
        row = self.db.execute(f"{_SELECT} WHERE e.id=?", (entry_id,)).fetchone()
        return Entry.of(row) if row else None

    def find(self, query: Query) -> list[Entry]:
        """Entries matching `query`, newest first."""
        where, args = self._where(query)
        limit = f" LIMIT {int(query.limit)}" if query.limit else ""
        rows = self.db.execute(f"{_SELECT}{where} ORDER BY e.created DESC, e.id DESC{limit}", args).fetchall()
        return [Entry.of(row) for row in rows]

    def totals(self, query: Query, by: str) -> list[dict[str, Any]]:
        """Images and cost per day (local time), model or provider, newest day or dearest first."""
        where, args = self._where(query)
        key = {"day": "date(e.created, 'unixepoch', 'localtime')", "model": "e.model", "provider": "e.provider"}[by]
        order = "key DESC" if by == "day" else "cost DESC, key"
        rows = self.db.execute(
            f"SELECT {key} AS key, COUNT(*) AS images, COALESCE(SUM(e.cost_usd), 0) AS cost,"
            f" SUM(e.cost_usd IS NULL) AS unpriced FROM entries e{where} GROUP BY key ORDER BY {order}",
            args,
        ).fetchall()
        return [{by: row["key"], "images": row["images"], "cost_usd": round(row["cost"], 6),
                 "unpriced": row["unpriced"]} for row in rows]  # fmt: skip

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.text:
            if self.search:
                clauses.append("e.id IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)")
                args.append(fts_query(query.text))
            else:
                clauses.append("e.prompt LIKE ? ESCAPE '\\'")
                args.append("%" + _like(query.text) + "%")
        if query.model:
            clauses.append("(e.model = ? OR e.model LIKE ? ESCAPE '\\')")  # `gpt-image-1` finds openai/gpt-image-1
            args += [query.model, "%/" + _like(query.model)]
        if query.since is not None:
            clauses.append("e.created >= ?")
            args.append(query.since)
        if query.until is not None:
            clauses.append("e.created < ?")
            args.append(query.until)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


_SELECT = "SELECT e.*, r.exit_status AS exit_status FROM entries e LEFT JOIN runs r ON r.id = e.run_id"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fts_query(text: str) -> str:
    """The words of `text`, each a quoted FTS5 string: every word must be in the prompt, and quotes or
    AND/OR/NOT/NEAR typed by the user are words, never query syntax; a word ending in * is a prefix
    (`ott*` finds otter and otters: FTS5's `"ott"*`)."""
    words = text.split()
    return " ".join(_fts_word(word) for word in words) or '""'


def _fts_word(word: str) -> str:
    prefix = word.endswith("*") and len(word) > 1
    stem = word[:-1] if prefix else word
    return '"' + stem.replace('"', '""') + '"' + ("*" if prefix else "")


# Plain classes, not dataclasses: making a dataclass costs about a millisecond at import, and every
# run that saves an image imports this module.


class Query:
    """What `imggen logs` filters by: words of the prompt, a model, a time range (epoch seconds, `since`
    inclusive, `until` exclusive), how many."""

    def __init__(self, text: str | None = None, model: str | None = None, since: float | None = None,
                 until: float | None = None, limit: int | None = None) -> None:  # fmt: skip
        self.text, self.model, self.since, self.until, self.limit = text, model, since, until, limit


class Entry:
    """One row of the log, with its run's exit status (None while the run goes on, or if it crashed)."""

    id: int
    run_id: str
    created: float
    command: str
    task: str
    prompt: str
    model: str
    provider: str
    path: str
    profile: str | None
    options: dict[str, Any]
    parameters: dict[str, Any]
    image_index: int | None
    seed: int | None
    revised_prompt: str | None
    text: str | None
    sha256: str | None
    bytes: int | None
    width: int | None
    height: int | None
    cost_usd: float | None
    request_id: str | None
    exit_status: int | None

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    @classmethod
    def of(cls, row: sqlite3.Row) -> Entry:
        values = dict(row)
        values["options"] = json.loads(values["options"] or "{}")
        values["parameters"] = json.loads(values["parameters"] or "{}")
        return cls(values)

    @property
    def size(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None

    @property
    def missing(self) -> bool:
        return not os.path.isfile(self.path)

    def as_json(self) -> dict[str, Any]:
        """What `imggen logs --json` prints for the entry (created as local ISO 8601 with its offset)."""
        return {
            "id": self.id, "created": iso(self.created), "prompt": self.prompt, "model": self.model,
            "provider": self.provider, "task": self.task, "command": self.command, "seed": self.seed,
            "size": self.size, "bytes": self.bytes, "cost_usd": self.cost_usd, "path": self.path,
            "missing": self.missing, "sha256": self.sha256, "revised_prompt": self.revised_prompt,
            "text": self.text, "request_id": self.request_id, "index": self.image_index, "profile": self.profile,
            "parameters": self.parameters, "options": self.options, "run_id": self.run_id,
            "exit_status": self.exit_status,
        }  # fmt: skip


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


class Recorder:
    """What one run (generate, edit, batch collect) writes to the log. The file is opened at the first
    image saved, so a run that saves nothing (a refusal, a dry run) never touches it; a log that cannot
    be written is said once and never fails the run: the images are what matters."""

    def __init__(self, command: str, warn: Callable[[str], None], path: Path | None = None) -> None:
        self.command, self.warn, self.path = command, warn, path
        self.log: LogDB | None = None
        self.run_id: str | None = None
        self.broken = False

    def saved(self, job: Job, path: Path, image: ImageData, sha256: str, size: int) -> None:
        if self.broken:
            return
        try:
            if self.log is None:
                self.log = LogDB(self.path)
                self.run_id = self.log.start_run(self.command)
            assert self.run_id is not None
            self.log.add(entry_for(job, path, image, sha256, size, run_id=self.run_id, command=self.command))
        except (sqlite3.Error, OSError, ImggenError) as exc:  # ImggenError: a log from a newer imggen
            self.broken = True
            where = self.path or default_path()
            reason = exc.message if isinstance(exc, ImggenError) else str(exc)
            self.warn(f"cannot write the log {where}: {reason}; the images are saved, not logged (--no-log skips it)")

    def finish(self, exit_status: int) -> None:
        """The run ended with `exit_status`: said on every entry of the run (`imggen logs show`)."""
        if self.log is None or self.run_id is None:
            return
        try:
            self.log.end_run(self.run_id, exit_status)
        except sqlite3.Error as exc:
            self.warn(f"cannot write the log {self.log.path}: {exc}")
        finally:
            self.log.close()
            self.log = None


def entry_for(job: Job, path: Path, image: ImageData, sha256: str, size: int, *, run_id: str,
              command: str) -> dict[str, Any]:  # fmt: skip
    """The log's columns for one saved image of `job`."""
    from .api import plan_parameters

    plan = job.plan
    width, height = _pixels(path)
    return {
        "run_id": run_id, "created": time.time(), "command": command, "task": plan.options.task if plan.options
        else "generate", "prompt": plan.prompt, "model": plan.settings.model.name,
        "provider": plan.settings.model.provider, "profile": plan.settings.profile,
        "options": clean_options(asked(plan)), "parameters": clean_options(plan_parameters(plan)),
        "image_index": image.index, "seed": image.seed, "revised_prompt": image.revised_prompt, "text": image.text,
        "path": str(path.absolute()), "sha256": sha256, "bytes": size, "width": width, "height": height,
        "cost_usd": image.cost_usd, "request_id": image.request_id,
    }  # fmt: skip


def asked(plan: Plan) -> dict[str, Any]:
    """The options as asked, for `generate --from` to ask again: given values only, input images and the
    mask as absolute paths (bytes from stdin or Python have none: "images" then lists None)."""
    options = plan.options
    if options is None:
        return {}
    values: dict[str, Any] = {}
    for key, value in vars(options).items():
        if key in ("images", "mask", "allow_retired"):
            continue
        if value not in (None, {}, ()):
            values[key] = value
    if options.images:
        values["images"] = [_input_path(image) for image in options.images]
    if options.mask is not None:
        values["mask"] = _input_path(options.mask)
    return values


def _input_path(image: InputImage) -> str | None:
    return str(image.path.absolute()) if image.path is not None else None


def _pixels(path: Path) -> tuple[int | None, int | None]:
    """The saved image's width and height from its header (the file was just written: in the page cache)."""
    from .inputs import HEAD, probe

    try:
        with path.open("rb") as handle:
            found = probe(handle.read(HEAD))
    except OSError:
        return None, None
    return (found[1], found[2]) if found else (None, None)
