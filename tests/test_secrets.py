"""Issue 10, items 1-5: no secret leaves imggen in any form, from the CLI or from `imggen serve`.

A hostile fake quotes back the key it received (raw, repr-escaped, JSON-escaped, URL-encoded, cut) in
errors and in revised_prompt; every output, file and proxy answer is searched for the secret and for
any 8-character run of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
import yaml

from conftest import OPENAI_KEY, run_cli
from fakebedrock import AWS_SECRET
from fakeserver import FakeProvider, Reply
from servehelp import MASTER_KEY, Served, deployment, free_port, proxy_config
from test_bedrock import aws_env
from test_google import service_account  # noqa: F401  (a fixture)

# Quotes, a backslash and URL-special characters: its repr, JSON and URL forms all differ from it.
HOSTILE_KEY = "sk-h0st\"le\\key/+='0123456789"
KEY_2 = "sk-given-with-p-0001"
REDIS_PASSWORD = "redis-pw-0123456789xyz"
IMAGEN = "vertex_ai/imagen-4.0-generate-001"


def forms(secret: str) -> list[str]:
    return [secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret, safe="")]


def assert_hidden(text: str, *secrets: str) -> None:
    """Neither a secret nor any 8-character run of it, in any form, is in `text`."""
    for secret in secrets:
        for form in forms(secret):
            for start in range(max(1, len(form) - 7)):
                assert form[start : start + 8] not in text, f"{form[start : start + 8]!r} leaked"


def key_lines(credentials: str) -> list[str]:
    """The lines of key material of a service account's private key (its secret part)."""
    pem = json.loads(credentials)["private_key"]
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def files_text(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file() and p.suffix != ".png")


