"""Files and streams: answers of the wrong shape, writes that fail mid-run, a damaged manifest,
kill -9 leftovers and file modes (issue 10, items 10, 17, 18, 19, 20)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_no_secret, openai_env, run_cli, wait_for
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakegoogle import GEMINI_KEY
from fakeserver import TINY_JPEG, TINY_PNG, FakeProvider, Reply

GOOD = base64.b64encode(TINY_PNG).decode()
MANIFEST = ".imggen-manifest.jsonl"


def gen(fake: FakeProvider, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    data = stdin.encode() if stdin is not None else b""
    return run_cli("generate", *args, env={**openai_env(fake), **(env or {})}, input=data)


def popen(fake: FakeProvider, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imggen", "generate", *args], env={**os.environ, **openai_env(fake)}, **kwargs
    )


def records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / MANIFEST).read_text().splitlines()]


def images(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in (".png", ".jpg"))


def hidden(directory: Path) -> list[str]:
    """imggen's temporary files and folders (everything hidden but the manifest)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") and p.name != MANIFEST)


def clean(result: Any) -> None:
    """What every failure here must look like: no traceback, no exit 120, no secret."""
    assert "Traceback" not in result.stderr and result.code != 120
    assert_no_secret(result.everything())


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)  # children inherit it, as from a shell
    try:
        yield
    finally:
        os.umask(old)


# Item 10: a 2xx answer of the wrong shape fails that request alone.

BAD_OPENAI = [
    ({"data": [{"b64_json": 123}]}, "has a b64_json that is not a string"),
    ({"data": [{"b64_json": ["a", "b"]}]}, "has a b64_json that is not a string"),
    ({"data": [{"url": {"href": "x"}}]}, "has a url that is not a string"),
    ({"data": ["not an object"]}, "has neither b64_json nor url"),
    ({"data": {"b64_json": GOOD}}, "holds no images"),
]


@pytest.mark.parametrize(("payload", "words"), BAD_OPENAI)
def test_a_wrong_field_type_fails_that_request_and_the_batch_goes_on(
    fake: FakeProvider, tmp_path: Path, payload: dict[str, Any], words: str
) -> None:
    fake.script("/images/generations", Reply(json=payload))
    result = gen(fake, "-", "-m", "dall-e-3", "-j", "1", "-o", "out", "--name", "{prompt}.{ext}", stdin="one\ntwo\n")
    clean(result)
    assert result.code == 4, result.stderr
    assert result.lines == ["out/two.png"]
    [line] = error_lines(result.stderr)
    assert words in line and '"one"' in line
    assert sorted(r["status"] for r in records(tmp_path / "out")) == ["failed", "saved"]
    assert images(tmp_path / "out") == ["two.png"] and hidden(tmp_path / "out") == []


KEPT_OPENAI = [
    {"usage": {"input_tokens": [1], "output_tokens": 4160, "total_tokens": 4170}},
    {"usage": [10, 4160]},
    {"usage": {"input_tokens": "10", "output_tokens": {"n": 1}, "input_tokens_details": [1]}},
    {"usage": {"input_tokens": 1e400, "output_tokens": -5}},
]


@pytest.mark.parametrize("usage", KEPT_OPENAI)
def test_a_bad_usage_keeps_the_image_and_the_catalog_estimate(
    fake: FakeProvider, tmp_path: Path, usage: dict[str, Any]
) -> None:
    fake.script("/images/generations", Reply(json={"data": [{"b64_json": GOOD}], **usage}))
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", "out", "--json")
    clean(result)
    assert result.code == 0, result.stderr
    [line] = result.json_lines()
    assert line["cost_usd"] and line["cost_usd"] > 0  # the catalog's estimate, not a crash on the tokens
    assert Path(line["path"]).read_bytes() == TINY_PNG


def test_revised_prompt_of_another_type_is_dropped_not_the_image(fake: FakeProvider) -> None:
    fake.script("/images/generations", Reply(json={"data": [{"b64_json": GOOD, "revised_prompt": {"x": [1]}}]}))
    result = gen(fake, "otter", "-m", "dall-e-3", "-o", "out", "--json", "--metadata")
    clean(result)
    assert result.code == 0, result.stderr
    [line] = result.json_lines()
    assert line["revised_prompt"] is None
    assert json.loads(Path(line["path"]).with_suffix(".json").read_text())["revised_prompt"] is None


