"""At a real terminal (stderr a pty) the progress display must not take stdout: a pipeline or a file
receives every path or JSON line, even after Ctrl-C; the display fits 80 columns; an interrupted run
says how to finish it; -v shows each request without a secret."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from conftest import OPENAI_KEY, assert_no_secret, openai_env
from fakeserver import FakeProvider, Reply

GENERATIONS = "/v1/images/generations"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Terminal:
    """imggen with stderr on a pseudo-terminal of `columns` x `rows`; stdout a pipe, a file (`stdout=`)
    or the same terminal (`stdout="tty"`). What the terminal received is read as it comes, so a long
    display never blocks the process."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, stdout: IO[bytes] | str | None = None,
                 stdin: IO[bytes] | None = None, columns: int = 80, rows: int = 40) -> None:  # fmt: skip
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        out: Any = slave if stdout == "tty" else (stdout or subprocess.PIPE)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imggen", *args], stdout=out, stderr=slave,
            stdin=stdin if stdin is not None else subprocess.DEVNULL, env={**environ, "TERM": "xterm", **(env or {})},
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.received = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.received += chunk

    @property
    def screen(self) -> str:
        return bytes(self.received).decode("utf-8", "replace")

    def wait_for(self, ready: Callable[[], bool], limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while not ready():
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}): {self.screen}"
            assert time.monotonic() < deadline, f"never ready: {self.screen}"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        out, _ = self.proc.communicate(timeout=60)
        self.reader.join(timeout=10)
        os.close(self.master)
        return self.proc.returncode, (out or b"").decode(), self.screen


def run_at_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return Terminal(*args, env=env).finish()


def plain_lines(screen: str) -> list[str]:
    """The text of what was drawn: escape sequences removed, split at every line or carriage return."""
    return [line for line in re.split(r"\r\n|\n|\r", CSI.sub("", screen)) if line.strip()]


def cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def prompts_file(tmp_path: Path, count: int, text: str = "prompt") -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"{text} {i}\n" for i in range(1, count + 1)))
    return path


# Item 1: stdout carries the paths or JSON Lines while the display is on


def test_paths_reach_a_pipe_while_the_progress_display_is_on(tmp_path: Path) -> None:
    code, out, screen = run_at_terminal("generate", "otter", "-m", "placeholder", "-n", "3", "-o", "out")
    assert code == 0, screen
    assert len(out.splitlines()) == 3 and all(Path(p).is_file() for p in out.splitlines())
    assert "saved 3 images" in screen and "out/" not in screen


def test_paths_reach_a_file_while_the_progress_display_is_on(tmp_path: Path) -> None:
    with open(tmp_path / "paths.txt", "wb") as target:
        code, _, screen = Terminal("generate", "otter", "-m", "placeholder", "-n", "3", "-o", "out",
                                   stdout=target).finish()  # fmt: skip
    paths = (tmp_path / "paths.txt").read_text().splitlines()
    assert code == 0, screen
    assert len(paths) == 3 and all(Path(p).is_file() for p in paths)
    assert "\x1b" not in (tmp_path / "paths.txt").read_text()


def test_json_lines_of_a_batch_reach_a_pipe(fake: FakeProvider, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\n")
    code, out, screen = run_at_terminal(
        "generate", "--prompts-file", str(prompts), "-m", "gpt-image-2", "--json", "-o", "out", env=openai_env(fake)
    )
    assert code == 0, screen
    assert sorted(json.loads(line)["prompt"] for line in out.splitlines()) == ["one", "two"]


def test_json_lines_of_a_stdin_batch_reach_a_file(fake: FakeProvider, tmp_path: Path) -> None:
    with open(prompts_file(tmp_path, 14), "rb") as stdin, open(tmp_path / "out.jsonl", "wb") as target:
        code, _, screen = Terminal("generate", "-", "-m", "gpt-image-2", "--json", "-o", "out", env=openai_env(fake),
                                   stdin=stdin, stdout=target).finish()  # fmt: skip
    assert code == 0, screen
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["prompt"] for r in records) == sorted(f"prompt {i}" for i in range(1, 15))
    assert all((tmp_path / r["path"]).is_file() for r in records)
    assert "saved 14 images" in screen


def test_image_bytes_to_a_file_with_nothing_of_the_display(tmp_path: Path) -> None:
    with open(tmp_path / "otter.png", "wb") as target:
        code, _, screen = Terminal("generate", "otter", "-m", "placeholder", "-o", "-", stdout=target).finish()
    data = (tmp_path / "otter.png").read_bytes()
    assert code == 0, screen
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"\x1b[" not in data and b"saved" not in data