def openai_env(fake: FakeProvider, key: str = HOSTILE_KEY) -> dict[str, str]:
    return {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": fake.openai_base}


# Item 1: every form of a key a provider quotes back is masked.


def test_an_error_quoting_the_key_in_every_form_shows_none_of_it(fake: FakeProvider, tmp_path: Path) -> None:
    fake.echo_key = "error"
    result = run_cli("generate", "a fox", "-m", "openai/dall-e-3", "-o", "out", "--json", env=openai_env(fake))
    assert result.code == 1
    assert "error: openai/dall-e-3 failed" in result.stderr and "Bad request from raw ****" in result.stderr
    assert "Traceback" not in result.stderr
    assert_hidden(result.everything() + files_text(tmp_path / "out"), HOSTILE_KEY)


def test_a_plain_text_error_cut_through_the_key_leaves_no_part_of_it(fake: FakeProvider, tmp_path: Path) -> None:
    # imggen keeps 200 characters of a body that is not JSON: the cut falls 11 characters into the key.
    fake.script("/v1/images/generations", Reply(status=400, body="x" * 188 + " " + OPENAI_KEY + " is not valid"))
    result = run_cli("generate", "a fox", "-o", "out", env=openai_env(fake, OPENAI_KEY))
    assert result.code == 1 and "error:" in result.stderr and "xxxx" in result.stderr
    assert_hidden(result.everything() + files_text(tmp_path / "out"), OPENAI_KEY)


def test_a_short_key_is_masked_too(fake: FakeProvider) -> None:
    fake.echo_key = "error"
    result = run_cli("generate", "a fox", "-o", "out", env=openai_env(fake, "k9X"))
    assert result.code == 1 and "Bad request from raw ****" in result.stderr
    assert "k9X" not in result.everything()


def test_revised_prompt_json_and_metadata_are_redacted(fake: FakeProvider, tmp_path: Path) -> None:
    fake.echo_key = "revised"
    args = ("generate", "a fox", "-m", "openai/dall-e-3", "-o", "out", "--json", "--metadata", "-p", f"api_key={KEY_2}")
    dry = run_cli(*args, "--dry-run", env=openai_env(fake))
    assert dry.code == 0 and '"api_key": "****0001"' in dry.stdout
    assert_hidden(dry.everything(), HOSTILE_KEY, KEY_2)
    result = run_cli(*args, env=openai_env(fake))
    assert result.code == 0, result.stderr
    [line] = result.json_lines()
    assert line["revised_prompt"].startswith("raw ****") and (tmp_path / "out" / Path(line["path"]).name).exists()
    sidecar = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert sidecar["revised_prompt"].startswith("raw ****")
    assert_hidden(result.everything() + files_text(tmp_path / "out"), HOSTILE_KEY, KEY_2)


def test_a_password_in_api_base_is_masked_in_dry_run_explain_and_errors() -> None:
    port = free_port()  # nothing listens there: the real run fails to connect
    base = f"http://imggen:pw-Secret9@127.0.0.1:{port}/v1"
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": base}
    dry = run_cli("generate", "a fox", "--dry-run", env=env)
    assert dry.code == 0 and f"POST http://imggen:****@127.0.0.1:{port}/v1/images/generations" in dry.stdout
    dry_json = run_cli("generate", "a fox", "--dry-run", "--json", env=env)
    assert dry_json.json_lines()[0]["url"].startswith("http://imggen:****@")
    explain = run_cli("config", "explain", env=env)
    assert explain.code == 0 and "http://imggen:****@127.0.0.1" in explain.stdout
    failed = run_cli("generate", "a fox", "--retries", "0", "--timeout", "5", "-o", "out", env=env)
    assert failed.code == 1 and "error:" in failed.stderr
    for result in (dry, dry_json, explain, failed):
        assert "pw-Secret9" not in result.everything() and "pw-Secret" not in result.everything()
        assert_hidden(result.everything(), OPENAI_KEY)


# Item 2: a key that cannot go in a header is a config error before anything is sent.


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (OPENAI_KEY + "\r", "OPENAI_API_KEY contains a carriage return (often from a file with Windows line endings)"),
        (OPENAI_KEY[:10] + "\n" + OPENAI_KEY[10:], "OPENAI_API_KEY contains a line break"),
        (OPENAI_KEY + "\x07", "OPENAI_API_KEY contains a control character (U+0007)"),
        (OPENAI_KEY + "é", "OPENAI_API_KEY contains a non-ASCII character"),
    ],
)
def test_a_key_with_a_line_break_is_exit_3_and_nothing_is_sent(fake: FakeProvider, key: str, says: str) -> None:
    for extra in ((), ("--dry-run",)):
        result = run_cli("generate", "a fox", "-o", "out", *extra, env=openai_env(fake, key))
        assert result.code == 3, result.stderr
        assert result.stderr.startswith("error: " + says) and len(result.stderr.splitlines()) == 1
        assert_hidden(result.everything(), OPENAI_KEY)
    assert fake.requests == [] and not Path("out").exists()


def test_a_profile_key_with_a_line_break_names_the_profile(fake: FakeProvider) -> None:
    assert run_cli("config", "set", "openai", "api_base", fake.openai_base).code == 0
    config = Path(os.environ["IMGGEN_CONFIG_DIR"]) / "config.toml"
    config.write_text(config.read_text() + 'api_key = "' + OPENAI_KEY + '\\r\\n"\n')
    result = run_cli("generate", "a fox")
    assert result.code == 3
    assert "error: api_key (from profile:openai) contains a carriage return" in result.stderr
    assert fake.requests == []
    assert_hidden(result.everything(), OPENAI_KEY)


def test_spaces_around_a_key_are_dropped_with_a_note(fake: FakeProvider, tmp_path: Path) -> None:
    result = run_cli("generate", "a fox", "-o", "out", env=openai_env(fake, f"  {OPENAI_KEY}\t"))
    assert result.code == 0, result.stderr
    assert "OPENAI_API_KEY has spaces around it; imggen uses it without them" in result.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert_hidden(result.everything(), OPENAI_KEY)


# Item 3: one registry of secrets, inline vertex_credentials included.


