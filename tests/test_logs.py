"""The log (issue 17, items 1-3): every image generate, edit and batch collect save is in a SQLite
file; `imggen logs` lists, searches and totals it; `generate --from ID` and `logs replay ID` ask again."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opentogether
from conftest import OPENAI_KEY, openai_env, run_cli
from fakeserver import FakeProvider, Reply, server_error
from imggen.privatedb import set_wal
from test_edit import png

PLACEHOLDER = "placeholder"
GPT = "openai/gpt-image-2"


def log_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".local" / "share" / "imggen" / "log.sqlite"  # XDG_DATA_HOME: the test's (conftest)


def entries(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = run_cli("logs", *args, env=env)
    assert result.code == 0, result.stderr
    return result.json_lines()


def generate(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run_cli("generate", *args, env=env)
    assert result.code == 0, result.stderr
    return result


# --- item 1: what is recorded, where, and turning it off ---------------------------------------------------


def test_a_saved_image_is_logged_with_its_request_file_and_run(fake: FakeProvider, tmp_path: Path) -> None:
    generate("a sea otter", "-m", GPT, "-s", "1024x1024", "--quality", "low", "-o", "out", env=openai_env(fake))
    [entry] = entries()
    saved = tmp_path / "out" / Path(entry["path"]).name
    assert entry["path"] == str(saved) and saved.is_file()
    assert entry["prompt"] == "a sea otter" and entry["model"] == GPT and entry["provider"] == "openai"
    assert entry["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert entry["bytes"] == saved.stat().st_size and entry["size"] == "2x2"  # the pixels of the file itself
    assert entry["parameters"]["quality"] == "low" and entry["options"] == {
        "n": 1,
        "quality": "low",
        "size": "1024x1024",
    }
    assert entry["request_id"].startswith("req_") and entry["cost_usd"] > 0
    assert entry["exit_status"] == 0 and entry["run_id"].startswith("r_") and entry["command"] == "generate"
    assert not entry["missing"]
    assert stat.S_IMODE(log_path(tmp_path).stat().st_mode) == 0o600
    for file in (log_path(tmp_path), Path(f"{log_path(tmp_path)}-wal")):  # Python 3.12+ leaves the WAL
        assert not file.exists() or OPENAI_KEY.encode() not in file.read_bytes()
    with sqlite3.connect(log_path(tmp_path)) as db:  # a new file went through every upgrade
        assert db.execute("SELECT value FROM meta").fetchone() == ("2",)
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name='entries_model'").fetchone()


def test_the_exit_status_of_a_partly_failed_run_is_on_its_entries(fake: FakeProvider) -> None:
    fake.script("/images/generations", Reply(default=True), server_error())
    result = run_cli("generate", "-", "-m", GPT, "-j", "1", "--retries", "0", "-o", "out", env=openai_env(fake),
                     input=b"an otter\na fox\n")  # fmt: skip
    assert result.code == 4, result.stderr
    assert [(e["prompt"], e["exit_status"]) for e in entries()] == [("an otter", 4)]


def test_an_interrupted_run_says_130_on_its_entries(fake: FakeProvider) -> None:
    fake.script("/images/generations", Reply(), Reply(delay=30))
    args = ["generate", "otter", "-m", "dall-e-3", "-n", "2", "-j", "1"]  # dall-e-3: a request per image
    proc = subprocess.Popen([sys.executable, "-m", "imggen", *args], env={**os.environ, **openai_env(fake)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # the first image is saved (and logged)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    assert [e["exit_status"] for e in entries()] == [130]


def test_no_log_flag_env_and_config_each_turn_it_off(tmp_path: Path) -> None:
    generate("otter", "-m", PLACEHOLDER, "--no-log")
    generate("otter", "-m", PLACEHOLDER, env={"IMGGEN_NO_LOG": "1"})
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text("log = false\n")
    config.chmod(0o600)
    generate("otter", "-m", PLACEHOLDER)
    assert not log_path(tmp_path).exists()
    config.write_text("log = 'no'\n")
    refused = run_cli("generate", "otter", "-m", PLACEHOLDER)
    assert refused.code == 3 and "'log' must be true or false" in refused.stderr
    config.unlink()
    generate("otter", "-m", PLACEHOLDER, env={"IMGGEN_NO_LOG": "0"})
    assert len(entries()) == 1


def test_config_set_keeps_log_false(tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(mode=0o700)
    config.write_text("log = false\n")
    config.chmod(0o600)
    assert run_cli("config", "set", "openai", "model", "openai/gpt-image-2").code == 0
    assert "log = false" in config.read_text()
    generate("otter", "-m", PLACEHOLDER)
    assert not log_path(tmp_path).exists()


def test_logs_path_and_imggen_log_db(tmp_path: Path) -> None:
    assert run_cli("logs", "path").stdout == f"{log_path(tmp_path)}\n"
    elsewhere = tmp_path / "elsewhere" / "my.sqlite"
    env = {"IMGGEN_LOG_DB": str(elsewhere)}
    assert run_cli("logs", "path", env=env).stdout == f"{elsewhere}\n"
    generate("otter", "-m", PLACEHOLDER, env=env)
    assert elsewhere.is_file() and not log_path(tmp_path).exists()
    assert len(entries(env=env)) == 1 and entries() == []  # reading no log makes none


def test_an_edit_is_logged_with_its_input_paths(tmp_path: Path) -> None:
    (tmp_path / "otter.png").write_bytes(png(24, 16))
    result = run_cli("edit", "add a hat", "otter.png", "-m", PLACEHOLDER, "-o", "out")
    assert result.code == 0, result.stderr
    [entry] = entries()
    assert entry["task"] == "edit" and entry["command"] == "edit" and entry["size"] == "24x16"
    assert entry["options"]["images"] == [str(tmp_path / "otter.png")]


def test_batch_collect_logs_each_image(tmp_path: Path) -> None:
    from fakebatches import FakeBatches

    with FakeBatches() as batches:
        env = {**batches.env(), "IMGGEN_POLL_INTERVAL": "0"}
        (tmp_path / "p.txt").write_text("an otter\na heron\n")
        result = run_cli("batch", "submit", "--prompts-file", "p.txt", "-m", GPT, "-o", "out", "--wait", env=env)
    assert result.code == 0, result.stderr
    logged = entries()
    assert sorted(e["prompt"] for e in logged) == ["a heron", "an otter"]
    assert {e["command"] for e in logged} == {"batch collect"} and {e["exit_status"] for e in logged} == {0}


def test_several_runs_write_at_once(tmp_path: Path) -> None:
    """Four processes, each saving images as fast as the placeholder makes them, into one log."""
    env = {**os.environ, "IMGGEN_TESTS_FORKSERVER": "0"}
    runs = [subprocess.Popen([sys.executable, "-m", "imggen", "generate", "-", "-m", PLACEHOLDER, "-s", "64x64",
                              "-o", f"out{i}", "--quiet", "-j", "4"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) for i in range(4)]  # fmt: skip
    for i, proc in enumerate(runs):
        assert proc.stdin is not None
        proc.stdin.write("".join(f"run {i} prompt {k}\n" for k in range(15)).encode())
        proc.stdin.close()
    for proc in runs:
        assert proc.stderr is not None
        warned = proc.stderr.read().decode()
        assert proc.wait(60) == 0 and "cannot write the log" not in warned, warned
    logged = entries("-n", "0")
    assert len(logged) == 60 and len({e["id"] for e in logged}) == 60
    assert len({e["run_id"] for e in logged}) == 4


def test_processes_opening_a_new_log_at_once_all_write_it(tmp_path: Path) -> None:
    """A new file's switch to WAL answered SQLITE_BUSY at once, without the busy timeout, when another
    process opened it meanwhile: CI saw one of four runs lose its entries so. 50 new logs, each opened
    by four processes at the same instant (before the retry, 13 to 21 of the 200 opens failed)."""
    assert opentogether.failures("log", 50, tmp_path) == []


def busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # as SQLite's answer carries it
    return error


def test_the_wal_switch_is_retried_while_busy_and_only_then() -> None:
    calls: list[str] = []

    def busy_twice(sql: str) -> None:
        calls.append(sql)
        if len(calls) < 3:
            raise busy()

    set_wal(busy_twice)
    assert calls == ["PRAGMA journal_mode=WAL"] * 3

    def always_busy(sql: str) -> None:
        raise busy()

    with pytest.raises(sqlite3.OperationalError, match="locked"):  # not forever: the busy timeout's length
        set_wal(always_busy, timeout=0.05)

    def read_only(sql: str) -> None:
        calls.append(sql)
        raise sqlite3.OperationalError("attempt to write a readonly database")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        set_wal(read_only)
    assert len(calls) == 1  # any other error at once


# --- item 2: listing, searching, totals ----------------------------------------------------------------------


def test_list_newest_first_search_model_and_limit(fake: FakeProvider) -> None:
    for prompt in ("a sea otter", "a red fox", "an otter on a rock"):
        generate(prompt, "-m", PLACEHOLDER)
    generate("a heron", "-m", GPT, env=openai_env(fake))
    assert [e["prompt"] for e in entries()] == ["a heron", "an otter on a rock", "a red fox", "a sea otter"]
    assert [e["prompt"] for e in entries("-q", "otter")] == ["an otter on a rock", "a sea otter"]
    assert [e["prompt"] for e in entries("-q", "rock otter")] == ["an otter on a rock"]  # every word, any order
    assert entries("-q", 'otter" OR "fox') == []  # quotes and OR are words, not query syntax
    assert [e["prompt"] for e in entries("-q", "ott* roc*")] == ["an otter on a rock"]  # prefixes
    assert [e["prompt"] for e in entries("-m", "gpt-image-2")] == ["a heron"]
    assert [e["prompt"] for e in entries("-m", "placeholder/default", "-n", "1")] == ["an otter on a rock"]


def test_since_and_until(tmp_path: Path) -> None:
    generate("otter", "-m", PLACEHOLDER)
    with sqlite3.connect(log_path(tmp_path)) as db:  # as if made 3 days ago
        db.execute("UPDATE entries SET created = created - 3 * 86400")
    generate("fox", "-m", PLACEHOLDER)
    assert [e["prompt"] for e in entries("--since", "2d")] == ["fox"]
    assert [e["prompt"] for e in entries("--until", "2d")] == ["otter"]
    assert [e["prompt"] for e in entries("--since", "today")] == ["fox"]
    assert [e["prompt"] for e in entries("--since", "2000-01-01", "--until", "2100-01-01")] == ["fox", "otter"]
    bad = run_cli("logs", "--since", "last tuesday")
    assert bad.code == 2 and "is not a date" in bad.stderr


def test_a_missing_file_is_shown_missing(tmp_path: Path) -> None:
    generate("otter", "-m", PLACEHOLDER, "-o", "out")
    [entry] = entries()
    Path(entry["path"]).unlink()
    assert entries()[0]["missing"] is True
    shown = run_cli("logs", "show", str(entry["id"]))
    assert json.loads(shown.stdout)["missing"] is True


def test_show_one_entry_and_an_unknown_id() -> None:
    generate("otter", "-m", PLACEHOLDER, "--seed", "42")
    [entry] = entries()
    shown = run_cli("logs", "show", str(entry["id"]))
    assert shown.code == 0 and json.loads(shown.stdout)["seed"] == 42
    missing = run_cli("logs", "show", "999")
    assert missing.code == 2 and "no log entry 999" in missing.stderr


def test_cost_totals_by_model_and_provider(fake: FakeProvider) -> None:
    generate("otter", "-m", GPT, "-n", "2", "--quality", "low", env=openai_env(fake))
    generate("fox", "-m", PLACEHOLDER)
    logged = entries()
    by_model = {t["model"]: t for t in entries("cost", "--by", "model")}
    gpt_cost = sum(e["cost_usd"] for e in logged if e["model"] == GPT)
    assert by_model[GPT]["images"] == 2 and by_model[GPT]["cost_usd"] == pytest.approx(gpt_cost)
    assert by_model["placeholder/default"]["images"] == 1
    assert {t["provider"] for t in entries("cost", "--by", "provider")} == {"openai", "placeholder"}
    [day] = entries("cost")
    assert day["images"] == 3 and day["cost_usd"] == pytest.approx(gpt_cost)


# --- item 3: asking again ------------------------------------------------------------------------------------


def test_generate_from_reproduces_an_image_with_its_seed(tmp_path: Path) -> None:
    generate("a sea otter", "-m", PLACEHOLDER, "-n", "2", "--seed", "7", "-s", "64x64", "-o", "first")
    second = next(e for e in entries() if e["index"] == 2)
    assert second["seed"] == 8
    again = generate("--from", str(second["id"]), "-o", "again")
    path = tmp_path / again.stdout.strip()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == second["sha256"]  # the same image
    replayed = entries("-n", "1")[0]
    assert (replayed["prompt"], replayed["seed"], replayed["size"]) == ("a sea otter", 8, "64x64")


def test_flags_given_win_over_the_entry(fake: FakeProvider) -> None:
    generate("a heron", "-m", GPT, "-s", "1024x1536", "--quality", "low", env=openai_env(fake))
    entry_id = str(entries()[0]["id"])
    generate("--from", entry_id, "--quality", "high", "-n", "2", env=openai_env(fake))
    generate("--from", entry_id, "a crane", env=openai_env(fake))
    bodies = [r.json for r in fake.requests if r.path.endswith("/images/generations")]
    assert [(b["prompt"], b["size"], b["quality"], b["n"]) for b in bodies] == [
        ("a heron", "1024x1536", "low", 1),
        ("a heron", "1024x1536", "high", 2),
        ("a crane", "1024x1536", "low", 1),
    ]


def test_logs_replay_takes_flags_after_the_id(fake: FakeProvider, tmp_path: Path) -> None:
    generate("a heron", "-m", GPT, "--quality", "low", env=openai_env(fake))
    result = run_cli("logs", "replay", str(entries()[0]["id"]), "-o", "again", "--json", env=openai_env(fake))
    assert result.code == 0, result.stderr
    assert result.json_lines()[0]["path"].startswith("again/")
    assert [r.json["quality"] for r in fake.requests if r.path.endswith("/generations")] == ["low", "low"]


def test_an_edit_replays_as_an_edit_and_refuses_a_gone_input(tmp_path: Path) -> None:
    (tmp_path / "otter.png").write_bytes(png(24, 16))
    assert run_cli("edit", "add a hat", "otter.png", "-m", PLACEHOLDER, "-o", "out").code == 0
    edit = entries()[0]
    again = generate("--from", str(edit["id"]), "-o", "again")
    assert hashlib.sha256((tmp_path / again.stdout.strip()).read_bytes()).hexdigest() == edit["sha256"]
    assert entries("-n", "1")[0]["task"] == "edit"
    (tmp_path / "otter.png").unlink()
    gone = run_cli("generate", "--from", str(edit["id"]))
    assert gone.code == 2 and f"the input image of log entry {edit['id']} is gone" in gone.stderr
    assert str(tmp_path / "otter.png") in gone.stderr


def test_from_an_unknown_entry_is_refused() -> None:
    result = run_cli("generate", "--from", "5")
    assert result.code == 2 and "no log entry 5" in result.stderr


# --- the file: versions, upgrades, and FTS5 missing --------------------------------------------------------

V1 = (  # the schema of version 1, as imggen wrote it
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE runs (id TEXT PRIMARY KEY, command TEXT NOT NULL, started REAL NOT NULL, ended REAL,"
    " exit_status INTEGER)",
    "CREATE TABLE entries (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, created REAL NOT NULL, command TEXT NOT NULL,"
    " task TEXT NOT NULL, prompt TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, profile TEXT,"
    " options TEXT NOT NULL DEFAULT '{}', parameters TEXT NOT NULL DEFAULT '{}', image_index INTEGER, seed INTEGER,"
    " revised_prompt TEXT, text TEXT, path TEXT NOT NULL, sha256 TEXT, bytes INTEGER, width INTEGER, height INTEGER,"
    " cost_usd REAL, request_id TEXT)",
    "CREATE INDEX entries_created ON entries (created)",
    "INSERT INTO meta VALUES ('schema_version', '1')",
    "INSERT INTO runs VALUES ('r_1', 'generate', 1764460800, 1764460801, 0)",
    "INSERT INTO entries (run_id, created, command, task, prompt, model, provider, path, seed)"
    " VALUES ('r_1', 1764460800, 'generate', 'generate', 'an old otter', 'openai/gpt-image-1', 'openai', '/x.png', 3)",
)


def test_a_version_1_file_is_upgraded_and_searchable(tmp_path: Path) -> None:
    from imggen.logdb import SCHEMA_VERSION, LogDB

    path = log_path(tmp_path)
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        for statement in V1:
            db.execute(statement)
    [old] = entries("-q", "otter")
    assert (old["prompt"], old["seed"], old["exit_status"], old["missing"]) == ("an old otter", 3, 0, True)
    with LogDB(path) as log:
        assert log.schema_version() == SCHEMA_VERSION == 2
        assert log.db.execute("SELECT 1 FROM sqlite_master WHERE name='entries_model'").fetchone()


def newer_log(tmp_path: Path) -> None:
    """A log as a newer imggen leaves it: schema 99."""
    path = log_path(tmp_path)
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")


def test_a_file_from_a_newer_imggen_is_refused(tmp_path: Path) -> None:
    newer_log(tmp_path)
    result = run_cli("logs")
    assert result.code == 3 and "written by a newer imggen (schema 99)" in result.stderr


def test_a_log_that_cannot_be_written_never_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    blocked = run_cli("generate", "otter", "-m", PLACEHOLDER, "-n", "2", "-o", "out",
                      env={"IMGGEN_LOG_DB": str(tmp_path / "a-file" / "log.sqlite")})  # fmt: skip
    assert blocked.code == 0 and len(blocked.lines) == 2
    assert blocked.stderr.count("warning: cannot write the log") == 1
    newer_log(tmp_path)
    newer = run_cli("generate", "otter", "-m", PLACEHOLDER, "-o", "out")
    assert newer.code == 0 and "written by a newer imggen (schema 99)" in newer.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_without_fts5_search_falls_back_to_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen import logdb

    monkeypatch.setattr(logdb, "has_fts5", lambda: False)
    with logdb.LogDB(tmp_path / "l.sqlite") as log:
        assert log.search is False
        for prompt in ("a sea otter", "100% fox"):
            log.add({"run_id": "r", "created": 1.0, "command": "generate", "task": "generate", "prompt": prompt,
                     "model": "m/x", "provider": "m", "path": "/x"})  # fmt: skip
        assert [e.prompt for e in log.find(logdb.Query(text="otter"))] == ["a sea otter"]
        assert [e.prompt for e in log.find(logdb.Query(text="0%"))] == ["100% fox"]  # % is text, not a wildcard
    monkeypatch.undo()
    with logdb.LogDB(tmp_path / "l.sqlite") as log:  # a Python with FTS5 builds the index from the entries
        assert log.search and [e.prompt for e in log.find(logdb.Query(text="fox"))] == ["100% fox"]


def test_logs_html_writes_the_gallery_page_of_the_entries_found(tmp_path: Path) -> None:
    from test_gallery import Page

    generate("a sea otter", "-m", PLACEHOLDER, "-n", "2", "--seed", "5", "-s", "64x48", "-o", "otters")
    generate("a red fox", "-m", PLACEHOLDER, "-s", "64x48", "-o", "foxes")
    generate("an otter asleep", "-m", PLACEHOLDER, "-s", "64x48", "-o", "otters")
    kept, *_, gone = entries("-q", "otter")  # newest first: the sleeping otter, ..., the first otter
    Path(gone["path"]).unlink()
    (tmp_path / "pages").mkdir()
    made = run_cli("logs", "--html", "-q", "otter", "-o", "pages/otters.html")
    assert made.code == 0, made.stderr
    assert made.stdout == "pages/otters.html\n" and made.stderr == "3 images · 2 thumbnails made · 0 reused\n"
    parsed = Page((tmp_path / "pages" / "otters.html").read_text())
    cards = parsed.all("figure", **{"class": "card"})
    assert len(cards) == 3 and len(parsed.all("figure", **{"class": "missing"})) == 1
    text = " ".join(parsed.texts)
    assert "fox" not in text and f"missing: {gone['path']}" in text and "seed 5" in text and "64x48" in text
    assert "<title>imggen log: otter</title>" in (tmp_path / "pages" / "otters.html").read_text()
    # Relative links (the page opens offline from anywhere the folders move together); thumbnails by the
    # sha256 the log recorded, beside the page; no <img> for the missing file.
    assert [a["href"] for a in parsed.all("a")] == [
        "../otters/" + Path(e["path"]).name for e in entries("-q", "otter")[:2]
    ]
    thumbs = [img["src"] for img in parsed.all("img") if img.get("loading")]
    assert thumbs == [f".imggen-thumbs/{e['sha256']}.jpg" for e in entries("-q", "otter")[:2]]
    assert all((tmp_path / "pages" / src).is_file() for src in thumbs)
    again = run_cli("logs", "--html", "-q", "otter", "-n", "1", "-o", "pages/otters.html")
    assert again.stderr == "1 image · 0 thumbnails made · 1 reused\n" and kept["prompt"] == "an otter asleep"


def test_logs_html_needs_its_page() -> None:
    for args in (["--html"], ["-o", "page.html"]):
        refused = run_cli("logs", *args)
        assert refused.code == 2 and "--html and -o go together" in refused.stderr
    empty = run_cli("logs", "--html", "-o", "page.html")  # no log yet: an empty page, said so
    assert empty.code == 0 and "no entries yet: the page is empty" in empty.stderr and Path("page.html").is_file()
    newts = run_cli(
        "generate", "-", "-m", PLACEHOLDER, "-s", "16x16", input="".join(f"newt {i}\n" for i in range(21)).encode()
    )
    assert newts.code == 0, newts.stderr
    every = run_cli("logs", "--html", "-o", "page.html")  # a page has all entries unless -n says: not 20
    assert every.code == 0 and every.stderr.startswith("21 images · 21 thumbnails made")


def test_help_does_not_load_the_log() -> None:
    script = (
        "import sys, runpy; sys.argv = ['imggen', '--help']\n"
        "try:\n    runpy.run_module('imggen', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    modules = set(out.stderr.split())
    assert "imggen.commands" in modules and "imggen.logdb" not in modules and "sqlite3" not in modules
