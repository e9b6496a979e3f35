"""What the engine does for every job API (issue 15, items 7-9), shown with Black Forest Labs' fake:
the whole job under --timeout, polls backing off and honouring Retry-After, the job's status for the
progress display (nothing more in a pipe), its cancel request on Ctrl-C, its id in the manifest before
the first poll and --resume collecting it, and a result URL downloaded at once with the download
retries and never with the key."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest

import imggen
from fakebfl import FakeBfl
from imggen import engine
from imggen.api import execute, plan_generation
from imggen.errors import ConfigError, NetworkError
from imggen.providers import bfl, get_provider
from imggen.providers.contract import Pending
from imggen.transport import Transport
from imggen.types import HttpRequest, ImageRequest


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBfl]:
    with FakeBfl() as served:
        for name, value in served.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("IMGGEN_POLL_INTERVAL", "0.01")
        yield served


def manifest(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / ".imggen-manifest.jsonl").read_text().splitlines()]


# --timeout: a deadline for the whole job.


def test_the_whole_job_is_held_to_the_timeout(fake: FakeBfl) -> None:
    fake.ready_after = 60
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"job http://127\.0\.0\.1:\d+/v1/get_result\?id=\S+ at 127\.0\.0\.1 did "
                                           r"not finish within 0\.3 s \(still queued\)") as caught:  # fmt: skip
        imggen.generate("a fox", model="bfl/flux-2-pro", timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3
    assert "--resume" in (caught.value.hint or "")
    assert len(fake.submits()) == 1 and len(fake.polls()) >= 2


def test_a_slow_result_download_counts_against_the_same_deadline(fake: FakeBfl) -> None:
    fake.result_failures = 100  # 503 each time: the download retries until the job's time is up
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"did not finish within 0\.4 s"):
        imggen.generate("a fox", model="bfl/flux-2-pro", timeout=0.4, retries=10)
    assert time.monotonic() - started < 1.5


# Polling: backoff, Retry-After.


def test_polls_back_off_from_the_providers_wait_to_a_cap() -> None:
    job = Pending(HttpRequest("GET", "http://x/poll", {}), wait=0.5)
    follow = engine._Job.__new__(engine._Job)
    delays = [follow._delay(job, polls, None) for polls in range(8)]
    assert delays[:4] == [0.5, 0.75, 1.125, 1.6875]
    assert delays[-1] == engine.POLL_CAP and all(a <= b for a, b in itertools.pairwise(delays))
    assert follow._delay(Pending(job.request, wait=10.0), 3, None) == 10.0  # a provider asking longer is heard
    assert follow._delay(job, 0, 2.5) == 2.5  # Retry-After wins


def test_retry_after_on_poll_answers_is_honoured(fake: FakeBfl) -> None:
    pending = {"id": "x", "status": "Pending", "result": None, "progress": None}
    fake.poll_replies = [(202, {"Retry-After": "0.3"}, pending), (429, {"Retry-After": "0.2"}, {"detail": "slow down"}),
                         (503, {"Retry-After": "0.1"}, {"detail": "busy"})]  # fmt: skip
    imggen.generate("a fox", model="bfl/flux-2-pro", retries=3)
    assert len(fake.polls()) == 4
    stamps = fake.poll_stamps
    assert stamps[1] - stamps[0] >= 0.29  # the 202's Retry-After, not the 10 ms pace
    assert stamps[2] - stamps[1] >= 0.19 and stamps[3] - stamps[2] >= 0.09  # the transport's retries heard theirs


def test_a_bad_poll_interval_is_a_config_error(fake: FakeBfl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_POLL_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="IMGGEN_POLL_INTERVAL must be a number of seconds"):
        imggen.generate("a fox", model="bfl/flux-2-pro")


# The job's status: told to the run's hook, shown on a terminal's display only.


def test_the_jobs_status_is_told_once_per_change(fake: FakeBfl) -> None:
    fake.statuses = ["Pending", "Pending", "Pending"]  # the second and third report progress: running
    events: list[tuple[str, dict[str, Any]]] = []
    plan = plan_generation("a fox", "bfl/flux-2-pro")
    asyncio.run(execute(plan, on_event=lambda kind, data: events.append((kind, data))))
    jobs = [data for kind, data in events if kind == "job"]
    assert [(j["status"], j["submitted"]) for j in jobs] == [("queued", True), ("running", False)]
    assert jobs[0]["job_id"].startswith(fake.base) and [k for k, _ in events][-1] == "done"


def test_the_progress_display_shows_queued_and_running_jobs_on_a_terminal_only() -> None:
    from imggen.commands.progress import Progress

    plan = plan_generation("a fox", "bfl/flux-2-pro")
    piped = Progress(1, 2, [("a fox", 2)], enabled=True)  # not a terminal here: no display
    hook = piped.hook(0, plan)
    hook("start", {"index": 1, "n": 1})
    hook("job", {"index": 1, "n": 1, "status": "queued", "job_id": "j", "submitted": True})
    assert piped.jobs == {} and "queued" not in piped.status()
    shown = Progress(1, 2, [("a fox", 2)], enabled=True)
    shown.bar, shown.tasks = mock.Mock(), {0: "row"}
    hook = shown.hook(0, plan)
    for index, status in ((1, "queued"), (2, "queued"), (2, "running")):
        hook("start", {"index": index, "n": 1}) if status == "queued" else None
        hook("job", {"index": index, "n": 1, "status": status, "job_id": f"j{index}", "submitted": False})
    assert "2 in flight (1 queued, 1 running)" in shown.status()
    assert shown.bar.update.call_args.kwargs["description"].endswith(" · running")
    hook("done", {"index": 2, "n": 1})
    assert "1 in flight (1 queued)" in shown.status()


# Ctrl-C: the job's cancel request, once.


class Cancellable(bfl.BflProvider):
    """BFL documents no cancel; this test provider adds one (the fake's test-only route) to show the engine's."""

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> Any:
        job = super().parse_response(request, response)
        job.cancel = HttpRequest("POST", job.job_id.replace("get_result", "_test/cancel"), {})
        return job


def test_an_interrupted_job_is_cancelled_once(fake: FakeBfl) -> None:
    fake.ready_after, fake.cancellable = 60, True
    plan = plan_generation("a fox", "bfl/flux-2-pro")
    submitted: list[Pending] = []

    async def main() -> None:
        async with Transport(timeout=30, retries=2) as transport:
            task = asyncio.ensure_future(engine.run(Cancellable(), plan.requests[0], plan.settings, transport,
                                                    on_job=lambda job, new: submitted.append(job)))  # fmt: skip
            while not fake.polls():
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()  # the runner cancels its tasks again as it unwinds: the cancel still goes out
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    task_id = submitted[0].job_id.rsplit("=", 1)[1]
    assert fake.cancelled == [task_id]
    cancel = next(r for r in fake.requests if r.path == "/v1/_test/cancel")
    assert cancel.headers.get("x-key")  # authorised like any of the provider's requests


def test_a_job_without_a_cancel_request_just_stops(fake: FakeBfl) -> None:
    fake.ready_after = 60
    plan = plan_generation("a fox", "bfl/flux-2-pro")

    async def main() -> None:
        async with Transport(timeout=30) as transport:
            task = asyncio.ensure_future(engine.run(get_provider("bfl"), plan.requests[0], plan.settings, transport))
            while not fake.polls():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 1


# The manifest and --resume.


def test_resume_collects_a_submitted_job_instead_of_paying_again(fake: FakeBfl, tmp_path: Path) -> None:
    fake.ready_after = 60
    [failed] = list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, timeout=0.2))
    assert isinstance(failed.error, NetworkError)
    [submitted] = [line for line in manifest(tmp_path) if line["status"] == "submitted"]
    assert submitted["job_id"].startswith(fake.base) and (submitted["index"], submitted["n"]) == (1, 1)
    fake.ready_after = 0  # the job finished at the provider meanwhile
    [result] = list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, resume=True))
    assert result.ok and result.path is not None and result.path.exists()
    assert len(fake.submits()) == 1  # collected, not submitted again
    assert fake.polls()[-1].query["id"] == submitted["job_id"].rsplit("=", 1)[1]
    assert list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, resume=True)) == []
    assert len(fake.submits()) == 1


def test_resume_submits_again_a_job_the_provider_no_longer_has(fake: FakeBfl, tmp_path: Path) -> None:
    fake.ready_after = 60
    list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, timeout=0.2))
    fake.jobs.clear()  # expired at BFL: "Task not found"
    fake.ready_after = 0
    [result] = list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, resume=True))
    assert result.ok and len(fake.submits()) == 2


def test_without_resume_an_old_job_is_not_collected(fake: FakeBfl, tmp_path: Path) -> None:
    fake.ready_after = 60
    list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, timeout=0.2))
    fake.ready_after = 0
    [result] = list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path, overwrite=True))
    assert result.ok and len(fake.submits()) == 2


# Result URLs: downloaded at once, with retries, never with the key.


def test_the_result_download_is_retried(fake: FakeBfl, tmp_path: Path) -> None:
    fake.result_failures = 1  # a 503 first (the transport's backoff: 0.5 s)
    [result] = list(imggen.run(["a heron"], model="bfl/flux-2-pro", output_dir=tmp_path, retries=2))
    assert result.ok and len(fake.downloads()) == 2
    assert all("x-key" not in r.headers for r in fake.downloads())
    fake.result_failures = 1
    [result] = list(imggen.run(["a crane"], model="bfl/flux-2-pro", output_dir=tmp_path, retries=0))
    assert result.error is not None and "503" in str(result.error)


def test_the_result_is_downloaded_before_the_job_is_reported_done(fake: FakeBfl) -> None:
    events: list[str] = []
    plan = plan_generation("a fox", "bfl/flux-2-pro")

    async def on_images(images: list[Any]) -> None:
        events.append("images")
        assert images[0].b64_json is not None  # in hand already: the signed URL is not needed any more

    asyncio.run(execute(plan, on_event=lambda kind, data: events.append(kind), on_images=on_images))
    assert len(fake.downloads()) == 1 and events[-2:] == ["done", "images"]


def test_ctrl_c_then_resume_collects_the_job_without_paying_again(fake: FakeBfl, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    fake.ready_after = 60
    args = ["generate", "an otter", "-m", "bfl/flux-2-pro", "-o", str(tmp_path / "out"), "--name", "otter.{ext}"]
    proc = subprocess.Popen([sys.executable, "-m", "imggen", *args], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 20
    while not fake.polls() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"--resume" in err
    [submitted] = [line for line in manifest(tmp_path / "out") if line["status"] == "submitted"]
    fake.ready_after = 0
    [result] = list(imggen.run(["an otter"], model="bfl/flux-2-pro", output_dir=tmp_path / "out", name="otter.{ext}",
                               resume=True))  # fmt: skip
    assert result.ok and result.path == tmp_path / "out" / "otter.png"
    assert len(fake.submits()) == 1 and fake.polls()[-1].query["id"] == submitted["job_id"].rsplit("=", 1)[1]