def test_paths_at_the_terminal_itself_are_printed_above_the_bar(tmp_path: Path) -> None:
    code, out, screen = Terminal("generate", "otter", "-m", "placeholder", "-n", "2", "-o", "out",
                                 stdout="tty").finish()  # fmt: skip
    assert code == 0, screen
    assert out == ""
    shown = plain_lines(screen)
    paths = [line.strip() for line in shown if line.strip().startswith("out/")]
    assert len(paths) == 2 and all((tmp_path / p).is_file() for p in paths), shown
    assert shown[-1].startswith("saved 2 images")


def test_json_lines_at_the_terminal_itself(fake: FakeProvider, tmp_path: Path) -> None:
    code, _, screen = Terminal("generate", "--prompts-file", str(prompts_file(tmp_path, 3)), "-m", "gpt-image-2",
                               "--json", "-o", "out", env=openai_env(fake), stdout="tty").finish()  # fmt: skip
    assert code == 0, screen
    records = [json.loads(line) for line in plain_lines(screen) if line.lstrip().startswith("{")]
    assert sorted(r["prompt"] for r in records) == ["prompt 1", "prompt 2", "prompt 3"]


def slow_after(fake: FakeProvider, fast: int, *more: Reply) -> None:
    """`fast` answers at once, then `more`, then answers that take 20 s (the test interrupts them)."""
    fake.script(GENERATIONS, *([Reply()] * fast), *more, *([Reply(delay=20)] * 20))


def test_ctrl_c_mid_batch_keeps_the_lines_of_saved_images(fake: FakeProvider, tmp_path: Path) -> None:
    slow_after(fake, 2)
    prompts = prompts_file(tmp_path, 6)
    target_path = tmp_path / "out.jsonl"
    with open(target_path, "wb") as target:
        term = Terminal("generate", "--prompts-file", str(prompts), "-m", "gpt-image-2", "--json", "-o", "out",
                        "-j", "1", env=openai_env(fake), stdout=target)  # fmt: skip
        term.wait_for(lambda: len(target_path.read_text().splitlines()) == 2 and "in flight" in term.screen)
        term.wait_for(lambda: len(fake.requests) >= 3)  # the third, slow request is out
        term.proc.send_signal(signal.SIGINT)
        code, _, screen = term.finish()
    assert code == 130, screen
    records = [json.loads(line) for line in target_path.read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["prompt 1", "prompt 2"]
    assert all((tmp_path / r["path"]).is_file() for r in records)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".imggen-manifest")) == sorted(
        Path(r["path"]).name for r in records
    )
    last = plain_lines(screen)[-1]
    assert "interrupted: kept 2 finished images" in screen
    args = ["imggen", "generate", "--prompts-file", str(prompts), "-m", "gpt-image-2", "--json", "-o", "out", "-j", "1"]
    assert last == "to finish: " + shlex.join([*args, "--resume"])


# Item 2: the display fits 80 columns and says where the run is


ELAPSED = re.compile(r"\b\d+:\d\d elapsed\b")
ETA = re.compile(r"\bETA \d+:\d\d\b")


def test_the_display_fits_80_columns_with_rows_per_prompt(fake: FakeProvider, tmp_path: Path) -> None:
    refused = Reply(status=400, json={"error": {"message": "bad prompt", "type": "invalid_request_error"}})
    slow_after(fake, 3, refused)
    prompts = prompts_file(tmp_path, 10, "a long and detailed prompt about a sea otter floating on its back, number")
    term = Terminal("generate", "--prompts-file", str(prompts), "-m", "gpt-image-2", "-o", "out", "-j", "2",
                    env=openai_env(fake))  # fmt: skip
    term.wait_for(lambda: "3/10 images · 1 failed · 2 in flight" in term.screen and bool(ETA.search(term.screen)))
    term.proc.send_signal(signal.SIGINT)
    code, _, screen = term.finish()
    assert code == 130, screen
    drawn = [line for line in plain_lines(screen) if not line.startswith("to finish: ")]  # a command to copy
    assert max(cells(line) for line in drawn) <= 80, [line for line in drawn if cells(line) > 80]
    status = next(line for line in drawn if "3/10 images · 1 failed · 2 in flight" in line)
    assert ELAPSED.search(status) and ETA.search(status), status
    rows = [line for line in drawn if "'a long and detailed prompt" in line]
    assert rows and all(line.rstrip().endswith(("0/1", "1/1", "0/0")) for line in rows), rows  # the bar kept
    assert all("…" in line for line in rows)  # the label was cut instead
    assert any(line.lstrip().startswith("failed · 'a long") for line in drawn)


