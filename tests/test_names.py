"""Names, models and help (issue 11, items 9-14): near-miss model ids, `imggen models` at a terminal
and in a pipe, the default model, credentials that really resolve, help examples and completion."""

from __future__ import annotations

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
    result = run_cli("generate", "otter", "-m", "openai/gpt-image-22", "--dry-run", env=env)
    assert result.code == 0, result.stderr
    [line] = _warnings(result)
    assert "openai/gpt-image-22 is not in imggen's catalog" in line and "openai/gpt-image-2" in line
    assert "sent as it is" in line
    assert "gpt-image-22" in result.stdout
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
