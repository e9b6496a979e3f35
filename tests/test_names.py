"""Names, models and help (issue 11, items 9-14): near-miss model ids, `imggen models` at a terminal
and in a pipe, the default model, credentials that really resolve, help examples and completion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Result, assert_no_secret, openai_env, run_cli
from fakeserver import FakeProvider


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("gpt-image2", "did you mean gpt-image-2?"),
        ("dalle-3", "did you mean dall-e-3?"),
        ("placeholdr", "did you mean placeholder?"),
        ("vertex/imagen-4.0-generate-001", "did you mean vertex_ai/imagen-4.0-generate-001?"),
        ("bedrok/amazon.nova-canvas-v1:0", "did you mean bedrock/amazon.nova-canvas-v1:0?"),
    ],
)
def test_a_near_miss_model_is_a_usage_error_with_a_suggestion(typed: str, meant: str, fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", typed, "-o", "out", env=openai_env(fake))
    assert result.code == 2, result.stderr
    assert meant in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake.requests == [] and not Path("out").exists()


def test_an_unrelated_bare_id_still_asks_for_a_prefix() -> None:
    result = run_cli("generate", "otter", "-m", "flux-dev", "--dry-run")
    assert result.code == 2 and "did you mean" not in result.stderr and "Add a prefix" in result.stderr


def _warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_an_unknown_id_at_the_providers_own_endpoint_is_sent_with_a_warning(fake: FakeProvider) -> None:
    env = openai_env(fake)
    del env["OPENAI_BASE_URL"]  # the provider's own endpoint: --dry-run sends nothing
    result = run_cli("generate", "otter", "-m", "openai/gpt-imge-2", "--dry-run", env=env)  # in no family
    assert result.code == 0, result.stderr
    [line] = _warnings(result)
    assert "openai/gpt-imge-2 is not in imggen's catalog" in line and "openai/gpt-image-2" in line
    assert "sent as it is" in line
    assert "gpt-imge-2" in result.stdout
    assert_no_secret(result.everything())


def test_an_unknown_id_at_a_custom_endpoint_gets_no_warning(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "openai/my-local-model", "-o", "out", env=openai_env(fake))
    assert result.code == 0, result.stderr
    assert _warnings(result) == []
    assert len(result.lines) == 1


def test_azure_deployment_names_are_never_second_guessed() -> None:
    result = run_cli("generate", "otter", "-m", "azure/gpt-image2", "--dry-run",
                     env={"AZURE_API_KEY": "k" * 20, "AZURE_API_BASE": "https://x.openai.azure.com"})  # fmt: skip
    assert result.code == 0, result.stderr
    assert _warnings(result) == []


def _at_terminal(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> tuple[int, str]:
    """imggen with stdout a pseudo-terminal of `columns` columns (its real window size, not $COLUMNS)."""
    from ptyhelp import at_terminal

    shown = at_terminal(*args, columns=columns, env=env)
    return shown.code, shown.screen


def _catalog_ids(show_all: bool = False) -> list[str]:
    from imggen.catalog import all_models

    return [m.id for m in all_models() if show_all or m.status() != "retired"]


def test_models_at_an_80_column_terminal_fit_and_never_cut_an_id() -> None:
    code, screen = _at_terminal("models", "--all")
    assert code == 0, screen
    lines = screen.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "STATUS", "PRICE/IMAGE"]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    # An id longer than the column (Bedrock's image services) is whole on its own line, its row below.
    assert [line.split()[0] for line in lines[1:] if not line.startswith(" ")] == _catalog_ids(show_all=True)
    long = next(i for i, line in enumerate(lines) if line == "bedrock/us.stability.stable-image-inpaint-v1:0")
    assert lines[long + 1].split()[:2] == ["active", "$0.070"]
    dalle = next(line for line in lines if line.startswith("openai/dall-e-3 "))
    assert "retired 2026-05-12" in dalle
    assert "retires 2026-12-01" in next(line for line in lines if line.startswith("openai/gpt-image-1.5 "))


def test_models_wide_shows_every_column() -> None:
    code, screen = _at_terminal("models", "--wide")
    assert code == 0
    header = screen.splitlines()[0].split()
    assert header == ["MODEL", "PROVIDER", "STATUS", "PRICE/IMAGE", "CONFIGURED", "SIZES", "MAX", "N", "QUALITIES",
                      "TASKS"]  # fmt: skip


def test_models_in_a_pipe_are_tab_separated_without_a_header() -> None:
    result = run_cli("models", env={"OPENAI_API_KEY": "sk-test-openai-0123456789"})
    assert result.code == 0
    rows = [line.split("\t") for line in result.lines]
    assert [row[0] for row in rows] == _catalog_ids()
    assert all(len(row) == 9 for row in rows) and {row[8] for row in rows} >= {"generate", "generate, edit"}
    gpt = next(row for row in rows if row[0] == "openai/gpt-image-2")
    assert gpt[1:3] == ["openai", "active"] and gpt[4] == "yes"
    assert_no_secret(result.everything())


def _configured(env: dict[str, str] | None = None) -> dict[str, str]:
    """provider -> the configured column of `imggen models` (read from the tab-separated form)."""
    result = run_cli("models", "--all", env=env)
    assert result.code == 0, result.stderr
    return {row[1]: row[4] for row in (line.split("\t") for line in result.lines)}


def test_a_profile_whose_key_refers_to_an_unset_variable_is_not_configured() -> None:
    assert run_cli("config", "set", "openai", "api_key", "os.environ/MY_OPENAI_KEY").code == 0
    assert _configured()["openai"] == "no"
    assert _configured({"MY_OPENAI_KEY": "   "})["openai"] == "no"  # blank is not a key
    assert _configured({"MY_OPENAI_KEY": "sk-test-openai-0123456789"})["openai"] == "yes"


def test_bedrock_and_vertex_profiles_count_only_when_credentials_resolve(isolated: Path) -> None:
    assert run_cli("config", "set", "bedrock", "aws_region_name", "us-east-1").code == 0
    assert run_cli("config", "set", "vertex_ai", "vertex_project", "p").code == 0
    before = _configured()
    assert (before["bedrock"], before["vertex_ai"], before["placeholder"]) == ("no", "no", "yes")
    aws = isolated / "home" / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[work]\naws_access_key_id = AKIATEST\naws_secret_access_key = s3cr3t\n")
    assert _configured()["bedrock"] == "no"  # keys for another AWS profile than the default one
    assert _configured({"AWS_PROFILE": "work"})["bedrock"] == "yes"
    assert _configured({"AWS_PROFILE": "nowhere"})["bedrock"] == "no"
    key_file = isolated / "sa.json"
    assert _configured({"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})["vertex_ai"] == "no"  # missing file
    key_file.write_text("not json")
    assert _configured({"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})["vertex_ai"] == "no"
    key_file.write_text('{"type": "service_account"}')
    assert _configured({"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})["vertex_ai"] == "yes"
    adc = isolated / "home" / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text('{"type": "authorized_user"}')
    assert _configured()["vertex_ai"] == "yes"


def test_the_aws_check_never_asks_the_instance_metadata_service(fake: FakeProvider, isolated: Path) -> None:
    aws = isolated / "home" / ".aws"
    aws.mkdir()
    (aws / "config").write_text("[default]\nregion = us-east-1\n")  # no keys: the chain would reach IMDS next
    env = {"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.base_url,
           "AWS_CONTAINER_CREDENTIALS_FULL_URI": fake.base_url + "/creds"}  # fmt: skip
    assert _configured(env)["bedrock"] == "no"
    assert run_cli("config", "explain", "-m", "bedrock/amazon.nova-canvas-v1:0", env=env).code == 0
    assert fake.requests == []


def test_config_explain_says_whether_a_credential_resolves() -> None:
    def credentials(env: dict[str, str] | None = None) -> dict[str, str]:
        result = run_cli("config", "explain", "--json", env=env)
        assert result.code == 0, result.stderr
        return next(row for row in json.loads(result.stdout) if row["setting"] == "credentials")

    assert credentials()["value"] == "not found"
    found = credentials({"OPENAI_API_KEY": "sk-test-openai-0123456789"})
    assert found == {"setting": "credentials", "value": "found", "source": "api_key (env:OPENAI_API_KEY)"}


def test_models_default_shows_and_sets_the_model_generate_uses(isolated: Path) -> None:
    shown = run_cli("models", "default")
    assert (shown.code, shown.stdout) == (0, "openai/gpt-image-2\n")
    assert "built-in default" in shown.stderr
    assert run_cli("models", "default", "placeholder").code == 0
    assert 'default_model = "placeholder/default"' in (isolated / "config" / "config.toml").read_text()
    assert run_cli("models", "default").stdout == "placeholder/default\n"
    made = run_cli("generate", "otter", "-o", "out")  # no -m, no credentials: the placeholder answers
    assert made.code == 0, made.stderr
    assert len(made.lines) == 1 and Path(made.lines[0]).is_file()
    explain = json.loads(run_cli("config", "explain", "--json").stdout)[0]
    assert explain == {"setting": "model", "value": "placeholder/default", "source": "config:default_model"}
    overridden = run_cli("config", "explain", "--json", env={"IMGGEN_MODEL": "gpt-image-2"})
    assert json.loads(overridden.stdout)[0]["source"] == "env:IMGGEN_MODEL"


def test_models_default_wins_over_the_default_profiles_model_but_not_over_profile() -> None:
    assert run_cli("config", "set", "mine", "provider", "openai").code == 0
    assert run_cli("config", "set", "mine", "model", "openai/gpt-image-1.5").code == 0
    assert run_cli("config", "default", "mine").code == 0
    assert run_cli("config", "set", "az", "provider", "azure").code == 0
    assert run_cli("config", "set", "az", "model", "azure/my-deployment").code == 0
    assert run_cli("models", "default").stdout == "openai/gpt-image-1.5\n"
    assert run_cli("models", "default", "gpt-image-2").code == 0
    assert run_cli("models", "default").stdout == "openai/gpt-image-2\n"
    explain = run_cli("config", "explain", "--profile", "az", "--json")
    assert json.loads(explain.stdout)[0]["value"] == "azure/my-deployment"


@pytest.mark.parametrize(
    ("model", "message"),
    [("gpt-image2", "did you mean gpt-image-2?"), ("dall-e-3", "openai/dall-e-3 is retired")],
)
def test_models_default_refuses_a_wrong_model_and_writes_nothing(model: str, message: str, isolated: Path) -> None:
    result = run_cli("models", "default", model)
    assert result.code == 2 and message in result.stderr
    assert not (isolated / "config" / "config.toml").exists()


def test_a_bad_default_model_in_the_file_is_a_config_error(isolated: Path) -> None:
    (isolated / "config").mkdir()
    (isolated / "config" / "config.toml").write_text('default_model = "midjourney/v6"\n')
    result = run_cli("generate", "otter", "--dry-run")
    assert result.code == 3 and "default_model" in result.stderr and "Traceback" not in result.stderr


COMMANDS = ["generate", "edit", "gallery", "models", "models show", "models default", "models check", "config set",
            "config get", "config unset", "config remove", "config list", "config show", "config default",
            "config explain", "config path", "serve", "serve spend", "logs", "help"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_ends_with_real_examples(command: str) -> None:
    from imggen.commands.helptext import EXAMPLES

    result = run_cli(*command.split(), "--help")
    assert result.code == 0, result.stderr
    examples = result.stdout.split("Examples:", 1)[1].strip().splitlines()
    assert 1 <= len(examples) <= 4 and [line.strip() for line in examples] == list(EXAMPLES[command])
    assert all(f"imggen {command}" in line for line in examples)  # each one is the command it documents
    assert "<str>" not in result.stdout and "<int>" not in result.stdout and "<float>" not in result.stdout


def test_generate_help_shows_the_shape_of_each_value() -> None:
    text = run_cli("generate", "--help").stdout
    for shape in ("--size WxH", "--aspect-ratio W:H", "--param KEY=VALUE", "--output DIR", "--number N",
                  "--max-cost USD", "--prompts-file FILE", "--seed S", "--api-base URL", "--profile NAME"):  # fmt: skip
        assert shape in text, shape
    assert "- to read prompts from stdin" in text


def test_every_help_example_runs(isolated: Path) -> None:
    """The examples, in an order where each one's profile exists, as a user would paste them."""
    import os
    import subprocess
    import sys

    from imggen.commands.helptext import EXAMPLES

    order = ["imggen", "generate", "edit", "logs", "gallery", "models", "models show", "models check", "models add",
             "models remove", "models default", "config set", "config get", "config show", "config list",
             "config default", "config explain", "config path", "config unset", "config remove", "serve spend",
             "help"]  # fmt: skip
    assert set(order) | {"serve"} == set(EXAMPLES)
    (isolated / "proxy.yaml").write_text("model_list: []\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in [*order, "serve"]:
        for example in EXAMPLES[command]:
            done = subprocess.run(["bash", "-o", "pipefail", "-c", example], env=env, capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
            if command == "serve":  # it would listen forever: the flags parse and the config file is read
                assert done.returncode == 3 and "proxy.yaml" in done.stderr, (example, done.stderr)
            else:
                assert done.returncode == 0, (example, done.stderr)
            assert "Traceback" not in done.stderr
    assert len(list((isolated / "otters").glob("*.png"))) == 1 and len(list((isolated / "birds").glob("*.png"))) == 2
    assert len(list((isolated / "edited").glob("*.png"))) == 2


def _env_names_in_the_code() -> set[str]:

    from imggen.providers import PROVIDERS as SPECS
    from imggen.transport import _HTTP_PROXY_VARS

    names = {n for spec in SPECS.values() for group in spec.env.values() for n in group}
    names |= {n for spec in SPECS.values() for n in (*spec.credential_env, *spec.ca_env)}
    names |= {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", *(n.upper() for n in _HTTP_PROXY_VARS)}  # transport.py's
    source = Path(__file__).resolve().parent.parent / "cli" / "imggen"
    pattern = re.compile(r"""(?:environ\.get|env\.get|environ)\(?\[?\s*["']([A-Z][A-Z0-9_]+)["']|"(IMGGEN_[A-Z_]+)\"""")
    for path in source.rglob("*.py"):
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            names.add(match.group(1) or match.group(2))
    return names


def test_help_environment_lists_every_variable_imggen_reads() -> None:
    names = _env_names_in_the_code()
    assert {"OPENAI_API_KEY", "IMGGEN_MAX_IMAGE_MB", "CLOUDSDK_CONFIG", "NO_COLOR", "SSL_CERT_FILE"} <= names
    result = run_cli("help", "environment")
    assert result.code == 0
    listed = {line.split()[0].rstrip(",") for line in result.lines if line.startswith("  ")}
    listed |= {"HTTP_PROXY"}  # listed on the line of HTTPS_PROXY
    assert names - listed == set()
    for name in ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE", "GEMINI_API_KEY"):
        assert name in result.stdout


def test_each_provider_declares_every_variable_it_reads() -> None:
    """`help environment` is derived: a provider's section is its declaration's `environment`, which
    names every variable its settings, credentials and CA bundle read."""
    from imggen.providers import PROVIDERS as SPECS

    for spec in SPECS.values():
        declared = {name for name, _ in spec.environment}
        read = {n for group in spec.env.values() for n in group} | {*spec.credential_env, *spec.ca_env}
        assert read - {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"} <= declared, spec.name
    text = run_cli("help", "environment").stdout
    assert all(spec.label in text for spec in SPECS.values() if spec.environment)


def test_help_of_an_unknown_topic_is_a_usage_error() -> None:
    result = run_cli("help", "environ")
    assert result.code == 2 and "no help topic 'environ'" in result.stderr and "environment" in result.stderr
    assert "Usage: imggen" in run_cli("help").stdout


def test_models_show_of_an_unknown_id_names_the_nearest() -> None:
    result = run_cli("models", "show", "openai/gpt-image2")
    assert result.code == 2 and "did you mean openai/gpt-image-2" in result.stderr