def test_one_bad_item_of_an_answer_keeps_the_others(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/images/generations", Reply(json={"data": [{"b64_json": GOOD}, {"b64_json": 5}, 7]}))
    result = gen(fake, "otter", "-m", "gpt-image-1", "-n", "3", "-o", "out", "--name", "o-{index}.{ext}")
    clean(result)
    assert result.code == 4, result.stderr
    assert result.lines == ["out/o-1.png"]
    lines = error_lines(result.stderr)
    assert len(lines) == 2 and "image 2 " in lines[0] and "image 3 " in lines[1]
    assert images(tmp_path / "out") == ["o-1.png"]


def gemini(fake: FakeProvider, model: str, *args: str, stdin: str) -> Any:
    env = {"GEMINI_API_KEY": GEMINI_KEY}
    base = ["--api-base", fake.base_url + "/v1beta", "-m", model, "-j", "1", "-o", "out", "--name", "{prompt}.{ext}"]
    return run_cli("generate", "-", *base, *args, env=env, input=stdin.encode())


INLINE = {"inlineData": {"mimeType": "image/png", "data": GOOD}}
BAD_GOOGLE = [
    ("gemini-2.5-flash-image", {"candidates": {"content": {}}}, "candidates that is not a list"),
    ("gemini-2.5-flash-image", {"candidates": ["x"]}, "candidate in Gemini's response is not an object"),
    ("gemini-2.5-flash-image", {"candidates": [{"content": {"parts": "x"}}]}, "parts that is not a list"),
    ("gemini-2.5-flash-image", {"candidates": [{"content": {"parts": [{"inlineData": {"data": 5}}]}}]},
     "has no data string"),
    ("gemini-2.5-flash-image", {"candidates": [{"content": []}], "promptFeedback": [1]}, "returned no image"),
    ("imagen-4.0-generate-001", {"predictions": "x"}, "predictions that is not a list"),
    ("imagen-4.0-generate-001", {"predictions": [5]}, "prediction 1 is not an image"),
    ("imagen-4.0-generate-001", {"predictions": [{"bytesBase64Encoded": [GOOD]}]}, "prediction 1 is not an image"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "payload", "words"), BAD_GOOGLE)
def test_google_answers_of_the_wrong_shape(
    fake: FakeProvider, tmp_path: Path, model: str, payload: dict[str, Any], words: str
) -> None:
    fake.script(":", Reply(json=payload))
    result = gemini(fake, f"gemini/{model}", stdin="one\ntwo\n")
    clean(result)
    assert GEMINI_KEY not in result.everything()
    assert result.code == 4, result.stderr
    assert result.lines == ["out/two.png"]
    [line] = error_lines(result.stderr)
    assert words in line, line


def test_google_bad_usage_metadata_keeps_the_image(fake: FakeProvider) -> None:
    candidate = {"content": {"parts": [INLINE]}, "finishReason": "STOP"}
    fake.script(":", Reply(json={"candidates": [candidate], "usageMetadata": {"promptTokenCount": "many"}}))
    result = gemini(fake, "gemini/gemini-2.5-flash-image", "--json", stdin="one\n")
    clean(result)
    assert result.code == 0, result.stderr
    assert result.json_lines()[0]["cost_usd"] is not None


BAD_BEDROCK = [
    ("amazon.nova-canvas-v1:0", {"images": "abc"}, "images that is not a list"),
    ("amazon.nova-canvas-v1:0", {"images": [5]}, "empty or not a string"),
    ("stability.stable-diffusion-xl-v1", {"artifacts": [5]}, "artifact 1 of Bedrock's response is not an object"),
    ("stability.stable-diffusion-xl-v1", {"artifacts": {"base64": GOOD}}, "artifacts that is not a list"),
    ("stability.sd3-large-v1:0", {"images": [GOOD], "finish_reasons": "none"}, "finish_reasons that is not a list"),
]


@pytest.mark.parametrize(("model", "payload", "words"), BAD_BEDROCK)
def test_bedrock_answers_of_the_wrong_shape(
    fake: FakeProvider, model: str, payload: dict[str, Any], words: str
) -> None:
    fake.script("/invoke", Reply(json=payload))
    env = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-west-2"}  # fmt: skip
    args = ["-m", f"bedrock/{model}", "-j", "1", "-o", "out", "--name", "{prompt}.{ext}"]
    result = run_cli("generate", "-", *args, env=env, input=b"one\ntwo\n")
    clean(result)
    assert AWS_SECRET not in result.everything()
    assert result.code == 4, result.stderr
    assert result.lines == ["out/two.png"]
    [line] = error_lines(result.stderr)
    assert words in line, line


# Item 17: the target is checked before the first request; failures while writing are one line.


def test_image_to_a_full_device_is_one_line_exit_1(fake: FakeProvider) -> None:
    with open("/dev/full", "wb") as full:
        proc = popen(fake, "otter", "-m", "dall-e-3", "-o", "-", stdout=full, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    [line] = error_lines(stderr)
    assert "cannot write the image to stdout: No space left on device" in line


def test_paths_into_a_full_stdout_keep_the_images(fake: FakeProvider, tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = popen(fake, "-", "-m", "dall-e-3", "-o", "out", stdin=subprocess.PIPE, stdout=full,
                     stderr=subprocess.PIPE)  # fmt: skip
        _, err = proc.communicate(b"one\ntwo\n", timeout=60)
    stderr = err.decode()
    assert proc.returncode == 4, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    [line] = error_lines(stderr)
    assert "cannot write to stdout: No space left on device" in line and "still saved in out" in line
    assert len(images(tmp_path / "out")) == 2
    assert [r["status"] for r in records(tmp_path / "out")] == ["saved", "saved"]


def test_stdout_closed_early_the_batch_goes_on(fake: FakeProvider, tmp_path: Path) -> None:
    """`imggen generate - | head -1`: the first path is read, the pipe closes, every image is still saved."""
    fake.script("/images/generations", Reply(), Reply(delay=1), Reply(delay=1))
    proc = popen(fake, "-", "-m", "dall-e-3", "-j", "1", "-o", "out", "--name", "{prompt}.{ext}",
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"one\ntwo\nthree\n")
    proc.stdin.close()
    assert proc.stdout.readline() == b"out/one.png\n"
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 4, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    [line] = error_lines(stderr)
    assert "cannot write to stdout: Broken pipe" in line
    assert images(tmp_path / "out") == ["one.png", "three.png", "two.png"]
    assert [r["status"] for r in records(tmp_path / "out")] == ["saved"] * 3
    assert hidden(tmp_path / "out") == []


def closed_stdout() -> None:
    os.close(1)  # in the child, before imggen starts: as `>&-` in a shell


def test_started_with_stdout_closed(fake: FakeProvider, tmp_path: Path) -> None:
    proc = popen(fake, "otter", "-m", "dall-e-3", "-o", "-", stderr=subprocess.PIPE, preexec_fn=closed_stdout)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "stdout is closed" in err.decode() and fake.requests == []
    proc = popen(fake, "otter", "-m", "dall-e-3", "-o", "out", stderr=subprocess.PIPE, preexec_fn=closed_stdout)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert len(images(tmp_path / "out")) == 1 and "Traceback" not in err.decode()


def test_other_commands_into_a_full_stdout_are_one_line(fake: FakeProvider) -> None:
    for args in (["generate", "otter", "-m", "gpt-image-2", "--dry-run"], ["models"]):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([sys.executable, "-m", "imggen", *args], stdout=full, stderr=subprocess.PIPE,
                                  timeout=60)  # fmt: skip
        stderr = proc.stderr.decode()
        assert proc.returncode == 1, stderr
        assert error_lines(stderr) == ["error: cannot write to stdout: No space left on device."]


def test_a_directory_replaced_mid_run_fails_the_images_after_it(fake: FakeProvider, tmp_path: Path) -> None:
    """Root ignores file modes, so the directory is swapped for a file while the second request is out."""
    fake.script("/images/generations", Reply(), Reply(delay=2))
    proc = popen(fake, "-", "-m", "dall-e-3", "-j", "1", "-o", "out", "--name", "{prompt}.{ext}",
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"one\ntwo\n")
    proc.stdin.close()
    assert proc.stdout.readline() == b"out/one.png\n"
    (tmp_path / "out").rename(tmp_path / "moved")
    (tmp_path / "out").write_text("not a directory")
    rest, stderr = proc.stdout.read(), proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 4, stderr
    assert rest == b"" and "Traceback" not in stderr
    [line] = error_lines(stderr)
    assert '"two"' in line and "cannot write into out: Not a directory" in line
    assert images(tmp_path / "moved") == ["one.png"]
    assert [r["status"] for r in records(tmp_path / "moved")] == ["saved", "failed"]


@contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`, for a real "No space left on device" (needs root, as the suite runs)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_disk_is_one_line_per_image_and_keeps_what_was_saved(fake: FakeProvider, tmp_path: Path) -> None:
    fake.image_bytes = TINY_PNG + b"\0" * 24_000  # two fit on the 64 KiB disk, the third does not
    with tiny_disk(tmp_path / "disk", "64k") as disk:
        args = ["-", "-m", "dall-e-3", "-j", "1", "-o", str(disk), "--name", "{prompt}.{ext}"]
        result = gen(fake, *args, stdin="p1\np2\np3\np4\n")
        clean(result)
        assert result.code == 4, result.stderr
        assert result.lines == [f"{disk}/p1.png", f"{disk}/p2.png"]
        failed = [line for line in error_lines(result.stderr) if "No space left on device" in line]
        assert [line.split('"')[1] for line in failed if "failed for prompt" in line] == ["p3", "p4"]
        assert len(error_lines(result.stderr)) - len(failed) == 0
        assert images(disk) == ["p1.png", "p2.png"] and hidden(disk) == []
        saved = [r for r in records_readable(disk / MANIFEST) if r["status"] == "saved"]
        assert sorted(r["path"] for r in saved) == ["p1.png", "p2.png"]


def test_a_manifest_that_cannot_be_written_stops_before_sending(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "out" / MANIFEST).mkdir(parents=True)
    for extra in ([], ["--resume"]):
        result = gen(fake, "otter", "-m", "dall-e-3", "-o", "out", *extra)
        clean(result)
        assert result.code == 2, result.stderr
        [line] = error_lines(result.stderr)
        assert f"the manifest out/{MANIFEST}: Is a directory" in line and "Move it away" in line
    assert fake.requests == []


def test_an_output_path_that_is_a_file_stops_before_sending(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    result = gen(fake, "otter", "-m", "dall-e-3", "-o", "out/sub")
    clean(result)
    assert result.code == 2 and fake.requests == []
    assert len(error_lines(result.stderr)) == 1


def test_a_sidecar_that_cannot_be_written_keeps_the_image(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "out" / "s.json").mkdir(parents=True)  # the sidecar's name is taken by a directory
    result = gen(fake, "otter", "-m", "dall-e-3", "-o", "out", "--name", "s.{ext}", "--metadata")
    clean(result)
    assert result.code == 4, result.stderr
    assert result.lines == ["out/s.png"]
    [line] = error_lines(result.stderr)
    assert "cannot write out/s.json" in line
    assert records(tmp_path / "out")[0]["status"] == "saved" and hidden(tmp_path / "out") == []


# Item 18: a damaged manifest never crashes --resume; a cut line never makes a second copy.


def test_resume_skips_unreadable_manifest_lines_with_one_warning(fake: FakeProvider, tmp_path: Path) -> None:
    args = ["-", "-m", "dall-e-3", "-o", "out", "--name", "{prompt}.{ext}"]
    assert gen(fake, *args, stdin="one\ntwo\n").code == 0
    manifest = tmp_path / "out" / MANIFEST
    key = records(tmp_path / "out")[0]["key"]
    bad = [b"\xff\xfe not utf-8", json.dumps({"key": key, "status": "saved", "index": "x", "path": "a.png"}).encode(),
           b"[1, 2]", json.dumps({"key": 5, "status": "saved"}).encode(), b'{"key": "cut sh']  # fmt: skip
    with manifest.open("ab") as handle:
        handle.write(b"\n".join(bad))
    before = len(fake.requests)
    result = gen(fake, *args, "--resume", stdin="one\ntwo\nthree\n")
    clean(result)
    assert result.code == 0, result.stderr
    assert result.lines == ["out/three.png"] and len(fake.requests) - before == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: out/{MANIFEST} lines 3, 4, 5, 6, 7 are not readable records; skipped"]


def test_a_cut_manifest_line_does_not_make_a_second_copy(fake: FakeProvider, tmp_path: Path) -> None:
    args = ["-", "-m", "dall-e-3", "-o", "out", "--name", "{prompt}.{ext}", "-j", "1"]
    assert gen(fake, *args, stdin="one\ntwo\n").code == 0
    manifest = tmp_path / "out" / MANIFEST
    lines = manifest.read_bytes().splitlines(keepends=True)
    cut = json.loads(lines[1])["path"]
    manifest.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # the crash cut the second line
    before = len(fake.requests)
    result = gen(fake, *args, "--resume", stdin="one\ntwo\n")
    clean(result)
    assert result.code == 0, result.stderr
    assert len(fake.requests) == before and result.lines == []
    assert f"{cut} was saved but its manifest line was cut short" in result.stderr
    assert images(tmp_path / "out") == ["one.png", "two.png"]
    healed = records_readable(manifest)
    assert healed[-1]["path"] == cut and healed[-1]["sha256"] == healed[0]["sha256"]  # same fake image


def records_readable(manifest: Path) -> list[dict[str, Any]]:
    out = []
    for line in manifest.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_a_file_that_is_not_the_recorded_image_is_made_again(fake: FakeProvider, tmp_path: Path) -> None:
    args = ["otter", "-m", "dall-e-3", "-o", "out", "--name", "o.{ext}"]
    assert gen(fake, *args).code == 0
    record = records(tmp_path / "out")[0]
    assert record["bytes"] == len(TINY_PNG) and len(record["sha256"]) == 64
    (tmp_path / "out" / "o.png").write_bytes(TINY_JPEG)  # same name, other content
    result = gen(fake, *args, "--resume")
    assert result.code == 0 and result.lines == ["out/o-v2.png"]


# Item 19: leftovers of a killed run go with the next run; a live run's stay.


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def big_png() -> bytes:
    return TINY_PNG + b"\0" * 200_000  # its base64 streams to a spill file in the run's folder


def test_kill_9_leftovers_are_removed_by_the_next_run(fake: FakeProvider, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fake.image_bytes = big_png()
    fake.script("/images/generations", Reply(delay=30))
    proc = popen(fake, "otter", "-m", "dall-e-3", "-o", "out", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: out.exists() and hidden(out) != [])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)
    [folder] = hidden(out)
    (out / folder / ".imggen-abc.spill").write_bytes(b"half an image")
    (out / ".imggen-x1y2.part").write_bytes(TINY_PNG[:10])
    (out / ".imggen-q9.spill").write_bytes(b"x")
    for name in [folder, ".imggen-x1y2.part", ".imggen-q9.spill"]:
        age(out / name, 600)
    fake.clear_scripts()
    result = gen(fake, "otter", "-m", "dall-e-3", "-o", "out")
    clean(result)
    assert result.code == 0, result.stderr
    assert "removed 3 temporary file(s) left by an interrupted run in out" in result.stderr
    assert hidden(out) == [] and len(images(out)) == 1


def test_a_running_runs_files_are_kept(fake: FakeProvider, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fake.image_bytes = big_png()
    fake.script("/images/generations", Reply(delay=4))
    proc = popen(fake, "slow", "-m", "dall-e-3", "-o", "out", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: out.exists() and hidden(out) != [])
    [folder] = hidden(out)
    age(out / folder, 600)  # old, but locked by its live run
    quick = gen(fake, "quick", "-m", "dall-e-3", "-o", "out")
    assert quick.code == 0 and "removed" not in quick.stderr
    assert (out / folder).is_dir()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert len(images(out)) == 2 and hidden(out) == []


# Item 20: saved files get the umask's mode; only temporary files are private.


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_images_and_sidecars_get_the_umask(fake: FakeProvider, tmp_path: Path, mask: int, mode: int) -> None:
    with umask(mask):
        inline = gen(fake, "inline", "-m", "dall-e-3", "-o", "out", "--metadata", "--name", "a.{ext}")
        by_url = gen(fake, "url", "-m", "dall-e-3", "--response-format", "url", "-o", "out", "--name", "b.{ext}")
        fake.image_bytes = big_png()
        spilled = gen(fake, "big", "-m", "dall-e-3", "-o", "out", "--metadata", "--name", "c.{ext}")
    assert (inline.code, by_url.code, spilled.code) == (0, 0, 0), inline.stderr + by_url.stderr + spilled.stderr
    for name in ["a.png", "a.json", "b.png", "c.png", "c.json"]:
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == mode, name
    assert hidden(tmp_path / "out") == []


def test_error_answers_of_the_wrong_shape_are_one_line(fake: FakeProvider) -> None:
    env = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-west-2"}  # fmt: skip
    fake.script("/invoke", Reply(status=400, json=[1, 2]))
    bedrock = run_cli("generate", "otter", "-m", "bedrock/amazon.nova-canvas-v1:0", "-o", "out", env=env)
    fake.script(":", Reply(status=400, json=["x"]), Reply(status=400, json={"error": "plain text"}))
    google = [gemini(fake, "gemini/gemini-2.5-flash-image", stdin="one\n") for _ in range(2)]
    for result in [bedrock, *google]:
        clean(result)
        assert result.code == 1, result.stderr
        [line] = error_lines(result.stderr)
        assert "400" in line
