"""Batches: many prompts through one scheduler, rate limits, the manifest, --resume and --max-cost."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import openai_env, run_cli
from fakeserver import FakeProvider, Reply, rate_limited, server_error


def gen(fake: FakeProvider, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    data = stdin.encode() if stdin is not None else b""
    return run_cli("generate", *args, env={**openai_env(fake), **(env or {})}, input=data)


def image_requests(fake: FakeProvider) -> list:
    return [r for r in fake.requests if r.path.endswith("/images/generations")]


def test_prompts_from_stdin_skip_blanks_and_comments(fake: FakeProvider) -> None:
    prompts = "# otters\na sea otter\n\n  \na river otter\n# done\n"
    result = gen(fake, "-", "-m", "gpt-image-1", "--json", "-o", "out", stdin=prompts)
    assert result.code == 0, result.stderr
    lines = result.json_lines()
    assert sorted((line["line"], line["prompt"]) for line in lines) == [(2, "a sea otter"), (5, "a river otter")]


def test_stdin_that_is_not_a_terminal_is_read_without_dash(fake: FakeProvider) -> None:
    result = gen(fake, "-m", "gpt-image-1", "-o", "out", stdin="one\ntwo\nthree\n")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 3


def test_jsonl_with_per_line_overrides(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [
        {"prompt": "otter", "n": 2},
        {"prompt": "heron", "model": "dall-e-3", "size": "1792x1024", "quality": "hd", "name": "heron.{ext}"},
        {"prompt": "crab", "params": {"background": "transparent"}},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = gen(fake, "--prompts-file", str(path), "-m", "gpt-image-1", "-o", "out", "--json")
    assert result.code == 0, result.stderr
    by_prompt = {r.json["prompt"]: r.json for r in image_requests(fake)}
    assert by_prompt["otter"]["n"] == 2 and by_prompt["otter"]["model"] == "gpt-image-1"
    assert by_prompt["heron"]["model"] == "dall-e-3" and by_prompt["heron"]["quality"] == "hd"
    assert by_prompt["crab"]["background"] == "transparent"
    heron = next(line for line in result.json_lines() if line["prompt"] == "heron")
    assert heron["path"] == "out/heron.png" and heron["line"] == 2


def test_a_bad_jsonl_line_is_refused_naming_it_before_anything_is_sent(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [json.dumps({"prompt": f"p{i}"}) for i in range(1, 37)] + [json.dumps({"prompt": "x", "size": "9x9000"})]
    path.write_text("\n".join(rows) + "\n")
    result = gen(fake, "--prompts-file", str(path), "-m", "dall-e-3")
    assert result.code == 2 and fake.requests == []
    assert f"{path} line 37" in result.stderr
    path.write_text("\n".join([*rows[:36], "{not json"]) + "\n")
    broken = gen(fake, "--prompts-file", str(path), "-m", "dall-e-3")
    assert broken.code == 2 and "line 37" in broken.stderr and "not valid JSON" in broken.stderr


def test_fifty_prompts_with_injected_failures_save_every_image_exactly_once(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/images/generations", *[rate_limited("0.1"), server_error()] * 5)
    prompts = "".join(f"prompt number {i}\n" for i in range(50))
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "8", "--retries", "4", "-o", "out", stdin=prompts)
    assert result.code == 0, result.stderr
    assert len(result.lines) == 50 and len(set(result.lines)) == 50
    files = [p for p in (tmp_path / "out").iterdir() if p.suffix == ".png"]
    assert len(files) == 50
    manifest = [json.loads(line) for line in (tmp_path / "out" / ".imggen-manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 50 and {m["status"] for m in manifest} == {"saved"}
    assert len(image_requests(fake)) == 60
    assert fake.max_in_flight <= 8


def test_rpm_spaces_request_starts(fake: FakeProvider) -> None:
    started = time.monotonic()
    result = gen(fake, "-", "-m", "gpt-image-1", "--rpm", "120", "-j", "4", "-o", "out", stdin="a\nb\nc\nd\n")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 1.4  # four starts at least 0.5 s apart


def test_rpm_from_the_profile(fake: FakeProvider) -> None:
    run_cli("config", "set", "openai", "rpm", "120")
    started = time.monotonic()
    result = gen(fake, "-", "-m", "gpt-image-1", "-o", "out", stdin="a\nb\nc\n")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 0.9


def test_a_429_pauses_the_whole_batch(fake: FakeProvider) -> None:
    fake.script("/images/generations", rate_limited("1.5"), Reply(delay=0.2), Reply(delay=0.2))
    started = time.monotonic()
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "1", "-o", "out", stdin="a\nb\nc\n")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 1.5


def test_max_cost_refuses_before_sending(fake: FakeProvider) -> None:
    result = gen(fake, "-", "-m", "dall-e-3", "--max-cost", "0.10", "-o", "out", stdin="a\nb\nc\n")
    assert result.code == 2 and fake.requests == []
    assert "$0.1200" in result.stderr and "--max-cost" in result.stderr
    assert gen(fake, "-", "-m", "dall-e-3", "--max-cost", "0.12", "-o", "out", stdin="a\nb\nc\n").code == 0


def test_batch_exit_codes_and_failure_lines(fake: FakeProvider) -> None:
    fake.script(
        "/images/generations",
        Reply(status=400, json={"error": {"message": "bad", "type": "x", "param": None, "code": None}}),
    )
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "1", "--json", "-o", "out", stdin="a\nb\n")
    assert result.code == 4
    failure = next(line for line in result.json_lines() if "error" in line)
    assert failure["line"] == 1 and failure["prompt"] == "a"
    fake.script("/images/generations", *[Reply(status=400, json={"error": {"message": "bad"}})] * 2)
    assert gen(fake, "-", "-m", "gpt-image-1", "-o", "out2", stdin="a\nb\n").code == 1


def test_resume_skips_saved_images_and_retries_failures(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/images/generations", Reply(status=500, json={"error": {"message": "down"}}))
    first = gen(fake, "-", "-m", "gpt-image-1", "-j", "1", "--retries", "0", "-o", "out", stdin="a\nb\nc\n")
    assert first.code == 4
    before = len(image_requests(fake))
    again = gen(fake, "-", "-m", "gpt-image-1", "--resume", "-o", "out", stdin="a\nb\nc\n")
    assert again.code == 0, again.stderr
    assert len(again.lines) == 1 and len(image_requests(fake)) - before == 1
    assert "skipped" in again.stderr
    done = gen(fake, "-", "-m", "gpt-image-1", "--resume", "-o", "out", stdin="a\nb\nc\n")
    assert done.code == 0 and done.lines == [] and len(image_requests(fake)) - before == 1


def test_resume_with_a_larger_n_makes_only_the_new_indices(fake: FakeProvider) -> None:
    gen(fake, "otter", "-m", "dall-e-3", "-n", "2", "-o", "out", "--name", "o-{index}.{ext}")
    result = gen(fake, "otter", "-m", "dall-e-3", "-n", "4", "-o", "out", "--name", "o-{index}.{ext}", "--resume")
    assert sorted(result.lines) == ["out/o-3.png", "out/o-4.png"]
    assert len(image_requests(fake)) == 4


def test_batch_dry_run_shows_every_prompt(fake: FakeProvider) -> None:
    result = gen(fake, "-", "-m", "gpt-image-1", "--dry-run", stdin="a\nb\n")
    assert result.code == 0 and result.stdout.count("POST ") == 2 and fake.requests == []


def test_prompt_and_prompts_file_together_is_a_usage_error(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("x\n")
    assert gen(fake, "otter", "--prompts-file", str(path)).code == 2


def test_the_same_batch_runs_against_bedrock(fake: FakeProvider) -> None:
    from fakebedrock import AWS_KEY_ID, AWS_SECRET, aws_error

    throttled = aws_error(Reply, 429, "ThrottlingException", "Too many requests")
    fake.script("/invoke", throttled, throttled)
    env = {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url,
    }
    prompts = "".join(f"lighthouse {i}\n" for i in range(12))
    result = run_cli(
        "generate", "-", "-m", "amazon.nova-canvas-v1:0", "-j", "4", "-o", "out", env=env, input=prompts.encode()
    )
    assert result.code == 0, result.stderr
    assert len(result.lines) == 12


def test_the_same_batch_runs_against_the_gemini_api(fake: FakeProvider) -> None:
    from fakegoogle import GEMINI_KEY, google_error

    fake.script(":generateContent", google_error(Reply, 429, "RESOURCE_EXHAUSTED", "Quota exceeded."))
    prompts = "".join(f"fox {i}\n" for i in range(12))
    result = run_cli(
        "generate",
        "-",
        "-m",
        "gemini/gemini-2.5-flash-image",
        "--api-base",
        fake.base_url + "/v1beta",
        "-j",
        "4",
        "-o",
        "out",
        env={"GEMINI_API_KEY": GEMINI_KEY},
        input=prompts.encode(),
    )
    assert result.code == 0, result.stderr
    assert len(result.lines) == 12
