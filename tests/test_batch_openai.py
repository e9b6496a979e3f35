"""`imggen batch` against OpenAI's Batch API: the ledger, the service module and the commands, against
fakebatches.FakeBatches on 127.0.0.1 (its lifecycle moves one step per status request)."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakebatches import KEY, FakeBatches
from imggen.batches.ledger import SCHEMA_VERSION, Ledger, Part, clean_options
from test_batch_gemini import _prompts, stream
from test_batch_gemini import run as _run

MODEL = "openai/gpt-image-1"


@pytest.fixture
def batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBatches]:
    monkeypatch.setenv("IMGGEN_BATCH_LEDGER", str(tmp_path / "data" / "batches.sqlite"))
    monkeypatch.setenv("IMGGEN_POLL_INTERVAL", "0")
    with FakeBatches() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


# -- the ledger ---------------------------------------------------------------------------------


def test_the_ledger_is_private_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "d" / "batches.sqlite"
    with Ledger(path) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
        ledger.new_batch("p", "p/m", prompts_sha256="ab", output_dir="out", options={}, total=1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for side in path.parent.glob("batches.sqlite-*"):
        assert stat.S_IMODE(side.stat().st_mode) == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_ledger_remembers_batches_and_parts_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "batches.sqlite"
    with Ledger(path) as ledger:
        batch_id = ledger.new_batch("p", "p/m", prompts_sha256="ab", output_dir="out", options={"n": 2}, total=3)
        ledger.add_part(Part(batch_id, 0, "batch-1", "file-1", "validating", 2, 0))
        ledger.add_part(Part(batch_id, 1, "batch-2", "file-2", "validating", 1, 2))
        ledger.update_part(Part(batch_id, 0, "batch-1", "file-1", "completed", 2, 0, completed=2))
    with Ledger(path) as again:
        record = again.get(batch_id)
        assert record is not None and record.options == {"n": 2} and record.total == 3
        assert [p.provider_batch_id for p in record.parts] == ["batch-1", "batch-2"]
        assert record.state == "validating" and record.completed == 2  # the least advanced part's state
        assert again.latest() is not None and [r.id for r in again.all()] == [batch_id]


def test_no_secret_reaches_the_ledger(tmp_path: Path) -> None:
    inline = json.dumps({"type": "service_account", "private_key": KEY})  # credentials given as JSON, not a path
    options = {"n": 1, "api_key": KEY, "params": {"api_key": KEY, "Authorization": f"Bearer {KEY}", "x": 1,
                                                  "vertex_credentials": inline}}  # fmt: skip
    assert KEY not in json.dumps(clean_options(options))
    assert clean_options({"vertex_credentials": "/home/me/sa.json"}) == {"vertex_credentials": "/home/me/sa.json"}
    path = tmp_path / "batches.sqlite"
    with Ledger(path) as ledger:
        ledger.new_batch("p", "p/m", prompts_sha256=None, output_dir=None, options=options, total=1)
    for file in path.parent.glob("batches.sqlite*"):
        assert KEY.encode() not in file.read_bytes()


# -- the service module --------------------------------------------------------------------------


def _settings() -> Any:
    from imggen.api import plan_generation

    return plan_generation("x", MODEL).settings


async def _submit_and_follow(prompts: list[str], cancel: bool = False) -> tuple[list[Any], list[Any], list[Any]]:
    from imggen.api import plan_generation
    from imggen.batches.ledger import Part
    from imggen.batches.openai import SERVICE
    from imggen.transport import Transport

    settings = _settings()
    sent = {f"{n}-1": plan_generation(p, MODEL).requests[0] for n, p in enumerate(prompts, 1)}
    async with Transport() as transport:
        parts = [p async for p in SERVICE.submit(stream(sent), settings, transport)]
        ledger_parts = [Part("b_x", i, p.provider_batch_id, p.input_file_id, "validating", p.request_count,
                             p.first_index) for i, p in enumerate(parts)]  # fmt: skip
        states = []
        for part in ledger_parts:
            if cancel:
                states.append((await SERVICE.cancel(part, settings, transport)).state)
            for _ in range(5):
                state = await SERVICE.status(part, settings, transport)
                states.append(state.state)
                part.output_file_id, part.error_file_id = state.output_file_id, state.error_file_id
        results = [r for part in ledger_parts async for r in SERVICE.results(part, settings, transport, sent.get)]
    return parts, states, results


def test_submit_status_and_results(batches: FakeBatches) -> None:
    parts, states, results = _run(_submit_and_follow(["an otter", "a FAIL", "a heron"]))
    assert len(parts) == 1 and parts[0].request_count == 3
    assert states[:3] == ["in_progress", "finalizing", "completed"]
    by_id = {r.custom_id: r for r in results}
    assert set(by_id) == {"1-1", "2-1", "3-1"}
    assert by_id["1-1"].images and by_id["1-1"].images[0].image_bytes().startswith(b"\x89PNG")
    assert by_id["2-1"].error is not None and "Invalid prompt" in str(by_id["2-1"].error)
    assert by_id["2-1"].error.status == 400


def test_a_batch_past_the_limits_is_split(batches: FakeBatches, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_BATCH_LIMITS", "2,1000000")
    parts, _, results = _run(_submit_and_follow([f"prompt {i}" for i in range(5)]))
    assert [p.request_count for p in parts] == [2, 2, 1] and [p.first_index for p in parts] == [0, 2, 4]
    assert batches.uploads == [2, 2, 1]
    assert sorted(r.custom_id for r in results) == [f"{i}-1" for i in range(1, 6)]


def test_a_batch_past_the_byte_limit_is_split(batches: FakeBatches, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_BATCH_LIMITS", "50000,400")
    parts, _, _ = _run(_submit_and_follow([f"prompt {i}" for i in range(4)]))
    assert len(parts) > 1 and sum(p.request_count for p in parts) == 4


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_failed_and_expired_batches(batches: FakeBatches, outcome: str) -> None:
    batches.outcome = outcome
    _, states, results = _run(_submit_and_follow(["a", "b", "c", "d"]))
    assert outcome in states
    if outcome == "expired":  # half done, the rest in the error file
        assert sum(1 for r in results if r.images) == 2
        assert {r.error.code for r in results if r.error} == {"batch_expired"}
    else:
        assert results == []


def test_cancel(batches: FakeBatches) -> None:
    _, states, results = _run(_submit_and_follow(["a", "b"], cancel=True))
    assert states[:3] == ["cancelling", "cancelled", "cancelled"]
    assert sum(1 for r in results if r.images) == 1


def test_the_upload_is_a_batch_file_with_the_generations_endpoint(batches: FakeBatches) -> None:
    _run(_submit_and_follow(["an otter"]))
    content = next(iter(batches.files.values()))
    line = json.loads(content)
    assert line["custom_id"] == "1-1" and line["method"] == "POST" and line["url"] == "/v1/images/generations"
    assert line["body"]["prompt"] == "an otter" and line["body"]["model"] == "gpt-image-1"
    assert KEY not in content.decode()


def test_a_wrong_key_is_an_auth_error(batches: FakeBatches, monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen.errors import AuthError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with pytest.raises(AuthError):
        _run(_submit_and_follow(["x"]))


# -- the commands --------------------------------------------------------------------------------


def _env(tmp_path: Path, batches: FakeBatches) -> dict[str, str]:
    return {**batches.env(), "IMGGEN_BATCH_LEDGER": str(tmp_path / "data" / "batches.sqlite"),
            "IMGGEN_POLL_INTERVAL": "0"}  # fmt: skip


def test_submit_status_collect(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    env = _env(tmp_path, batches)
    prompts = _prompts(tmp_path, "an otter", "a FAIL", "a heron")
    submitted = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "-o", "out", env=env)
    assert submitted.code == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert batch_id.startswith("b_") and "batch prices" in submitted.stderr
    early = cli("batch", "collect", batch_id, env=env)  # validating → in_progress: not done yet
    assert early.code == 1 and "not finished" in early.stderr
    for _ in range(3):
        status = cli("batch", "status", batch_id, "--json", env=env)
        assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "completed"
    collected = cli("batch", "collect", batch_id, "--json", "--metadata", env=env)
    assert collected.code == 4, collected.stderr  # one request failed
    lines = collected.json_lines()
    assert sorted(line.get("line") for line in lines) == [1, 2, 3]
    saved = sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".png")
    assert len(saved) == 2 and any("otter" in name for name in saved)
    assert (tmp_path / "out" / "manifest.jsonl").exists() or any((tmp_path / "out").glob("*manifest*"))
    again = cli("batch", "collect", batch_id, "--json", env=env)  # idempotent: nothing written twice
    assert again.stdout == "" and again.code == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".png") == saved


def test_submit_wait_collects(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    prompts = _prompts(tmp_path, "an otter", "a heron")
    result = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "-o", "out", "--wait",
                 env=_env(tmp_path, batches))  # fmt: skip
    assert result.code == 0, result.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    batch_id = cli("batch", "list", "--json", env=_env(tmp_path, batches)).json_lines()[0]["id"]
    calls = len(batches.requests)
    again = cli("batch", "collect", batch_id, env=_env(tmp_path, batches))  # all saved: nothing to fetch
    assert again.code == 0 and again.stdout == "" and "collected already" in again.stderr
    assert len(batches.requests) == calls and len(list((tmp_path / "out").glob("*.png"))) == 2


def test_stdin_and_split_past_the_limits(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    env = {**_env(tmp_path, batches), "IMGGEN_BATCH_LIMITS": "2,1000000"}
    result = cli("batch", "submit", "--prompts-file", "-", "-m", MODEL, "-o", "out", "--wait", env=env,
                 input=b"one\ntwo\nthree\nfour\nfive\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert batches.uploads == [2, 2, 1]
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    listed = cli("batch", "list", "--json", env=env).json_lines()
    assert len(listed) == 1 and len(listed[0]["provider_batches"]) == 3


def test_a_bad_line_is_refused_before_anything_is_uploaded(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "bad", "quality": "ultra"}\n')
    result = cli("batch", "submit", "--prompts-file", str(path), "-m", MODEL, env=_env(tmp_path, batches))
    assert result.code == 2 and "line 2" in result.stderr
    assert batches.requests == []


def test_max_cost_at_batch_prices(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    prompts = _prompts(tmp_path, "an otter")
    result = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "--max-cost", "0.000001",
                 env=_env(tmp_path, batches))  # fmt: skip
    assert result.code == 2 and "--max-cost" in result.stderr
    assert batches.requests == []


def test_cancel_and_list_after_a_reboot(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    env = _env(tmp_path, batches)
    prompts = _prompts(tmp_path, "a", "b")
    batch_id = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, env=env).stdout.strip()
    cancelled = cli("batch", "cancel", batch_id, env=env)
    assert cancelled.code == 0 and "cancelling" in cancelled.stdout
    listed = cli("batch", "list", "--json", env=env)  # a new process: the ledger is all it knows
    assert [row["state"] for row in listed.json_lines()] == ["cancelled"]
    collected = cli("batch", "collect", batch_id, env=env)
    assert collected.code == 4 and len(list(tmp_path.glob("*.png"))) == 1


def test_the_key_is_never_in_the_ledger(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    env = _env(tmp_path, batches)
    prompts = _prompts(tmp_path, "an otter")
    assert cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "--wait", env=env).code == 0
    data = tmp_path / "data"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files and all(KEY.encode() not in p.read_bytes() for p in files)
    assert stat.S_IMODE((data / "batches.sqlite").stat().st_mode) == 0o600


# -- every state, partial failures, gone files, faults ------------------------------------------


def _submitted(cli: Any, tmp_path: Path, batches: FakeBatches, *prompts: str, **env: str) -> tuple[str, dict[str, str]]:
    full = {**_env(tmp_path, batches), **env}
    result = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, *prompts)), "-m", MODEL, "-o", "out",
                 env=full)  # fmt: skip
    assert result.code == 0, result.stderr
    return result.stdout.strip(), full


def _states(cli: Any, batch_id: str, env: dict[str, str], looks: int) -> list[str]:
    """What `imggen batch status --json` says, `looks` times: each a new process reading the ledger."""
    return [json.loads(cli("batch", "status", batch_id, "--json", env=env).stdout)["state"] for _ in range(looks)]


def test_every_state_of_a_completed_batch_then_collect_in_a_new_process(
    cli: Any, tmp_path: Path, batches: FakeBatches
) -> None:
    batch_id, env = _submitted(cli, tmp_path, batches, "an otter", "a heron")
    with Ledger(tmp_path / "data" / "batches.sqlite") as ledger:  # what submit left: validating
        record = ledger.get(batch_id)
        assert record is not None and record.state == "validating"
    assert _states(cli, batch_id, env, 3) == ["in_progress", "finalizing", "completed"]
    collected = cli("batch", "collect", batch_id, env=env)
    assert collected.code == 0, collected.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    assert [row["state"] for row in cli("batch", "list", "--json", env=env).json_lines()] == ["collected"]


def test_a_failed_batch_reports_every_request_once(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    batches.outcome = "failed"
    batch_id, env = _submitted(cli, tmp_path, batches, "an otter", "a heron")
    assert _states(cli, batch_id, env, 1) == ["failed"]
    collected = cli("batch", "collect", batch_id, "--json", env=env)
    assert collected.code != 0 and not list((tmp_path / "out").glob("*.png"))
    assert sorted(line["line"] for line in collected.json_lines()) == [1, 2]
    said = [line for line in collected.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "failed before this request ran" in said[0], collected.stderr
    again = cli("batch", "collect", batch_id, "--json", env=env)
    assert again.code == 4 and again.stdout == ""  # reported once: nothing twice


def test_an_expired_batch_keeps_what_was_done(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    batches.outcome = "expired"
    batch_id, env = _submitted(cli, tmp_path, batches, "a", "b", "c", "d")
    assert _states(cli, batch_id, env, 2) == ["in_progress", "expired"]
    collected = cli("batch", "collect", batch_id, "--json", env=env)
    assert collected.code == 4
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    errors = [line for line in collected.json_lines() if "error" in line]
    assert len(errors) == 2 and all("batch_expired" in line["error"]["message"] for line in errors)


def test_cancelling_then_cancelled(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    batch_id, env = _submitted(cli, tmp_path, batches, "a", "b")
    assert "cancelling" in cli("batch", "cancel", batch_id, env=env).stdout
    assert _states(cli, batch_id, env, 1) == ["cancelled"]


def test_a_result_file_gone_is_one_line_saying_what_to_do(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    batch_id, env = _submitted(cli, tmp_path, batches, "an otter", "a heron", "a FAIL")
    _states(cli, batch_id, env, 3)
    batch = next(iter(batches.batches.values()))
    assert batch.output_file_id is not None
    del batches.files[batch.output_file_id]  # OpenAI deleted it (or it expired)
    collected = cli("batch", "collect", batch_id, env=env)
    assert collected.code != 0 and not list((tmp_path / "out").glob("*.png"))
    gone = [line for line in collected.stderr.splitlines() if batch.output_file_id in line]
    assert len(gone) == 1 and "no longer at OpenAI" in gone[0] and "submit" in gone[0].lower(), collected.stderr
    assert "Invalid prompt" in collected.stderr  # the error file, still there, is read all the same


def test_a_connection_dropped_at_a_result_file_is_a_network_error(
    cli: Any, tmp_path: Path, batches: FakeBatches
) -> None:
    """The result file is opened as every download is: a connection closed before the answer is one line
    saying so (exit 1), no traceback, nothing saved; the next collect reads it."""
    batch_id, env = _submitted(cli, tmp_path, batches, "an otter", "a heron")
    _states(cli, batch_id, env, 3)
    batches.faults["content"] = ["reset"]
    dropped = cli("batch", "collect", batch_id, env=env)
    assert dropped.code == 1 and "Traceback" not in dropped.stderr, dropped.stderr
    assert "127.0.0.1" in dropped.stderr and not list((tmp_path / "out").glob("*.png"))
    again = cli("batch", "collect", batch_id, env=env)
    assert again.code == 0 and len(list((tmp_path / "out").glob("*.png"))) == 2, again.stderr


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_an_upload_is_sent_again_after_a_transient_failure(
    cli: Any, tmp_path: Path, batches: FakeBatches, fault: str
) -> None:
    batches.faults["upload"] = [fault]
    _submitted(cli, tmp_path, batches, "an otter", "a heron")
    assert [m for m, p in batches.requests if p.endswith("/files")] == ["POST", "POST"]
    assert len(batches.batches) == 1 and batches.uploads == [2]


@pytest.mark.parametrize("fault", ["lost", "500"])
def test_a_create_sent_again_never_makes_two_batches(
    cli: Any, tmp_path: Path, batches: FakeBatches, fault: str
) -> None:
    batches.faults["create"] = [fault]
    _, env = _submitted(cli, tmp_path, batches, "an otter")
    assert len(batches.batches) == 1  # "lost": made, found again by its tag; "500": made nothing, sent again
    made = next(iter(batches.batches.values()))
    assert made.metadata and set(made.metadata) == {"imggen_part"}
    listed = cli("batch", "list", "--json", env=env).json_lines()
    assert listed[0]["provider_batches"] == [made.id]


def test_ctrl_c_during_submit_keeps_the_ledger_and_says_how_to_go_on(cli: Any, tmp_path: Path, batches: FakeBatches
                                                                    ) -> None:  # fmt: skip
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, **_env(tmp_path, batches), "IMGGEN_BATCH_LIMITS": "1,1000000"}
    batches.faults["upload"] = ["none", "hold"]  # the second part's upload waits: Ctrl-C comes then
    prompts = _prompts(tmp_path, "an otter", "a heron")
    proc = subprocess.Popen([sys.executable, "-m", "imggen", "batch", "submit", "--prompts-file", str(prompts), "-m",
                             MODEL, "-o", "out"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while sum(1 for m, p in batches.requests if p.endswith("/files")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        batches.release.set()
    assert proc.returncode == 130, err.decode()
    batch_id = next((tmp_path / "data" / "batch-prompts").glob("b_*")).stem
    assert f"imggen batch collect {batch_id}" in err.decode() and out == b""
    with Ledger(tmp_path / "data" / "batches.sqlite") as ledger:
        record = ledger.get(batch_id)
        assert record is not None and [p.request_count for p in record.parts] == [1]
    env = _env(tmp_path, batches)
    _states(cli, batch_id, env, 3)
    collected = cli("batch", "collect", batch_id, "--json", env=env)
    assert collected.code == 4
    assert [line.get("line") for line in collected.json_lines() if "error" in line] == [2]
    assert "interrupted" in collected.stderr and len(list((tmp_path / "out").glob("*.png"))) == 1


# -- what a terminal and a pipe see ---------------------------------------------------------------


def test_wait_shows_progress_at_a_terminal_and_nothing_extra_in_a_pipe(
    cli: Any, tmp_path: Path, batches: FakeBatches
) -> None:
    from test_terminal import Terminal, plain_lines

    env = {**_env(tmp_path, batches), "IMGGEN_BATCH_LIMITS": "1,1000000"}
    prompts = _prompts(tmp_path, "an otter", "a heron")
    code, out, screen = Terminal("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "-o", "out",
                                 "--wait", env=env).finish()  # fmt: skip
    assert code == 0, screen
    shown = plain_lines(screen)
    assert any("since submitted" in line and "done" in line for line in shown), shown
    assert any(line.split()[:2] == ["PROVIDER", "BATCH"] for line in shown)
    heads = [line for line in shown if "since submitted" in line]
    assert "completed · 2/2 done, 0 failed" in heads[-1], heads  # the last drawn: both parts done
    assert {"batch-0002", "batch-0004"} <= {line.split()[0] for line in shown if line.split()[1:2] == ["completed"]}
    assert out.split()[0].startswith("b_")  # stdout: the id, then the paths, as in a pipe
    piped = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "-o", "out2", "--wait", env=env)
    assert piped.code == 0, piped.stderr
    assert "since submitted" not in piped.stderr and "\r" not in piped.stderr and "\x1b" not in piped.stderr


def test_status_and_list_are_a_table_at_a_terminal_and_columns_in_a_pipe(
    cli: Any, tmp_path: Path, batches: FakeBatches
) -> None:
    from test_terminal import Terminal, plain_lines

    batch_id, env = _submitted(cli, tmp_path, batches, "an otter", "a FAIL")
    _states(cli, batch_id, env, 3)
    _, _, screen = Terminal("batch", "status", batch_id, env=env, stdout="tty").finish()
    lines = plain_lines(screen)
    assert lines[0].split() == ["BATCH", "STATE", "MODEL", "DONE", "FAILED", "SUBMITTED"]
    assert lines[1].split()[:5] == [batch_id, "completed", MODEL, "1/2", "1"]
    assert lines[2].split() == ["PROVIDER", "BATCH", "STATE", "DONE", "FAILED", "REQUESTS"]
    assert lines[3].split()[1:] == ["completed", "1", "1", "2"]
    piped = cli("batch", "list", env=env)
    rows = [line.split("\t") for line in piped.stdout.splitlines()]
    assert len(rows) == 1 and rows[0][:5] == [batch_id, "completed", MODEL, "1/2", "1"]
    _, _, listed = Terminal("batch", "list", env=env, stdout="tty").finish()
    assert plain_lines(listed)[0].split()[0] == "BATCH"


def test_collect_streams_a_large_result_line_to_disk(cli: Any, tmp_path: Path, batches: FakeBatches) -> None:
    """A result line of 64 MB (one 48 MiB image as base64) is decoded to disk as it arrives: the collect
    process stays far below the line's size (reading it as a line, then as JSON, took several copies)."""
    import os
    import subprocess
    import sys

    from test_memory import MIB, big_png

    batches.image = big_png(48 * MIB)
    batch_id, env = _submitted(cli, tmp_path, batches, "an otter")
    _states(cli, batch_id, env, 3)
    script = ("import resource, subprocess, sys\n"
              "code = subprocess.call([sys.executable, '-m', 'imggen', *sys.argv[1:]])\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script, "batch", "collect", batch_id, "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, **env})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stdout.split()[-1]) / 1024
    saved = list((tmp_path / "out").glob("*.png"))
    assert len(saved) == 1 and saved[0].read_bytes() == batches.image
    assert peak_mib < 100, f"{peak_mib:.0f} MiB"
