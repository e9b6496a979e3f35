"""`imggen config`: profiles, secrets, atomic 0600 writes, and the precedence rule with every source."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from conftest import OPENAI_KEY, assert_no_secret, openai_env, run_cli
from fakeserver import FakeProvider


def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "config.toml"


def test_path_honours_imggen_config_dir(tmp_path: Path) -> None:
    assert run_cli("config", "path").stdout.strip() == str(config_file(tmp_path))


def test_set_creates_a_0600_file_in_a_0700_directory(tmp_path: Path) -> None:
    result = run_cli("config", "set", "azure-eu", "api_base", "https://eu.openai.azure.com/")
    assert result.code == 0, result.stderr
    path = config_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary file left


def test_provider_is_implied_by_a_provider_named_profile() -> None:
    run_cli("config", "set", "azure", "api_version", "2024-02-01")
    assert run_cli("config", "get", "azure", "provider").stdout.strip() == "azure"


def test_api_key_is_masked_unless_revealed() -> None:
    run_cli("config", "set", "openai", "api_key", OPENAI_KEY)
    assert run_cli("config", "get", "openai", "api_key").stdout.strip() == "****" + OPENAI_KEY[-4:]
    assert run_cli("config", "get", "openai", "api_key", "--reveal").stdout.strip() == OPENAI_KEY
    shown = run_cli("config", "show", "openai")
    assert_no_secret(shown.everything())


def test_api_key_from_stdin_and_from_a_prompt_without_echo() -> None:
    assert run_cli("config", "set", "openai", "api_key", "-", input=f"{OPENAI_KEY}\n".encode()).code == 0
    assert run_cli("config", "get", "openai", "api_key", "--reveal").stdout.strip() == OPENAI_KEY
    run_cli("config", "set", "other", "provider", "openai")
    result = run_cli("config", "set", "other", "api_key", input=b"sk-typed-in-key-1234\n")
    assert result.code == 0
    assert run_cli("config", "get", "other", "api_key", "--reveal").stdout.strip() == "sk-typed-in-key-1234"
    assert "sk-typed-in-key-1234" not in result.everything()


def test_unknown_key_is_a_usage_error_listing_the_keys() -> None:
    result = run_cli("config", "set", "openai", "colour", "blue")
    assert result.code == 2 and "api_base" in result.stderr


def test_list_show_default_unset_remove() -> None:
    run_cli("config", "set", "azure-eu", "provider", "azure")
    run_cli("config", "set", "azure-eu", "api_base", "https://eu.example/")
    run_cli("config", "set", "openai", "api_key", "os.environ/MY_KEY")
    assert run_cli("config", "default", "azure-eu").code == 0
    listed = json.loads(run_cli("config", "list", "--json").stdout)
    assert {"name": "azure-eu", "provider": "azure", "default": True} in listed
    assert {"name": "openai", "provider": "openai", "default": False} in listed
    assert "default for azure" in run_cli("config", "list").stdout
    assert json.loads(run_cli("config", "show", "openai", "--json").stdout)["api_key"] == "os.environ/MY_KEY"
    assert run_cli("config", "unset", "azure-eu", "api_base").code == 0
    assert run_cli("config", "get", "azure-eu", "api_base").code == 3
    assert run_cli("config", "remove", "azure-eu").code == 0
    assert [p["name"] for p in json.loads(run_cli("config", "list", "--json").stdout)] == ["openai"]


def test_invalid_toml_says_where_and_exits_3(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    path.parent.mkdir()
    path.write_text('[profiles.a]\nprovider = "openai"\napi_base = \n')
    result = run_cli("config", "list")
    assert result.code == 3
    assert str(path) in result.stderr and "line 3" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_key_in_the_file_exits_3(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    path.parent.mkdir()
    path.write_text('[profiles.a]\nprovider = "openai"\napi_kee = "x"\n')
    result = run_cli("generate", "otter", "-m", "placeholder")
    assert result.code == 3 and "api_kee" in result.stderr


def test_a_file_readable_by_others_gets_a_warning(tmp_path: Path) -> None:
    run_cli("config", "set", "openai", "api_base", "http://x")
    os.chmod(config_file(tmp_path), 0o644)
    assert "chmod 600" in run_cli("config", "list").stderr


def explain(*args: str, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    result = run_cli("config", "explain", "--json", *args, env=env)
    assert result.code == 0, result.stderr
    return {row["setting"]: (row["value"], row["source"]) for row in json.loads(result.stdout)}


def test_precedence_every_source() -> None:
    run_cli("config", "set", "openai", "api_base", "http://provider-default/v1")
    run_cli("config", "set", "openai", "timeout", "30")
    run_cli("config", "set", "mine", "provider", "openai")
    run_cli("config", "set", "mine", "api_base", "http://named/v1")
    assert explain()["api_base"] == ("http://provider-default/v1", "profile:openai")
    env = {"OPENAI_BASE_URL": "http://env/v1"}
    assert explain(env=env)["api_base"] == ("http://env/v1", "env:OPENAI_BASE_URL")
    assert explain("--profile", "mine", env=env)["api_base"] == ("http://named/v1", "profile:mine")
    assert explain("--profile", "mine", env={**env, "IMGGEN_PROFILE": "openai"})["api_base"][1] == "profile:mine"
    assert explain(env={"IMGGEN_PROFILE": "mine"})["api_base"] == ("http://named/v1", "profile:mine")
    assert explain()["timeout"] == ("30.0", "profile:openai")
    assert explain("--profile", "mine")["timeout"] == ("600.0", "default")
    assert explain()["model"] == ("openai/gpt-image-2", "default")
    assert explain(env={"IMGGEN_MODEL": "dall-e-3"})["model"] == ("openai/dall-e-3", "env:IMGGEN_MODEL")
    assert explain("-m", "gpt-image-1", env={"IMGGEN_MODEL": "dall-e-3"})["model"] == ("openai/gpt-image-1", "flag")


def test_flag_beats_everything(fake: FakeProvider) -> None:
    run_cli("config", "set", "openai", "api_base", "http://127.0.0.1:9/v1")
    result = run_cli("generate", "otter", "-m", "gpt-image-1", "--api-base", fake.openai_base,
                     env={"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})  # fmt: skip
    assert result.code == 0, result.stderr


def test_default_profile_supplies_the_model() -> None:
    run_cli("config", "set", "azure-eu", "provider", "azure")
    run_cli("config", "set", "azure-eu", "model", "azure/dall-e-3")
    run_cli("config", "default", "azure-eu")
    rows = explain()
    assert rows["model"] == ("azure/dall-e-3", "profile:azure-eu")
    assert rows["api_version"] == ("2025-04-01-preview", "default")


def test_os_environ_references_are_read_at_use_time(fake: FakeProvider) -> None:
    run_cli("config", "set", "openai", "api_key", "os.environ/MY_OPENAI_KEY")
    run_cli("config", "set", "openai", "api_base", fake.openai_base)
    rows = explain(env={"MY_OPENAI_KEY": OPENAI_KEY})
    assert rows["api_key"] == ("****" + OPENAI_KEY[-4:], "profile:openai (os.environ/MY_OPENAI_KEY)")
    result = run_cli("generate", "otter", "-m", "gpt-image-1", env={"MY_OPENAI_KEY": OPENAI_KEY})
    assert result.code == 0, result.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_an_unset_reference_is_a_config_error_naming_the_variable(fake: FakeProvider) -> None:
    run_cli("config", "set", "azure", "api_key", "os.environ/AZURE_KEY_EU")
    run_cli("config", "set", "azure", "api_base", fake.base_url)
    result = run_cli("generate", "otter", "-m", "azure/d")
    assert result.code == 3 and "AZURE_KEY_EU" in result.stderr and fake.requests == []


def test_model_and_profile_of_different_providers_is_a_usage_error() -> None:
    run_cli("config", "set", "azure-eu", "provider", "azure")
    result = run_cli("generate", "otter", "-m", "dall-e-3", "--profile", "azure-eu")
    assert result.code == 2 and "azure-eu" in result.stderr


def test_an_unknown_profile_exits_3() -> None:
    result = run_cli("generate", "otter", "--profile", "nope")
    assert result.code == 3 and "nope" in result.stderr


def test_output_dir_from_profile_and_env(fake: FakeProvider, tmp_path: Path) -> None:
    run_cli("config", "set", "openai", "output_dir", "from-profile")
    run_cli("config", "set", "openai", "api_base", fake.openai_base)
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    assert run_cli("generate", "otter", "-m", "gpt-image-1", env=env).lines[0].startswith("from-profile/")
    env_dir = run_cli("generate", "otter", "-m", "gpt-image-1", env={**env, "IMGGEN_OUTPUT_DIR": "from-env"})
    assert env_dir.lines[0].startswith("from-env/")
    flag = run_cli("generate", "otter", "-m", "gpt-image-1", "-o", "flag", env={**env, "IMGGEN_OUTPUT_DIR": "x"})
    assert flag.lines[0].startswith("flag/")


def test_generate_uses_the_profile_key(fake: FakeProvider) -> None:
    run_cli("config", "set", "openai", "api_key", OPENAI_KEY)
    result = run_cli("generate", "otter", "-m", "gpt-image-1", env={"OPENAI_BASE_URL": fake.openai_base})
    assert result.code == 0, result.stderr
    _ = openai_env
