"""Files and profiles (issue 11, items 15-19): -o FILE, -v2 names, one seed per image, profiles that
know their provider, keys in the keyring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import OPENAI_KEY, assert_no_secret, openai_env, run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakeserver import TINY_JPEG, TINY_PNG, FakeProvider

NOVA = "bedrock/amazon.nova-canvas-v1:0"


def bedrock(fake: FakeProvider, *args: str) -> Any:
    env = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-west-2"}  # fmt: skip
    result = run_cli("generate", *args, env=env)
    assert AWS_SECRET not in result.everything()
    return result


def invoke_bodies(fake: FakeProvider) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path.endswith("/invoke")]


def visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# --- 17: --seed S with several images: image k gets S+k-1, one request each -------------------------


def test_a_seed_with_several_images_sends_each_its_own_seed(fake: FakeProvider, tmp_path: Path) -> None:
    result = bedrock(fake, "otter", "-m", NOVA, "-n", "3", "--seed", "10", "--json", "--metadata", "-o", "out",
                     "--name", "otter-{index}-s{seed}.{ext}")  # fmt: skip
    assert result.code == 0, result.stderr
    bodies = invoke_bodies(fake)
    sent = sorted((b["imageGenerationConfig"]["seed"], b["imageGenerationConfig"]["numberOfImages"]) for b in bodies)
    assert sent == [(10, 1), (11, 1), (12, 1)]
    lines = sorted(result.json_lines(), key=lambda line: line["index"])
    assert [(line["index"], line["seed"]) for line in lines] == [(1, 10), (2, 11), (3, 12)]
    assert [line["path"] for line in lines] == ["out/otter-1-s10.png", "out/otter-2-s11.png", "out/otter-3-s12.png"]
    for index, seed in ((1, 10), (2, 11), (3, 12)):
        assert json.loads((tmp_path / "out" / f"otter-{index}-s{seed}.json").read_text())["seed"] == seed


def test_resume_with_a_seed_sends_only_the_missing_seeds(fake: FakeProvider, tmp_path: Path) -> None:
    args = ("otter", "-m", NOVA, "-n", "2", "--seed", "10", "-o", "out", "--name", "o-{index}.{ext}")
    assert bedrock(fake, *args).code == 0
    (tmp_path / "out" / "o-2.png").unlink()
    manifest = tmp_path / "out" / ".imggen-manifest.jsonl"
    kept = [line for line in manifest.read_text().splitlines() if json.loads(line)["index"] == 1]
    manifest.write_text(kept[0] + "\n")  # only image 1 recorded
    before = len(invoke_bodies(fake))
    result = bedrock(fake, *args, "--resume")
    assert result.code == 0, result.stderr
    assert [b["imageGenerationConfig"]["seed"] for b in invoke_bodies(fake)[before:]] == [11]
    assert visible(tmp_path / "out") == ["o-1.png", "o-2.png"]


def test_a_seed_whose_last_image_would_pass_the_largest_is_refused(fake: FakeProvider, tmp_path: Path) -> None:
    result = bedrock(fake, "otter", "-m", NOVA, "-n", "3", "--seed", "4294967294", "-o", "out")
    assert result.code == 2
    assert result.stderr.startswith("error: --seed 4294967294 with -n 3 gives image 3 the seed 4294967296")
    assert "4294967293" in result.stderr and "Traceback" not in result.stderr
    assert invoke_bodies(fake) == [] and not (tmp_path / "out").exists()


def test_the_placeholder_draws_each_seed_once(tmp_path: Path) -> None:
    result = run_cli("generate", "otter", "-m", "placeholder", "-s", "32x32", "-n", "3", "--seed", "5", "--json")
    assert result.code == 0, result.stderr
    seeds = sorted(line["seed"] for line in result.json_lines())
    assert seeds == [5, 6, 7]
    alone = run_cli("generate", "otter", "-m", "placeholder", "-s", "32x32", "--seed", "6", "-o", "alone")
    second = next(line["path"] for line in result.json_lines() if line["seed"] == 6)
    assert (tmp_path / alone.lines[0]).read_bytes() == (tmp_path / second).read_bytes()


# --- 15: -o out.png writes that file; --name without {ext} gets the image's extension ---------------


def openai_gen(fake: FakeProvider, *args: str, stdin: bytes | None = None) -> Any:
    result = run_cli("generate", *args, env=openai_env(fake), input=stdin)
    assert_no_secret(result.everything())
    return result


def test_o_with_an_image_file_name_writes_that_file(fake: FakeProvider, tmp_path: Path) -> None:
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "pics/out.png", "--json", "--metadata")
    assert result.code == 0, result.stderr
    assert [line["path"] for line in result.json_lines()] == ["pics/out.png"]
    assert (tmp_path / "pics" / "out.png").read_bytes() == TINY_PNG
    assert visible(tmp_path / "pics") == ["out.json", "out.png"]
    assert (tmp_path / "pics" / ".imggen-manifest.jsonl").exists()  # the manifest lives beside the file
    again = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "pics/out.png")
    assert again.lines == ["pics/out-v2.png"]  # never replaced without --overwrite
    resumed = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "pics/out.png", "--resume")
    assert resumed.code == 0 and resumed.lines == [] and "skipped" in resumed.stderr


def test_o_with_a_file_name_and_several_images_numbers_them(fake: FakeProvider, tmp_path: Path) -> None:
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-n", "3", "-o", "out.png")
    assert result.code == 0, result.stderr
    assert sorted(result.lines) == ["out-1.png", "out-2.png", "out-3.png"]
    assert visible(tmp_path) == ["home", "out-1.png", "out-2.png", "out-3.png"]


def test_o_with_a_file_name_follows_the_image_type(fake: FakeProvider, tmp_path: Path) -> None:
    fake.image_bytes = TINY_JPEG
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "out.png")
    assert result.code == 0, result.stderr
    assert result.lines == ["out.jpg"] and (tmp_path / "out.jpg").read_bytes() == TINY_JPEG
    assert "note: the provider sent a JPEG image, not PNG: saved as out.jpg" in result.stderr
    typed = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "photo.JPEG")
    assert typed.lines == ["photo.JPEG"] and "note" not in typed.stderr  # kept as typed when it is right


def test_an_existing_directory_or_a_trailing_slash_stays_a_directory(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "album.png").mkdir()
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "album.png", "--name", "o.{ext}")
    assert result.code == 0 and result.lines == ["album.png/o.png"]
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "new.webp/", "--name", "o.{ext}")
    assert result.code == 0 and result.lines == ["new.webp/o.png"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-", "-o", "out.png"], b"otter\nheron\n", "error: -o out.png names one file, and there are 2 prompts"),
        (["otter", "-o", "out.png", "--name", "x.{ext}"], None, "--name cannot be used with it"),
        (["--prompts-file", "p.jsonl", "-o", "out.png"], b"", 'the line\'s "name" cannot be used'),
        (["otter", "-o", ".imggen-x.png"], None, "error: -o .imggen-x.png gives names starting .imggen-"),
    ],
)
def test_o_with_a_file_name_is_refused_where_it_cannot_hold(
    fake: FakeProvider, tmp_path: Path, args: list[str], stdin: bytes | None, message: str
) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "otter", "name": "x.{ext}"}\n')
    result = openai_gen(fake, *args, "-m", "gpt-image-2", stdin=stdin)
    assert result.code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.splitlines()) <= 2
    assert fake.requests == [] and visible(tmp_path) == ["home", "p.jsonl"]


def test_a_name_without_ext_gets_the_images_extension(fake: FakeProvider, tmp_path: Path) -> None:
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-n", "2", "-o", "out", "--name", "otter-{index}")
    assert result.code == 0, result.stderr
    assert sorted(result.lines) == ["out/otter-1.png", "out/otter-2.png"]
    fake.image_bytes = TINY_JPEG
    result = openai_gen(fake, "otter", "-m", "gpt-image-2", "-o", "out", "--name", "fox.png")
    assert result.lines == ["out/fox.jpg"]


# --- 18: a new profile not named for a provider says which provider it is for ------------------------


def config_text(tmp_path: Path) -> str:
    path = tmp_path / "config" / "config.toml"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(
    ("key", "value", "provider"),
    [
        ("api_base", "https://my-endpoint-europe.openai.azure.com/", "azure"),
        ("api_base", "https://bedrock-runtime.eu-west-1.amazonaws.com", "bedrock"),
        ("api_base", "https://generativelanguage.googleapis.com/v1beta", "gemini"),
        ("api_base", "https://europe-west4-aiplatform.googleapis.com", "vertex_ai"),
        ("model", "azure/my-dalle-deployment", "azure"),
        ("aws_region_name", "eu-west-1", "bedrock"),
    ],
)
def test_a_value_that_names_its_provider_sets_it_with_a_note(key: str, value: str, provider: str) -> None:
    result = run_cli("config", "set", "eu", key, value)
    assert result.code == 0, result.stderr
    assert f"note: profile 'eu' is for {provider} (from the {key}); imggen config set eu provider" in result.stderr
    assert run_cli("config", "get", "eu", "provider").stdout.strip() == provider
    assert run_cli("config", "get", "eu", key).stdout.strip() == value


def test_the_readme_quick_start_for_azure_works_as_written(fake: FakeProvider) -> None:
    assert run_cli("config", "set", "azure-eu", "api_base", "https://my-endpoint-europe.openai.azure.com/").code == 0
    explained = run_cli("config", "explain", "--profile", "azure-eu", "-m", "azure/dall-e-3", "--json")
    assert explained.code == 0, explained.stderr
    rows = {row["setting"]: row for row in json.loads(explained.stdout)}
    assert rows["api_base"]["value"] == "https://my-endpoint-europe.openai.azure.com/"


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["api_base", "https://images.example.com/v1"], None),
        (["api_base", "os.environ/MY_BASE"], None),
        (["model", "gpt-image-2"], None),
        (["api_key"], b"sk-never-asked-for-0000\n"),
    ],
)
def test_a_profile_without_a_provider_is_refused_naming_the_command(
    tmp_path: Path, args: list[str], stdin: bytes | None
) -> None:
    result = run_cli("config", "set", "eu", *args, input=stdin)
    assert result.code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: profile 'eu' has no provider, and its")
    assert "Set it first: imggen config set eu provider PROVIDER" in lines[0] and len(lines) == 1
    assert "sk-never" not in result.everything()
    assert config_text(tmp_path) == ""  # nothing written


def test_provider_free_keys_need_no_provider(tmp_path: Path) -> None:
    assert run_cli("config", "set", "slow", "timeout", "900").code == 0
    assert "provider" not in config_text(tmp_path)


# --- 19: keys in the OS keyring ----------------------------------------------------------------------

TESTS = Path(__file__).parent
KEY = OPENAI_KEY  # what the fake server accepts


def keyring_env(tmp_path: Path, backend: str = "filekeyring.FileKeyring", **extra: str) -> dict[str, str]:
    return {"PYTHON_KEYRING_BACKEND": backend, "PYTHONPATH": str(TESTS),
            "IMGGEN_TEST_KEYRING": str(tmp_path / "keyring.json"), **extra}  # fmt: skip


def no_key_anywhere(tmp_path: Path, *results: Any) -> None:
    for result in results:
        assert KEY not in result.everything()
    assert KEY not in config_text(tmp_path)


def test_a_key_in_the_keyring_is_stored_read_and_shown_as_such(fake: FakeProvider, tmp_path: Path) -> None:
    env = keyring_env(tmp_path)
    stored = run_cli("config", "set", "openai", "api_key", "--keyring", env=env, input=f"{KEY}\n".encode())
    assert stored.code == 0, stored.stderr
    assert "note: openai.api_key = ****6789 (in the keyring (FileKeyring); the profile holds" in stored.stderr
    assert 'api_key = "keyring:imggen/openai/api_key"' in config_text(tmp_path)
    assert json.loads((tmp_path / "keyring.json").read_text()) == {"imggen|openai/api_key": KEY}
    shown = run_cli("config", "show", "openai", env=env)
    assert "api_key = ****6789 (keyring)" in shown.stdout
    assert run_cli("config", "get", "openai", "api_key", "--reveal", env=env).stdout.strip() == KEY
    made = run_cli("generate", "otter", "-m", "gpt-image-2", "-o", "out",
                   env={**env, "OPENAI_BASE_URL": fake.openai_base})  # fmt: skip
    assert made.code == 0, made.stderr
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    no_key_anywhere(tmp_path, stored, shown, made)
    run_cli("config", "set", "openai", "api_key", "sk-plain-in-the-file-0000", env=env)
    assert json.loads((tmp_path / "keyring.json").read_text()) == {}  # the old key left the keyring
    assert "api_key = ****0000 (config file)" in run_cli("config", "show", env=env).stdout


def test_a_key_in_the_keyring_from_stdin_with_a_dash(tmp_path: Path) -> None:
    env = keyring_env(tmp_path)
    result = run_cli("config", "set", "openai", "api_key", "-", "--keyring", env=env, input=f"{KEY}\n".encode())
    assert result.code == 0, result.stderr
    assert run_cli("config", "remove", "openai", env=env).code == 0
    assert json.loads((tmp_path / "keyring.json").read_text()) == {}


@pytest.mark.parametrize(
    ("backend", "extra", "message"),
    [
        ("keyring.backends.fail.Keyring", {}, "error: no usable keyring on this system"),
        (
            "filekeyring.FileKeyring",
            {"IMGGEN_TEST_KEYRING_LOCKED": "1"},
            "the keyring did not store the key: RuntimeError: the collection is locked",
        ),
    ],
)
def test_without_a_usable_keyring_nothing_is_written(
    tmp_path: Path, backend: str, extra: dict[str, str], message: str
) -> None:
    result = run_cli("config", "set", "openai", "api_key", "--keyring", env=keyring_env(tmp_path, backend, **extra),
                     input=f"{KEY}\n".encode())  # fmt: skip
    assert result.code == 3, result.stderr
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    no_key_anywhere(tmp_path, result)
    assert config_text(tmp_path) == "" and not (tmp_path / "keyring.json").exists()


def test_without_the_keyring_library_the_error_says_what_to_install(tmp_path: Path) -> None:
    missing = tmp_path / "nokeyring" / "keyring"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named keyring')\n")
    env = {"PYTHONPATH": str(missing.parent)}
    result = run_cli("config", "set", "openai", "api_key", KEY, "--keyring", env=env)
    assert result.code == 3
    assert result.stderr.strip() == (
        "error: the keyring library is not installed. Install it: pip install 'imggen[keyring]'."
    )
    assert config_text(tmp_path) == ""


def test_keyring_is_for_secrets_and_a_missing_one_is_a_config_error(fake: FakeProvider, tmp_path: Path) -> None:
    env = keyring_env(tmp_path)
    refused = run_cli("config", "set", "slow", "timeout", "30", "--keyring", env=env)
    assert refused.code == 2 and "--keyring keeps secrets; timeout is not one" in refused.stderr
    assert run_cli("config", "set", "openai", "api_key", KEY, "--keyring", env=env).code == 0
    (tmp_path / "keyring.json").write_text("{}")  # removed from the keyring behind imggen's back
    made = run_cli("generate", "otter", "-m", "gpt-image-2", env={**env, "OPENAI_BASE_URL": fake.openai_base})
    assert made.code == 3 and fake.requests == []
    assert "api_key (from profile:openai) refers to keyring:imggen/openai/api_key" in made.stderr
    assert "which the keyring does not hold" in made.stderr


def test_keyring_is_imported_only_when_a_profile_refers_to_it() -> None:
    script = ("import sys; from imggen.settings import resolve; resolve(model='placeholder'); "
              "import imggen.commands.config; print('keyring' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
