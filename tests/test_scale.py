"""Big batches (issue 10 item 21): prompts read as a stream, validated whole before anything is sent
or printed; and a refused key stops the batch (item 14) so --resume can finish it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OPENAI_KEY, assert_no_secret, azure_env, openai_env, run_cli
from fakeserver import FakeProvider, Reply, openai_error


def gen(fake: FakeProvider, *args: str, stdin: str | None = None):
    return run_cli("generate", *args, env=openai_env(fake), input=stdin.encode() if stdin is not None else None)


def sent(fake: FakeProvider) -> list:
    return [r for r in fake.requests if r.path.endswith("/images/generations")]


def write_lines(path: Path, count: int, bad: dict[int, str] | None = None) -> Path:
    with path.open("w") as handle:
        for number in range(1, count + 1):
            handle.write((bad or {}).get(number, f"prompt number {number}") + "\n")
    return path


def test_twenty_thousand_prompts_dry_run_json_prints_a_line_each(fake: FakeProvider, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "big.txt", 20_000)
    result = gen(fake, "--prompts-file", str(path), "-m", "gpt-image-1", "--dry-run", "--json")
    assert result.code == 0, result.stderr
    lines = result.json_lines()
    assert len(lines) == 20_000
    assert [line["body"]["prompt"] for line in lines[:3]] == ["prompt number 1", "prompt number 2", "prompt number 3"]
    assert lines[-1]["body"]["prompt"] == "prompt number 20000"
    assert sent(fake) == [] and not (tmp_path / "out").exists()
    assert_no_secret(result.everything())


def test_a_batch_line_is_printed_exactly_as_the_same_prompt_alone(fake: FakeProvider, tmp_path: Path) -> None:
    """Lines of one shape share a serialised template; quotes, backslashes and non-ASCII must come
    out exactly as a full build makes them."""
    prompts = ['a "quoted" otter', "back\\slash \u00fcber \U0001f9a6", "tab\there", "plain"]
    path = tmp_path / "p.txt"
    path.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    batch = gen(fake, "--prompts-file", str(path), "-m", "dall-e-3", "-n", "2", "--dry-run", "--json")
    assert batch.code == 0, batch.stderr
    alone = [gen(fake, p, "-m", "dall-e-3", "-n", "2", "--dry-run", "--json").lines for p in prompts]
    assert batch.lines == [line for lines in alone for line in lines]
    assert len(batch.lines) == 8  # dall-e-3 takes one image per request


def test_jsonl_lines_with_different_options_each_get_their_own(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": f"p{i}", "seed": i} if i % 2 else {"prompt": f"p{i}", "size": "1024x1536"} for i in range(300)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = gen(fake, "--prompts-file", str(path), "-m", "gpt-image-1", "--dry-run", "--json")
    assert result.code == 0, result.stderr
    bodies = [line["body"] for line in result.json_lines()]
    assert [b["prompt"] for b in bodies] == [f"p{i}" for i in range(300)]
    assert all(b["size"] == "1024x1536" for b in bodies[::2])
    assert all("size" not in b for b in bodies[1::2])


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_line_near_the_end_stops_everything_before_it_starts(
    fake: FakeProvider, tmp_path: Path, dry_run: bool
) -> None:
    path = tmp_path / "big.jsonl"
    rows = [json.dumps({"prompt": f"p{i}"}) for i in range(1, 20_001)]
    rows[19_998] = json.dumps({"prompt": "x", "size": "9x9000"})
    path.write_text("\n".join(rows) + "\n")
    flags = ["--dry-run", "--json"] if dry_run else ["-o", "out"]
    result = gen(fake, "--prompts-file", str(path), "-m", "dall-e-3", *flags)
    assert result.code == 2
    assert f"{path} line 19999" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and sent(fake) == [] and not (tmp_path / "out").exists()


def test_stdin_batches_are_read_once_and_checked_whole(fake: FakeProvider, tmp_path: Path) -> None:
    prompts = "".join(f"prompt {i}\n" for i in range(5_000))
    result = gen(fake, "-", "-m", "gpt-image-1", "--dry-run", "--json", stdin=prompts)
    assert result.code == 0, result.stderr
    assert [line["body"]["prompt"] for line in result.json_lines()] == [f"prompt {i}" for i in range(5_000)]
    bad = gen(fake, "-", "-m", "gpt-image-1", "-o", "out", stdin=prompts + "x" * 40_000 + "\n")
    assert bad.code == 2 and "stdin line 5001" in bad.stderr
    assert bad.stdout == "" and sent(fake) == [] and not (tmp_path / "out").exists()
    last = gen(fake, "-", "-m", "gpt-image-1", "-o", "out", "--json", stdin="one\ntwo without a line break")
    assert last.code == 0, last.stderr
    assert sorted(line["prompt"] for line in last.json_lines()) == ["one", "two without a line break"]


def test_a_long_batch_saves_every_image_once_within_the_concurrency(fake: FakeProvider, tmp_path: Path) -> None:
    prompts = "".join(f"prompt {i}\n" for i in range(300))
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "4", "-o", "out", stdin=prompts)
    assert result.code == 0, result.stderr
    assert len(set(result.lines)) == 300 and len(list((tmp_path / "out").glob("*.png"))) == 300
    assert len(sent(fake)) == 300 and fake.max_in_flight <= 4
    manifest = (tmp_path / "out" / ".imggen-manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 300


def peak_mib(*args: str, env: dict[str, str]) -> float:
    measure = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "imggen", *args],
                          env=env, capture_output=True, check=True, timeout=120)  # fmt: skip
    return float(proc.stdout)


def test_memory_does_not_grow_with_the_number_of_prompts(fake: FakeProvider, tmp_path: Path) -> None:
    """Prompts held in memory grew by tens of MiB from 10,000 to 100,000; streamed, they take the same.
    A generous margin: this is about growth per prompt, not the exact figure."""
    env = {**os.environ, **openai_env(fake)}
    small = write_lines(tmp_path / "small.txt", 10_000)
    large = write_lines(tmp_path / "large.txt", 100_000)
    common = ("-m", "gpt-image-1", "--dry-run", "--json")
    assert peak_mib("generate", "--prompts-file", str(large), *common, env=env) < 15 + peak_mib(
        "generate", "--prompts-file", str(small), *common, env=env
    )


def test_a_refused_key_stops_the_batch_and_resume_finishes_it(fake: FakeProvider, tmp_path: Path) -> None:
    refused = openai_error(401, f"Incorrect API key provided: {OPENAI_KEY}.", code="invalid_api_key")
    fake.script("/images/generations", refused, refused)
    prompts = "".join(f"prompt {i}\n" for i in range(40))
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "2", "-o", "out", stdin=prompts)
    assert result.code == 3, result.stderr
    assert len(sent(fake)) <= 2  # the two in flight when the first 401 came; nothing after
    not_sent = [line for line in result.stderr.splitlines() if "not sent" in line and "error:" in line]
    assert len(not_sent) == 1 and "--resume" in not_sent[0] and "(401)" in not_sent[0]
    assert "Traceback" not in result.stderr
    assert_no_secret(result.everything())
    manifest = tmp_path / "out" / ".imggen-manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []
    assert all(r["status"] == "failed" for r in records) and len(records) <= 2
    assert_no_secret(manifest.read_text() if manifest.exists() else "")

    fixed = gen(fake, "-", "-m", "gpt-image-1", "-j", "2", "-o", "out", "--resume", stdin=prompts)
    assert fixed.code == 0, fixed.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 40 and len(fixed.lines) == 40


def test_a_refused_key_in_json_mode_says_which_prompts_were_not_sent(fake: FakeProvider) -> None:
    fake.script("/images/generations", openai_error(403, "Forbidden", code="forbidden"))
    prompts = "".join(f"prompt {i}\n" for i in range(10))
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "1", "-o", "out", "--json", stdin=prompts)
    assert result.code == 3, result.stderr
    lines = result.json_lines()
    assert len(sent(fake)) == 1
    assert [line["error"]["type"] for line in lines] == ["auth_error"] + ["not_sent"] * 9
    assert {line["line"] for line in lines} == set(range(1, 11))


def test_a_refused_key_stops_only_the_lines_that_use_it(fake: FakeProvider, tmp_path: Path) -> None:
    """JSONL lines may name models of another provider: their own credentials are not stopped."""
    fake.script("/v1/images/generations", openai_error(401, "Incorrect API key provided.", code="invalid_api_key"))
    lines = [{"prompt": f"otter {i}", "model": "gpt-image-1" if i % 2 else "azure/my-dalle"} for i in range(8)]
    prompts = tmp_path / "mixed.jsonl"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = {**openai_env(fake), **azure_env(fake)}
    result = run_cli("generate", "--prompts-file", str(prompts), "-j", "1", "-o", "out", env=env)
    assert result.code == 3, result.stderr
    azure = [r for r in fake.requests if r.path.startswith("/openai/deployments/")]
    assert len(azure) == 4 and len(result.lines) == 4  # every Azure line went out and was saved
    assert len([r for r in fake.requests if r.path == "/v1/images/generations"]) == 1
    assert "3 images of 3 prompts not sent" in result.stderr


def test_the_python_api_stops_a_plan_at_a_refused_key(fake: FakeProvider) -> None:
    fake.script("/images/generations", openai_error(401, "Incorrect API key provided."))
    script = (
        "import imggen\n"
        "try:\n"
        "    imggen.generate('otter', 'dall-e-3', n=5, concurrency=1)\n"
        "except imggen.ImggenError as exc:\n"
        "    print(type(exc).__name__, exc.exit_code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, **openai_env(fake)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.stdout.split() == ["AuthError", "3"], proc.stderr
    assert len(sent(fake)) == 1  # dall-e-3 makes one image per request: four were never sent


def test_other_failures_do_not_stop_the_batch(fake: FakeProvider) -> None:
    fake.script("/images/generations", openai_error(400, "bad prompt"), Reply(status=200))
    result = gen(fake, "-", "-m", "gpt-image-1", "-j", "1", "-o", "out", stdin="a\nb\nc\n")
    assert result.code == 4 and len(result.lines) == 2 and "not sent" not in result.stderr


def test_a_bad_name_on_a_late_jsonl_line_is_refused_before_anything_is_sent(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [json.dumps({"prompt": f"p{i}"}) for i in range(500)] + [json.dumps({"prompt": "x", "name": "{nope}.png"})]
    path.write_text("\n".join(rows) + "\n")
    result = gen(fake, "--prompts-file", str(path), "-m", "gpt-image-1", "-o", "out")
    assert result.code == 2 and f"{path} line 501" in result.stderr and "{nope}" in result.stderr
    assert sent(fake) == [] and result.stdout == ""


def test_the_proxy_keeps_serving_after_an_upstream_401(fake: FakeProvider, tmp_path: Path) -> None:
    """Stopping at a refused key is for batch runs: the proxy's requests come from many clients."""
    from servehelp import Served, deployment, proxy_config

    entry = deployment("d", "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY)
    config = proxy_config(entry, router={"cooldown_time": 0})  # its own cooldown is not what is tested
    fake.script("/images/generations", openai_error(401, "Incorrect API key provided."))
    served = Served(tmp_path, config)
    try:
        first = served.post({"model": "d", "prompt": "x"})
        second = served.post({"model": "d", "prompt": "y", "n": 2})
    finally:
        served.stop()
    assert first.status_code == 502  # the upstream refused imggen's key, not the client's
    assert second.status_code == 200 and len(second.json()["data"]) == 2
    assert len(sent(fake)) == 3


def test_stdin_that_is_not_utf8_names_its_line(fake: FakeProvider) -> None:
    result = run_cli("generate", "-", "-m", "gpt-image-1", "--dry-run", env=openai_env(fake),
                     input=b"one\ntwo\nbad \xff\xfe here\n")  # fmt: skip
    assert result.code == 2 and "stdin line 3 is not valid UTF-8" in result.stderr and result.stdout == ""
