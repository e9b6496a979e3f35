"""Values checked wherever they come from (issue 10 items 7, 8, 15, 16): config.toml, JSON Lines, stdin,
prompt files, the Python API and --name; one line with the right exit code, nothing sent, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import imggen
from conftest import OPENAI_KEY, assert_no_secret, openai_env, run_cli
from fakeserver import TINY_PNG, FakeProvider


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def assert_refused(result: Any, code: int, expected: str, fake: FakeProvider, tmp_path: Path) -> None:
    assert result.code == code, result.stderr
    assert expected in one_line(result.stderr)
    assert result.stdout == "" and fake.requests == []
    assert not (tmp_path / "out").exists()
    assert_no_secret(result.everything())


# --- config.toml: exit 3 naming the profile and the key -------------------------------------------

CONFIG_CASES = [
    ('rpm = "fast"', "'rpm' is 'fast'"),
    ('timeout = "x"', "'timeout' is 'x'"),
    ("timeout = nan", "'timeout' is nan"),
    ("timeout = inf", "'timeout' is inf"),
    ("timeout = -1", "'timeout' is -1"),
    ("timeout = true", "'timeout' is True"),
    ("rpm = 0", "'rpm' is 0"),
    ("rpm = 0.001", "'rpm' is 0.001"),
    ("api_key = 12345", "'api_key' must be text"),
    ('model = ["openai/dall-e-3"]', "'model' must be text"),
    ('output_dir = "a\\u0000b"', "'output_dir' contains a NUL byte"),
]


@pytest.mark.parametrize(("line", "expected"), CONFIG_CASES)
def test_a_bad_config_value_is_exit_3_naming_profile_and_key(
    fake: FakeProvider, tmp_path: Path, line: str, expected: str
) -> None:
    write_config(tmp_path, f"[profiles.openai]\n{line}\n")
    result = run_cli("generate", "otter", "-o", "out", env=openai_env(fake))
    assert_refused(result, 3, expected, fake, tmp_path)
    assert "profile 'openai'" in result.stderr and "config.toml" in result.stderr


def test_bad_top_level_config_types_are_exit_3(fake: FakeProvider, tmp_path: Path) -> None:
    write_config(tmp_path, "default_profile = 3\n")
    result = run_cli("generate", "otter", "-o", "out", env=openai_env(fake))
    assert_refused(result, 3, "'default_profile' must be a profile name", fake, tmp_path)


def test_a_number_from_an_environment_reference_is_checked(fake: FakeProvider, tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.openai]\ntimeout = "os.environ/MY_TIMEOUT"\n')
    result = run_cli("generate", "otter", "-o", "out", env={**openai_env(fake), "MY_TIMEOUT": "soon"})
    assert_refused(result, 3, "timeout 'soon' (from profile:openai (os.environ/MY_TIMEOUT))", fake, tmp_path)
    ok = run_cli("generate", "otter", "-o", "out", env={**openai_env(fake), "MY_TIMEOUT": "30"})
    assert ok.code == 0, ok.stderr


def test_config_set_refuses_nan_and_takes_a_slow_rpm() -> None:
    result = run_cli("config", "set", "openai", "timeout", "nan")
    assert result.code == 2 and "finite" in one_line(result.stderr)
    assert run_cli("config", "set", "openai", "rpm", "0.5").code == 0
    assert run_cli("config", "set", "openai", "rpm", "0.001").code == 2


def write_config(tmp_path: Path, text: str) -> None:
    directory = tmp_path / "config"
    directory.mkdir(exist_ok=True)
    path = directory / "config.toml"
    path.write_text(text)
    path.chmod(0o600)


# --- JSON Lines: wrong types and ranges name the file and line ---------------------------------

JSONL_CASES = [
    ({"size": 1024}, "'size' must be a string"),
    ({"model": 3}, "'model' must be a string"),
    ({"name": ["a"]}, "'name' must be a string"),
    ({"user": {"id": 1}}, "'user' must be a string"),
    ({"negative_prompt": 1}, "'negative_prompt' must be a string"),
    ({"quality": True}, "'quality' must be a string"),
    ({"n": "2"}, "'n' must be a whole number"),
    ({"n": 2.0}, "'n' must be a whole number"),
    ({"n": 0}, "-n 0 is out of range"),
    ({"n": 11}, "-n 11 is out of range"),
    ({"seed": -1}, "--seed -1 is out of range"),
    ({"seed": 2**40}, "--seed 1099511627776 is out of range"),
    ({"params": {"n": 1000}}, "-p n=1000: imggen plans n itself; use -n"),
    ({"params": {"a": "x\u0000"}}, "contains a NUL byte"),
    ({"prompt": "a\u0000b"}, "the prompt contains a NUL byte"),
    ({"prompt": "a\udc80b"}, "the prompt is not valid UTF-8"),
    ({"name": "{prompt:d}"}, "cannot be rendered"),
]


@pytest.mark.parametrize(("fields", "expected"), JSONL_CASES)
def test_a_bad_jsonl_line_names_file_and_line(
    fake: FakeProvider, tmp_path: Path, fields: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "prompts.jsonl"
    bad = json.dumps({"prompt": "heron", **fields})
    path.write_text(json.dumps({"prompt": "otter"}) + "\n\n" + bad + "\n")
    result = run_cli("generate", "--prompts-file", str(path), "-m", "gpt-image-1", "-o", "out", env=openai_env(fake))
    assert_refused(result, 2, expected, fake, tmp_path)
    assert f"{path} line 3" in result.stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"prompt": "x", "params": {"cfg_scale": NaN}}', "NaN is not a JSON number"),
        ('{"prompt": "x", "seed": Infinity}', "Infinity is not a JSON number"),
        ('{"prompt": "x", "params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}", "nested too deeply"),
    ],
)
def test_jsonl_that_python_reads_but_json_does_not_allow_is_refused(
    fake: FakeProvider, tmp_path: Path, line: str, expected: str
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    result = run_cli("generate", "--prompts-file", str(path), "-o", "out", env=openai_env(fake))
    assert_refused(result, 2, expected, fake, tmp_path)
    assert f"{path} line 1" in result.stderr


# --- Invalid UTF-8 and NUL bytes in prompts ------------------------------------------------------


def test_invalid_utf8_in_the_prompt_argument(fake: FakeProvider, tmp_path: Path) -> None:
    prompt = os.fsdecode(b"sea otter \xff\xfe")  # what Python makes of the bytes in argv
    result = run_cli("generate", prompt, "-o", "out", env=openai_env(fake))
    assert_refused(result, 2, "the prompt is not valid UTF-8 (at character 11)", fake, tmp_path)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"otter\nheron \xff\n", "stdin line 2 is not valid UTF-8 (byte 0xff at column 7)"),
        (b"otter\n# comment\n\xc3\n", "stdin line 3 is not valid UTF-8"),
        (b"otter\nhe\x00ron\n", "stdin line 2 contains a NUL byte"),
    ],
)
def test_invalid_utf8_or_nul_on_stdin_names_the_line(
    fake: FakeProvider, tmp_path: Path, data: bytes, expected: str
) -> None:
    result = run_cli("generate", "-", "-o", "out", env=openai_env(fake), input=data)
    assert_refused(result, 2, expected, fake, tmp_path)


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
@pytest.mark.parametrize(("bad", "expected"), [(b"\xe2\x82", "is not valid UTF-8"), (b"a\x00b", "contains a NUL byte")])
def test_invalid_utf8_or_nul_in_a_prompts_file_names_the_line(
    fake: FakeProvider, tmp_path: Path, suffix: str, bad: bytes, expected: str
) -> None:
    path = tmp_path / f"prompts{suffix}"
    good, broken = (b'{"prompt": "otter"}', b'{"prompt": "' + bad + b'"}') if suffix == ".jsonl" else (b"otter", bad)
    path.write_bytes(good + b"\n" + good + b"\n" + broken + b"\n")
    result = run_cli("generate", "--prompts-file", str(path), "-o", "out", env=openai_env(fake))
    assert_refused(result, 2, f"{path} line 3 {expected}", fake, tmp_path)


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(fake: FakeProvider, tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "otter"}\r\n{"prompt": "heron"}\r\n')
    result = run_cli("generate", "--prompts-file", str(path), "-m", "gpt-image-1", "--dry-run", "--json",
                     env=openai_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    assert [line["body"]["prompt"] for line in result.json_lines()] == ["otter", "heron"]


# --- --name: checked whole before anything is sent -------------------------------------------------

NAME_CASES = [
    (["--name", "{prompt:d}.{ext}"], "cannot be rendered: Unknown format code 'd'"),
    (["--name", "{seed:05d}.{ext}"], "cannot be rendered"),  # fails only for an image without a seed
    (["--name", "{index:{seed}}.{ext}"], "format spec of {index}"),
    (["--name", "{prompt:99999999}.{ext}"], "format spec of {prompt}"),
    (["--name", "{prompt:.0}"], "which is not a file name"),
    (["--name", "{prompt}-{model}-{prompt}-{model}-{prompt}.{ext}"], "at most 255 bytes"),
    (["--name", "é" * 126 + ".{ext}"], "file names of up to"),
    (["--name", ".imggen-manifest.jsonl"], "names starting .imggen-"),
    (["--name", ".imggen-{index}.{ext}"], "names starting .imggen-"),
    (["--name", "{prompt}-{index}.json"], "names ending .json"),
    (["--name", "{prompt}-{index}.JSON"], "names ending .json"),
    (["--name", "fixed.{ext}", "-n", "3", "--overwrite"], "Add {index}."),
    (["--name", "{prompt}.{ext}{index}", "-n", "2", "--metadata"], "same .json sidecar"),
]


@pytest.mark.parametrize(("args", "expected"), NAME_CASES)
def test_a_bad_name_template_is_refused_before_sending(
    fake: FakeProvider, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-1", *args, "-o", "out", env=openai_env(fake))
    assert_refused(result, 2, expected, fake, tmp_path)


def test_overwrite_in_a_batch_needs_a_name_that_differs_per_prompt(fake: FakeProvider, tmp_path: Path) -> None:
    result = run_cli("generate", "-", "--name", "img-{index}.{ext}", "--overwrite", "-o", "out",
                     env=openai_env(fake), input=b"otter\nheron\n")  # fmt: skip
    assert_refused(result, 2, "Add {prompt} or {line}.", fake, tmp_path)


def test_line_field_names_a_batch_and_overwrite_replaces_only_older_files(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "line-2-1.png").write_bytes(b"old")
    result = run_cli("generate", "-", "-m", "gpt-image-1", "--name", "line-{line}-{index}.{ext}", "--overwrite",
                     "-o", "out", env=openai_env(fake), input=b"otter\n# note\nheron\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert sorted(result.lines) == ["out/line-1-1.png", "out/line-3-1.png"]
    assert (tmp_path / "out" / "line-2-1.png").read_bytes() == b"old"
    assert (tmp_path / "out" / "line-3-1.png").read_bytes() == TINY_PNG


def test_images_of_one_run_never_overwrite_each_other(fake: FakeProvider, tmp_path: Path) -> None:
    # Two prompts with one slug: the template differs per prompt, their names do not.
    result = run_cli("generate", "-", "-m", "gpt-image-1", "--name", "{prompt}.{ext}", "--overwrite", "-o", "out",
                     env=openai_env(fake), input=b"Otter!\notter\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert sorted(result.lines) == ["out/otter-v2.png", "out/otter.png"]
    assert len(fake.requests) == 2


def test_a_fixed_name_without_overwrite_keeps_every_image(fake: FakeProvider, tmp_path: Path) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-1", "-n", "3", "--name", "fixed.{ext}", "--metadata",
                     "-o", "out", env=openai_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "fixed-v2.json", "fixed-v2.png", "fixed-v3.json", "fixed-v3.png", "fixed.json", "fixed.png",
    ]  # fmt: skip


# --- -p cannot replace what imggen plans; the Python API checks its arguments -----------------------


def test_p_n_is_refused_and_the_estimate_stays_what_is_sent(fake: FakeProvider, tmp_path: Path) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-1", "-p", "n=1000", "--max-cost", "1", "-o", "out",
                     env=openai_env(fake))  # fmt: skip
    assert_refused(result, 2, "-p n=1000: imggen plans n itself; use -n", fake, tmp_path)


@pytest.mark.parametrize(
    ("model", "param", "expected"),
    [
        ("bedrock/amazon.nova-canvas-v1:0", 'imageGenerationConfig={"numberOfImages": 5}',
         "-p imageGenerationConfig.numberOfImages=5: imggen plans numberOfImages itself; use -n"),
        ("bedrock/stability.stable-diffusion-xl-v1", "samples=4", "use -n"),
        ("bedrock/stability.stable-diffusion-xl-v1", "style_preset=anime", "use --style"),
        ("gemini/gemini-2.5-flash-image", "candidateCount=4", "use -n"),
        ("gemini/gemini-2.5-flash-image", 'imageConfig={"aspectRatio": "16:9"}', "use --aspect-ratio"),
        ("vertex_ai/imagen-4.0-generate-001", "sampleCount=4", "use -n"),
        ("vertex_ai/imagen-4.0-generate-001", "negativePrompt=x", "use --negative-prompt"),
    ],
)  # fmt: skip
def test_provider_names_of_planned_fields_are_refused(
    fake: FakeProvider, tmp_path: Path, model: str, param: str, expected: str
) -> None:
    env = {"AWS_REGION": "us-east-1", "GEMINI_API_KEY": "g" * 20, "VERTEXAI_PROJECT": "p"}
    result = run_cli("generate", "otter", "-m", model, "-p", param, "--dry-run", "-o", "out", env=env)
    assert_refused(result, 2, expected, fake, tmp_path)


def test_real_provider_params_still_pass(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-1", "-p", "background=transparent", "-p",
                     "output_format=png", "-p", "moderation=low", "-o", "out", env=openai_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    body = fake.requests[0].json
    assert (body["background"], body["output_format"], body["moderation"], body["n"]) == (
        "transparent",
        "png",
        "low",
        1,
    )
    nova = run_cli("generate", "otter", "-m", "bedrock/amazon.nova-canvas-v1:0", "-p", "style=PHOTOREALISM",
                   "--dry-run", "--json", env={"AWS_REGION": "us-east-1", "IMGGEN_TODAY": "2026-09-01"})  # fmt: skip
    assert nova.code == 0, nova.stderr
    assert nova.json_lines()[0]["body"]["textToImageParams"]["style"] == "PHOTOREALISM"


def test_p_nan_is_text_not_a_number(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-1", "-p", "label=NaN", "--dry-run", "--json",
                     env=openai_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.json_lines()[0]["body"]["label"] == "NaN"


API_CASES: list[tuple[dict[str, Any], str]] = [
    ({"n": "2"}, "n='2' must be a whole number from 1 to 10"),
    ({"n": 0}, "n=0 is out of range"),
    ({"n": 11}, "n=11 is out of range: give a whole number from 1 to 10"),
    ({"n": True}, "must be a whole number"),
    ({"seed": 1.5}, "seed=1.5 must be a whole number"),
    ({"seed": -1}, "seed=-1 is out of range"),
    ({"size": 1024}, "size=1024 must be text"),
    ({"size": "big"}, "size='big' is not WIDTHxHEIGHT. e.g. size='1024x1024'."),
    ({"size": "1024x1024", "aspect_ratio": "1:1"}, "size and aspect_ratio were both given"),
    ({"quality": "ultra"}, "gpt-image-1 does not take quality='ultra'. Allowed:"),
    ({"response_format": "png"}, "response_format='png' is not one of: url, b64_json"),
    ({"timeout": float("nan")}, "timeout=nan must be a finite number"),
    ({"timeout": "soon"}, "timeout='soon' must be a number"),
    ({"retries": -1}, "retries=-1 is out of range"),
    ({"concurrency": 0}, "concurrency=0 is out of range"),
    ({"sampleCount": 4}, "sampleCount=4: imggen plans sampleCount itself; use n"),
    ({"params": {"size": "1x1"}}, "size='1x1': imggen plans size itself; use size"),
    ({"cfg": float("inf")}, "params: a parameter is inf"),
    ({"model": 5}, "model= must be text, not int"),
    ({"api_base": 5}, "api_base= must be text, not int"),
]


@pytest.mark.parametrize(("kwargs", "expected"), API_CASES)
def test_the_python_api_checks_its_arguments(fake: FakeProvider, kwargs: dict[str, Any], expected: str) -> None:
    arguments = {"model": "gpt-image-1", "api_key": OPENAI_KEY, "api_base": fake.openai_base, **kwargs}
    with pytest.raises(imggen.ImggenError) as caught:
        imggen.generate("otter", **arguments)
    assert caught.value.exit_code == 2 and expected in str(caught.value)
    assert fake.requests == []


def test_serve_passes_real_openai_body_fields_and_refuses_a_bad_n(fake: FakeProvider, tmp_path: Path) -> None:
    from servehelp import Served, deployment, proxy_config

    config = proxy_config(deployment("img", "openai/gpt-image-1", api_base=fake.openai_base, api_key=OPENAI_KEY))
    served = Served(tmp_path, config)
    try:
        body = {"model": "img", "prompt": "otter", "background": "transparent", "output_format": "png",
                "moderation": "low", "size": "1024x1024", "n": 1}  # fmt: skip
        ok = served.post(body)
        assert ok.status_code == 200, ok.text
        sent = fake.requests[0].json
        assert (sent["background"], sent["output_format"], sent["moderation"], sent["n"]) == (
            "transparent", "png", "low", 1,
        )  # fmt: skip
        bad = served.post({"model": "img", "prompt": "otter", "n": 1000})
        assert bad.status_code == 400 and "'n' must be an integer from 1 to 10" in bad.json()["error"]["message"]
        assert len(fake.requests) == 1
        assert OPENAI_KEY not in served.stderr()
    finally:
        served.stop()


def test_save_refuses_a_name_that_would_overwrite_its_own_images(fake: FakeProvider, tmp_path: Path) -> None:
    response = imggen.generate("otter", model="gpt-image-1", n=2, api_key=OPENAI_KEY, api_base=fake.openai_base)
    with pytest.raises(imggen.ImggenError, match=r"Add \{index\}"):
        response.save(tmp_path / "out", name="fixed.{ext}", overwrite=True)
    assert not (tmp_path / "out").exists()
    paths = response.save(tmp_path / "out", name="{prompt}-{index}.{ext}", overwrite=True)
    assert [p.name for p in paths] == ["otter-1.png", "otter-2.png"]