def test_the_display_of_a_big_batch_fits_80_columns(fake: FakeProvider, tmp_path: Path) -> None:
    slow_after(fake, 5)
    term = Terminal("generate", "--prompts-file", str(prompts_file(tmp_path, 30)), "-m", "gpt-image-2", "-o", "out",
                    "-j", "3", env=openai_env(fake))  # fmt: skip
    term.wait_for(lambda: "5/30 images · 3 in flight" in term.screen)
    term.proc.send_signal(signal.SIGINT)
    code, _, screen = term.finish()
    assert code == 130, screen
    drawn = [line for line in plain_lines(screen) if not line.startswith("to finish: ")]  # a command to copy
    assert max(cells(line) for line in drawn) <= 80
    assert any("30 prompts" in line and line.rstrip().endswith("5/30") for line in drawn), drawn


# Item 3: an interrupted or partial run says how to finish it


def finish_args(screen: str) -> list[str]:
    last = plain_lines(screen)[-1]
    assert last.startswith("to finish: imggen "), last
    return shlex.split(last.removeprefix("to finish: imggen "))


def test_a_partial_run_gives_the_command_that_finishes_it(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import run_cli

    fake.script(GENERATIONS, Reply(), Reply(status=400, json={"error": {"message": "bad prompt"}}))
    prompts = prompts_file(tmp_path, 3, "it's an otter")
    args = ["generate", "--prompts-file", str(prompts), "-m", "gpt-image-2", "-o", "my out", "-j", "1"]
    first = run_cli(*args, env=openai_env(fake))
    assert first.code == 4, first.stderr
    again = finish_args(first.stderr)
    assert again == [*args, "--resume"]
    second = run_cli(*again, env=openai_env(fake))  # the line, run as it is, finishes the run
    assert second.code == 0, second.stderr
    assert "saved 1 image · 2 skipped (--resume)" in second.stderr and "to finish" not in second.stderr
    assert len([p for p in (tmp_path / "my out").iterdir() if p.suffix == ".png"]) == 3


def test_resume_is_added_once(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import run_cli

    fake.script(GENERATIONS, Reply(), Reply(status=400, json={"error": {"message": "bad prompt"}}))
    args = ["generate", "--prompts-file", str(prompts_file(tmp_path, 2)), "-m", "gpt-image-2", "-j", "1", "--resume",
            "-o", "out"]  # fmt: skip
    result = run_cli(*args, env=openai_env(fake))
    assert result.code == 4 and finish_args(result.stderr) == args


def test_a_stdin_batch_from_a_file_names_the_file(fake: FakeProvider, tmp_path: Path) -> None:
    slow_after(fake, 1)
    with open(prompts_file(tmp_path, 3), "rb") as stdin:
        term = Terminal("generate", "-m", "gpt-image-2", "-o", "out", "-j", "1", env=openai_env(fake), stdin=stdin)
        term.wait_for(lambda: len(fake.requests) >= 2)
        term.proc.send_signal(signal.SIGTERM)
        code, out, screen = term.finish()
    assert code == 143, screen
    assert len(out.splitlines()) == 1
    last = plain_lines(screen)[-1]
    assert last == "to finish: " + shlex.join(
        ["imggen", "generate", "-m", "gpt-image-2", "-o", "out", "-j", "1", "--resume"]
    ) + " < " + shlex.quote(str(tmp_path / "prompts.txt"))


def test_a_piped_stdin_batch_asks_for_the_same_input(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import run_cli

    fake.script(GENERATIONS, Reply(), Reply(status=400, json={"error": {"message": "bad prompt"}}))
    result = run_cli("generate", "-", "-m", "gpt-image-2", "-o", "out", "-j", "1", input=b"one\ntwo\n",
                     env=openai_env(fake))  # fmt: skip
    assert result.code == 4, result.stderr
    assert result.stderr.splitlines()[-1] == "to finish: run the same command with the same input and --resume"


def test_no_finish_line_without_a_manifest_or_when_done(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import run_cli

    fake.script(GENERATIONS, Reply(status=400, json={"error": {"message": "bad prompt"}}))
    failed = run_cli("generate", "otter", "-m", "gpt-image-2", "-o", "out", env=openai_env(fake))
    done = run_cli("generate", "otter", "-m", "gpt-image-2", "-o", "out", env=openai_env(fake))
    assert failed.code == 1 and done.code == 0
    assert "to finish" not in failed.stderr + done.stderr


def test_a_network_error_says_to_check_the_proxy_and_api_base(tmp_path: Path) -> None:
    from conftest import run_cli

    result = run_cli("generate", "otter", "-m", "gpt-image-2", "--api-base", "http://127.0.0.1:9/v1", "--retries", "0",
                     "-o", "out", env={"OPENAI_API_KEY": OPENAI_KEY})  # fmt: skip
    assert result.code == 1
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "refused the connection" in error and error.endswith("Check the network, HTTPS_PROXY and --api-base.")
    assert_no_secret(result.everything())


# Item 4: -v shows each request, its answer, timing and retries, never a secret


def test_verbose_shows_requests_answers_and_retries(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import run_cli

    fake.script(GENERATIONS, Reply(status=500, json={"error": {"message": "try later"}}))
    result = run_cli("generate", "a sea otter", "-m", "gpt-image-2", "-o", "out", "-v", env=openai_env(fake))
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines.count(f"> POST {fake.openai_base}/images/generations") == 2
    assert "> Authorization: Bearer ****6789" in lines and not any(line.startswith("note: retry") for line in lines)
    body = json.loads(next(line for line in lines if line.startswith("> {"))[2:])
    assert body["prompt"] == "a sea otter" and body["model"] == "gpt-image-2"
    assert any(re.fullmatch(r"< 500 in \d+\.\d\d s: .*try later.*", line) for line in lines), lines
    assert any(re.fullmatch(r"\* retry 1 of 2 in \d+\.\d s: .*try later.*", line) for line in lines), lines
    assert any(re.fullmatch(r"< 200 OK in \d+\.\d\d s", line) for line in lines), lines
    assert_no_secret(result.everything())
    quiet = run_cli("generate", "a sea otter", "-m", "gpt-image-2", "-o", "out", env=openai_env(fake))
    assert "> POST" not in quiet.stderr and "authorization" not in quiet.stderr


def test_verbose_prints_above_the_progress_display(fake: FakeProvider, tmp_path: Path) -> None:
    code, out, screen = Terminal("generate", "--prompts-file", str(prompts_file(tmp_path, 3)), "-m", "gpt-image-2",
                                 "-o", "out", "-v", env=openai_env(fake)).finish()  # fmt: skip
    assert code == 0, screen
    assert len(out.splitlines()) == 3
    drawn = plain_lines(screen)
    assert sum(line == f"> POST {fake.openai_base}/images/generations" for line in drawn) == 3, drawn
    assert sum(bool(re.fullmatch(r"< 200 OK in \d+\.\d\d s", line)) for line in drawn) == 3
    assert OPENAI_KEY not in screen


def test_verbose_cuts_base64_and_masks_secrets() -> None:
    from imggen.secrets import shown_url as _shown_url
    from imggen.transport import request_lines
    from imggen.types import HttpRequest

    image = "iVBORw0KGgo" + "A" * 5000
    request = HttpRequest(
        "POST", "https://generativelanguage.example/v1/models/x:generate?key=AIzaSyTESTSECRET123456&alt=json",
        headers={"x-goog-api-key": "AIzaSyTESTSECRET123456", "content-type": "application/json"},
        json={"instances": [{"image": {"bytesBase64Encoded": image}}], "prompt": "otter", "api_key": "sk-verysecret-1"},
    )  # fmt: skip
    shown = "\n".join(request_lines(request))
    assert "AIzaSyTESTSECRET123456" not in shown and "sk-verysecret-1" not in shown
    assert f"iVBORw0KGgo{'A' * 29}…(5011 chars)" in shown and "A" * 41 not in shown
    assert "> x-goog-api-key: ****3456" in shown and '"prompt": "otter"' in shown
    assert "alt=json" in _shown_url(request.url)
    session = (
        "https://storage.googleapis.com/upload/storage/v1/b/bk/o?name=a&uploadType=resumable&upload_id=ADPycdsSESSION42"
    )
    chunk = HttpRequest("PUT", session, headers={}, content=b"x")
    assert "SESSION42" not in request_lines(chunk)[0] and "uploadType=resumable" in request_lines(chunk)[0]
    signed = HttpRequest("POST", "https://x.example/", headers={}, content=b"\x89PNG binary")
    assert request_lines(signed)[-1] == "> <11 bytes>"


def test_verbose_is_offered_by_completion() -> None:
    env = {**os.environ, "_IMGGEN_COMPLETE": "complete_bash", "COMP_WORDS": "imggen generate --verb", "COMP_CWORD": "2"}
    out = subprocess.run([sys.executable, "-m", "imggen"], env=env, capture_output=True, text=True).stdout
    assert "--verbose" in out
