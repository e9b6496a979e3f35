"""--dry-run: every request that would be sent, secrets masked, cost, no credentials, nothing sent."""

from __future__ import annotations

import json

from conftest import AZURE_KEY, OPENAI_KEY, assert_no_secret, run_cli

BEFORE_MAY_2026 = {"IMGGEN_TODAY": "2026-01-15"}  # dall-e-3 retires 2026-05-12


def test_dry_run_needs_no_credentials_and_sends_nothing() -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-2", "--dry-run")
    assert result.code == 0, result.stderr
    assert "POST https://api.openai.com/v1/images/generations" in result.stdout
    assert '"model": "gpt-image-2"' in result.stdout
    assert "# estimated cost: $" in result.stdout


def test_dry_run_masks_keys() -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-2", "--dry-run", env={"OPENAI_API_KEY": OPENAI_KEY})
    assert f"Authorization: Bearer ****{OPENAI_KEY[-4:]}" in result.stdout
    assert_no_secret(result.everything())
    azure = run_cli("generate", "otter", "-m", "azure/d", "--dry-run",
                    env={"AZURE_API_KEY": AZURE_KEY, "AZURE_API_BASE": "https://r.openai.azure.com"})  # fmt: skip
    assert f"api-key: ****{AZURE_KEY[-4:]}" in azure.stdout
    assert "https://r.openai.azure.com/openai/deployments/d/images/generations?api-version=" in azure.stdout
    assert_no_secret(azure.everything())


def test_dry_run_shows_each_fanned_out_request_and_the_mapping() -> None:
    # dall-e-3's one image per request, on a day OpenAI still served it
    result = run_cli(
        "generate", "otter", "-m", "dall-e-3", "-n", "3", "-s", "512x512", "--dry-run", env=BEFORE_MAY_2026
    )
    assert result.stdout.count("POST https://api.openai.com/v1/images/generations") == 3
    assert "# request 3 of 3" in result.stdout
    assert "1024x1024" in result.stdout and "# note:" in result.stdout
    assert "$0.1200 for 3 images" in result.stdout


def test_dry_run_json_lines() -> None:
    result = run_cli("generate", "otter", "-m", "dall-e-3", "-n", "2", "--dry-run", "--json",
                     env={"OPENAI_API_KEY": OPENAI_KEY, **BEFORE_MAY_2026})  # fmt: skip
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["method"] == "POST" and lines[0]["body"]["n"] == 1
    assert lines[0]["headers"]["Authorization"] == "Bearer ****" + OPENAI_KEY[-4:]
    assert lines[0]["cost_usd"] == 0.04


def test_retired_model_on_the_providers_endpoint_is_refused_with_the_replacement() -> None:
    result = run_cli("generate", "otter", "-m", "dall-e-3", "--dry-run")
    assert result.code == 2 and "POST https://api.openai.com/v1/images/generations" in result.stdout
    assert "error:" in result.stderr and "retired" in result.stderr and "gpt-image-2" in result.stderr


def test_no_warning_when_a_compatible_server_serves_the_id() -> None:
    result = run_cli("generate", "otter", "-m", "dall-e-3", "--dry-run", "--api-base", "http://127.0.0.1:9/v1")
    assert result.code == 0 and "warning:" not in result.stderr and "error:" not in result.stderr
    assert "# note: openai/dall-e-3 was retired on" in result.stdout


def test_placeholder_dry_run_says_nothing_is_sent() -> None:
    result = run_cli("generate", "otter", "-m", "placeholder", "--dry-run")
    assert "nothing is sent" in result.stdout
