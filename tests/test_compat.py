"""openai/<any id> with an api_base is an OpenAI-compatible server: id sent as-is, key optional."""

from __future__ import annotations

from conftest import run_cli
from fakeserver import FakeProvider


def test_any_id_with_api_base_and_no_key(fake: FakeProvider) -> None:
    fake.require_key = False
    result = run_cli("generate", "otter", "-m", "openai/flux-schnell", "--api-base", fake.openai_base, "-n", "3")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 3
    request = fake.requests[0]
    assert request.json["model"] == "flux-schnell" and request.json["n"] == 3
    assert "authorization" not in request.headers


def test_unknown_model_values_are_sent_as_given(fake: FakeProvider) -> None:
    fake.require_key = False
    args = ["-m", "openai/sdxl", "--api-base", fake.openai_base, "-s", "640x480", "-q", "max", "--style", "x"]
    result = run_cli("generate", "otter", *args)
    assert result.code == 0, result.stderr
    body = fake.requests[0].json
    assert body["size"] == "640x480" and body["quality"] == "max" and body["style"] == "x"


def test_openai_api_base_variable_is_read(fake: FakeProvider) -> None:
    fake.require_key = False
    result = run_cli("generate", "otter", "-m", "openai/local", env={"OPENAI_API_BASE": fake.openai_base})
    assert result.code == 0, result.stderr


def test_an_unreachable_server_is_a_network_error() -> None:
    result = run_cli("generate", "otter", "-m", "openai/x", "--api-base", "http://127.0.0.1:9/v1", "--retries", "0")
    assert result.code == 1 and "127.0.0.1" in result.stderr
