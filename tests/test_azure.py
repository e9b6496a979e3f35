"""Azure OpenAI: deployment route, api-version, api-key or Entra ID token, no model in the body."""

from __future__ import annotations

from conftest import AZURE_AD_TOKEN, AZURE_KEY, assert_no_secret, azure_env, run_cli
from fakeserver import FakeProvider


def test_deployment_route_with_api_key_and_default_api_version(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "azure/my-dalle", env=azure_env(fake))
    assert result.code == 0, result.stderr
    request = fake.requests[0]
    assert request.path == "/openai/deployments/my-dalle/images/generations"
    assert request.query["api-version"] == "2025-04-01-preview"
    assert request.headers["api-key"] == AZURE_KEY
    assert "model" not in request.json and "authorization" not in request.headers


def test_entra_id_token_is_sent_as_bearer(fake: FakeProvider) -> None:
    env = {"AZURE_AD_TOKEN": AZURE_AD_TOKEN, "AZURE_API_BASE": fake.base_url}
    result = run_cli("generate", "otter", "-m", "azure/gpt-image-1", "--api-version", "2025-04-01-preview", env=env)
    assert result.code == 0, result.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {AZURE_AD_TOKEN}"
    assert "api-key" not in fake.requests[0].headers


def test_api_version_flag_and_env(fake: FakeProvider) -> None:
    run_cli("generate", "otter", "-m", "azure/d", "--api-version", "2024-02-01", env=azure_env(fake))
    run_cli("generate", "otter", "-m", "azure/d", env={**azure_env(fake), "AZURE_API_VERSION": "2024-10-21"})
    assert [r.query["api-version"] for r in fake.requests] == ["2024-02-01", "2024-10-21"]


def test_azure_openai_api_key_variable_works_too(fake: FakeProvider) -> None:
    env = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_API_BASE": fake.base_url}
    assert run_cli("generate", "otter", "-m", "azure/d", env=env).code == 0


def test_deployment_named_like_a_model_is_validated_like_it(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "azure/dall-e-3", "-n", "2", "-q", "hd", env=azure_env(fake))
    assert result.code == 0, result.stderr
    assert [r.json["n"] for r in fake.requests] == [1, 1]
    bad = run_cli("generate", "otter", "-m", "azure/dall-e-3", "-q", "ultra", env=azure_env(fake))
    assert bad.code == 2 and "standard" in bad.stderr


def test_webp_is_refused_on_azure_before_sending(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "azure/gpt-image-1", "-p", "output_format=webp", env=azure_env(fake))
    assert result.code == 2 and fake.requests == []


def test_missing_endpoint_or_key_exit_3() -> None:
    no_base = run_cli("generate", "otter", "-m", "azure/d", env={"AZURE_API_KEY": AZURE_KEY})
    assert no_base.code == 3 and "AZURE_API_BASE" in no_base.stderr
    no_key = run_cli("generate", "otter", "-m", "azure/d", env={"AZURE_API_BASE": "http://127.0.0.1:9"})
    assert no_key.code == 3 and "AZURE_API_KEY" in no_key.stderr


def test_rejected_key_exits_3_without_showing_it(fake: FakeProvider) -> None:
    env = {"AZURE_API_KEY": "azure-wrong-key-99999999", "AZURE_API_BASE": fake.base_url}
    result = run_cli("generate", "otter", "-m", "azure/d", env=env)
    assert result.code == 3
    assert "azure-wrong-key-99999999" not in result.everything()
    assert_no_secret(result.everything())
    # Azure's error code is the status again: said once
    assert "401: Access denied due to invalid subscription key." in result.stderr and "401 401" not in result.stderr


def test_v1_surface_puts_the_deployment_in_the_body(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "azure/d", "--api-version", "v1", "--dry-run", env=azure_env(fake))
    assert result.code == 0
    assert f"POST {fake.base_url}/openai/v1/images/generations\n" in result.stdout
    assert '"model": "d"' in result.stdout


def test_user_stays_user_on_azure(fake: FakeProvider) -> None:
    # Azure's images API documents `user`; whether it takes OpenAI's newer `safety_identifier` is unconfirmed.
    result = run_cli("generate", "otter", "-m", "azure/gpt-image-2", "--user", "u-7", env=azure_env(fake))
    assert result.code == 0, result.stderr
    body = next(r.json for r in fake.requests if r.path.endswith("/images/generations"))
    assert body["user"] == "u-7" and "safety_identifier" not in body