@pytest.fixture
def inline_credentials(fake: FakeProvider, service_account: Path) -> str:  # noqa: F811
    """vertex_credentials given as the JSON itself in the vertex_ai profile, set through the CLI."""
    text = service_account.read_text()
    service_account.unlink()
    assert run_cli("config", "set", "vertex_ai", "vertex_credentials", "-", input=text.encode()).code == 0
    assert run_cli("config", "set", "vertex_ai", "model", "vertex_ai/gemini-3.1-flash-image").code == 0
    assert run_cli("config", "default", "vertex_ai").code == 0
    return text


def test_inline_credentials_are_masked_by_dry_run_and_config(inline_credentials: str) -> None:
    secrets = key_lines(inline_credentials)
    dry = run_cli("generate", "a fox", "--dry-run", "--allow-retired")  # Imagen is retired
    assert dry.code == 0, dry.stderr
    assert "# vertex_credentials: **** (inline JSON) (from profile:vertex_ai)" in dry.stdout
    results = [
        dry, run_cli("generate", "a fox", "--dry-run", "--json", "--allow-retired"), run_cli("config", "show"),
        run_cli("config", "show", "vertex_ai", "--json"), run_cli("config", "get", "vertex_ai", "vertex_credentials"),
        run_cli("config", "explain"), run_cli("config", "explain", "--json"),
    ]  # fmt: skip
    for result in results:
        assert result.code == 0, result.stderr
        assert "PRIVATE KEY" not in result.everything() and "private_key" not in result.everything()
        assert_hidden(result.everything(), *secrets)
    assert "vertex_credentials = **** (inline JSON)" in results[2].stdout


def test_an_error_quoting_the_private_key_shows_none_of_it(fake: FakeProvider, inline_credentials: str) -> None:
    pem = json.loads(inline_credentials)["private_key"]
    fake.echo_key, fake.echo_also = "error", (pem,)
    result = run_cli("generate", "a fox", "--api-base", fake.base_url, "-o", "out", "--json")
    assert result.code == 1 and "Bad request from raw ****" in result.stderr
    assert "PRIVATE KEY" not in result.everything()
    assert_hidden(result.everything() + files_text(Path("out")), *key_lines(inline_credentials), *fake.google_tokens)


def test_secrets_from_credential_files_and_chains_are_masked(fake: FakeProvider, service_account: Path) -> None:  # noqa: F811
    """Not settings, but read by imggen all the same: a service-account file, boto3's environment keys."""
    credentials = service_account.read_text()
    fake.echo_key, fake.echo_also = "error", (json.loads(credentials)["private_key"], AWS_SECRET)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(service_account), **aws_env(fake)}
    vertex = run_cli("generate", "a fox", "-m", IMAGEN, "--api-base", fake.base_url, env=env)
    bedrock = run_cli("generate", "a fox", "-m", "bedrock/amazon.nova-canvas-v1:0", env=env)
    for result in (vertex, bedrock):
        assert result.code == 1 and "Bad request from raw " in result.stderr and "****" in result.stderr
    assert "PRIVATE KEY" not in vertex.everything()
    assert_hidden(vertex.everything(), *key_lines(credentials), *fake.google_tokens)
    assert_hidden(bedrock.everything(), AWS_SECRET)


# Items 4 and 5: `imggen serve`.


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def run(config: dict[str, Any]) -> Served:
        started.append(Served(tmp_path, config))
        return started[-1]

    yield run
    for served in started:
        served.stop()


def hostile_proxy(fake: FakeProvider, credentials: str) -> dict[str, Any]:
    return proxy_config(
        deployment("img", "openai/dall-e-3", api_base=fake.openai_base, api_key=HOSTILE_KEY),
        deployment("vtx", IMAGEN, vertex_credentials=credentials, vertex_project="p",
                   vertex_location="us-central1", api_base=fake.base_url),
        router={"redis_password": REDIS_PASSWORD},
    )  # fmt: skip


