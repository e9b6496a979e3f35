"""imggen.run and imggen.arun: a batch from Python, with the command line's scheduler, manifest,
resume and cost guard, each image or failure yielded as it completes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import imggen
from conftest import OPENAI_KEY
from fakeserver import FakeProvider, Reply


@pytest.fixture
def openai(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base)
    return fake


def image_requests(fake: FakeProvider) -> list[object]:
    return [r for r in fake.requests if r.path.endswith("/images/generations")]


def test_run_saves_every_job_and_writes_the_manifest(tmp_path: Path) -> None:
    jobs = ["a sea otter", {"prompt": "a red fox", "n": 2, "name": "fox-{index}.{ext}"}]
    results = list(imggen.run(jobs, model="placeholder", output_dir="out", seed=7))
    assert all(r.ok for r in results) and len(results) == 3
    assert sorted((r.job, r.index) for r in results) == [(0, 1), (1, 1), (1, 2)]
    assert {r.prompt for r in results if r.job == 1} == {"a red fox"}
    assert all(r.path is not None and r.path.is_file() for r in results)
    assert {p.name for p in (tmp_path / "out").glob("fox-*")} == {"fox-1.png", "fox-2.png"}
    manifest = [json.loads(line) for line in (tmp_path / "out" / ".imggen-manifest.jsonl").read_text().splitlines()]
    assert sorted((m["status"], m["line"], m["index"]) for m in manifest) == [
        ("saved", 1, 1), ("saved", 2, 1), ("saved", 2, 2)
    ]  # fmt: skip


def test_resume_skips_saved_images(tmp_path: Path) -> None:
    assert len(list(imggen.run(["otter", "fox"], model="placeholder", output_dir="out"))) == 2
    assert list(imggen.run(["otter", "fox"], model="placeholder", output_dir="out", resume=True)) == []
    more = list(imggen.run(["otter", {"prompt": "fox", "n": 2}], model="placeholder", output_dir="out", resume=True))
    assert [(r.prompt, r.index) for r in more] == [("fox", 2)]


def test_max_cost_refuses_before_anything_is_sent(openai: FakeProvider) -> None:
    with pytest.raises(imggen.ImggenError) as caught:
        imggen.run(["a", "b", "c"], model="dall-e-3", output_dir="out", max_cost=0.10, allow_retired=True)
    assert "$0.1200 is above max_cost= $0.1" in str(caught.value) and caught.value.exit_code == 2
    assert image_requests(openai) == []
    results = list(imggen.run(["a", "b", "c"], model="dall-e-3", output_dir="out", max_cost=0.12, allow_retired=True))
    assert len(results) == 3 and len(image_requests(openai)) == 3


def test_results_arrive_as_they_complete(openai: FakeProvider) -> None:
    openai.script("/images/generations", Reply(default=True, delay=2.0))  # one of the two is slow
    started = time.monotonic()
    arrivals = []
    for result in imggen.run(["a", "b"], model="gpt-image-1", output_dir="out", concurrency=2):
        assert result.ok, result.error
        arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 2 and arrivals[0] < 1.5 <= arrivals[1], arrivals


def test_leaving_the_loop_early_stops_the_run(openai: FakeProvider, tmp_path: Path) -> None:
    openai.script("/images/generations", Reply(default=True, delay=5.0))
    started = time.monotonic()
    for _result in imggen.run(["a", "b"], model="gpt-image-1", output_dir="out", concurrency=2):
        break
    assert time.monotonic() - started < 4
    assert not list((tmp_path / "out").glob(".imggen-run-*"))  # the run's temporary folder is gone


def test_failures_are_results_with_their_error(openai: FakeProvider) -> None:
    openai.script("/images/generations", Reply(status=400, json={"error": {"message": "bad", "code": "x"}}))
    results = list(imggen.run(["a", "b"], model="gpt-image-1", output_dir="out", concurrency=1, retries=0))
    assert sorted(r.ok for r in results) == [False, True]
    failed = next(r for r in results if not r.ok)
    assert isinstance(failed.error, imggen.errors.GenerationError) and failed.path is None


def test_arun_in_an_event_loop() -> None:
    async def main() -> list[imggen.Result]:
        return [r async for r in imggen.arun(["otter"], model="placeholder", output_dir="out", n=2)]

    results = asyncio.run(main())
    assert sorted(r.index for r in results if r.index is not None) == [1, 2]


def test_mistakes_are_said_before_anything_is_sent(openai: FakeProvider) -> None:
    with pytest.raises(TypeError, match="did you mean 'size'"):
        imggen.run(["a"], model="placeholder", sizee="1024x1024")
    with pytest.raises(imggen.ImggenError, match=r"jobs\[1\] has unknown key 'colour'"):
        imggen.run(["a", {"prompt": "b", "colour": "red"}], model="placeholder")
    with pytest.raises(imggen.ImggenError, match=r"jobs\[0\]: 'n' must be a whole number"):
        imggen.run([{"prompt": "b", "n": "2"}], model="placeholder")
    with pytest.raises(imggen.ImggenError, match="concurrency"):
        imggen.run(["a"], model="placeholder", concurrency=0)
    assert openai.requests == []


def test_a_user_script_type_checks(tmp_path: Path) -> None:
    (tmp_path / "batch.py").write_text(
        "from pathlib import Path\n\nimport imggen\n\n\n"
        "async def main() -> list[Path]:\n"
        "    return [r.path async for r in imggen.arun(['otter'], model='placeholder') if r.path is not None]\n\n\n"
        "for result in imggen.run(['otter', {'prompt': 'fox', 'n': 2}], output_dir='out', resume=True, max_cost=1):\n"
        "    index: int | None = result.index\n"
        "    error: imggen.ImggenError | None = result.error\n"
        "wrong: str = next(imggen.run(['otter'])).path\n"
    )
    from mypy import api

    stdout, _stderr, _code = api.run(["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / ".cache"),
                                      str(tmp_path / "batch.py")])  # fmt: skip
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].endswith(
        'Incompatible types in assignment (expression has type "Path | None", variable has type "str")  [assignment]'
    ), stdout