def test_serve_never_returns_an_upstream_secret(fake: FakeProvider, start: Any, service_account: Path) -> None:  # noqa: F811
    credentials = service_account.read_text()
    served = start(hostile_proxy(fake, credentials))
    secrets = (HOSTILE_KEY, MASTER_KEY, REDIS_PASSWORD, *key_lines(credentials))
    fake.echo_also = (MASTER_KEY, REDIS_PASSWORD, json.loads(credentials)["private_key"])
    fake.echo_key = "error"
    answers = [served.post({"model": name, "prompt": "a fox"}) for name in ("img", "vtx")]
    assert [a.status_code for a in answers] == [400, 400]
    assert all(": Bad request from raw ****" in a.json()["error"]["message"] for a in answers)
    health = httpx.get(served.base + "/health?probe=1", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert health.json()["unhealthy_count"] == 2
    fake.echo_key = "revised"
    client = openai.OpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0)
    image = client.images.generate(model="img", prompt="a fox", response_format="b64_json").data[0]
    assert image.revised_prompt is not None and image.revised_prompt.startswith("raw ****")
    everything = "".join(a.text for a in answers) + health.text + image.model_dump_json() + served.stderr()
    assert "PRIVATE KEY" not in everything
    assert_hidden(everything, *secrets, *fake.google_tokens)


def health_ids(served: Served) -> list[str]:
    health = httpx.get(served.base + "/health", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
    return [entry["model_id"] for entry in health["healthy_endpoints"]]


def test_deployment_ids_do_not_depend_on_the_keys(fake: FakeProvider, start: Any) -> None:
    def config(*keys: str) -> dict[str, Any]:
        return proxy_config(*[deployment("d", "openai/dall-e-3", api_base=fake.openai_base, api_key=k) for k in keys])

    first = start(config(OPENAI_KEY, "sk-another-key-0000"))
    ids = health_ids(first)
    assert len(set(ids)) == 2  # entries that differ only in their keys are still told apart
    answer = first.post({"model": "d", "prompt": "a fox"})
    assert answer.headers["x-litellm-model-id"] in ids
    # The same entries with other keys get the same public ids: an id says nothing about a key.
    assert health_ids(start(config("sk-guess-1-aaaaaaaa", "sk-guess-2-bbbbbbbb"))) == ids


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("master", "general_settings: master_key contains a line break"),
        ("upstream", "model_list[0] (img): api_key contains a carriage return"),
    ],
)
def test_serve_refuses_a_key_with_a_line_break(fake: FakeProvider, tmp_path: Path, where: str, says: str) -> None:
    config = proxy_config(deployment("img", "openai/dall-e-3", api_base=fake.openai_base,
                                     api_key=OPENAI_KEY + ("\r" if where == "upstream" else "")))  # fmt: skip
    if where == "master":
        config["general_settings"]["master_key"] = MASTER_KEY[:8] + "\n" + MASTER_KEY[8:]
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("serve", "--config", str(path), "--port", str(free_port()), timeout=30)
    assert result.code == 3 and says in result.stderr and "Traceback" not in result.stderr
    assert_hidden(result.everything(), OPENAI_KEY, MASTER_KEY)


def test_config_set_refuses_a_key_with_a_line_break() -> None:
    result = run_cli("config", "set", "openai", "api_key", OPENAI_KEY + "\r")
    assert result.code == 2 and result.stderr.startswith("error: api_key contains a carriage return")
    assert_hidden(result.everything(), OPENAI_KEY)
    assert not (Path(os.environ["IMGGEN_CONFIG_DIR"]) / "config.toml").exists()
    stored = run_cli("config", "set", "openai", "api_key", f" {OPENAI_KEY} ")
    assert stored.code == 0 and "api_key = ****6789" in stored.stderr
    assert run_cli("config", "get", "openai", "api_key", "--reveal").stdout == OPENAI_KEY + "\n"


def test_a_key_of_only_spaces_is_not_set(fake: FakeProvider) -> None:
    result = run_cli("generate", "a fox", env=openai_env(fake, "   "))
    assert "OPENAI_API_KEY holds only spaces; imggen treats it as not set" in result.stderr
    assert result.code == 3 and "authorization" not in fake.requests[0].headers  # sent without a key: 401
