"""`imggen models check`: each provider's model listing asked for real (keys, SigV4, Google tokens)
against local fakes, compared with the catalog as of an injected date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import OPENAI_KEY, run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakegoogle import GEMINI_KEY
from fakeserver import FakeProvider
from imggen.catalog import ModelInfo, all_models
from imggen.modelcheck import Listed, Listing, compare
from test_google import service_account  # noqa: F401 - a fixture

TODAY = "2026-11-30"
PROVIDERS = ("openai", "azure", "bedrock", "vertex_ai", "gemini")
JSON_KEYS = {"model", "provider", "in_catalog", "available", "provider_lifecycle", "catalog_status", "disagreements"}


def today() -> dt.date:
    return dt.date.fromisoformat(TODAY)


def catalog(provider: str) -> list[ModelInfo]:
    return [m for m in all_models() if m.provider == provider]


def live(provider: str, on: dt.date | None = None) -> list[ModelInfo]:
    return [m for m in catalog(provider) if m.status(on or today()) != "retired"]


def unprefixed(model_id: str) -> str:
    return model_id.split(".", 1)[1] if model_id.startswith(("us.", "eu.", "apac.", "global.")) else model_id


def agreeing(fake: FakeProvider) -> None:
    """Listings that say what the catalog says, plus models that are not image models (filtered out)."""
    fake.openai_models = [_openai_item(m) for m in live("openai")] + [{"id": "gpt-4o", "object": "model"}]
    fake.azure_models = [_azure_item(m) for m in live("azure")] + [{"id": "gpt-4o", "lifecycle_status": "preview"}]
    fake.gemini_models = [{"name": f"models/{m.model_id}"} for m in live("gemini")] + [
        {"name": "models/gemini-2.5-pro"}
    ]
    summaries = {unprefixed(m.model_id): _bedrock_item(m) for m in live("bedrock")}
    fake.bedrock_models = [*summaries.values(), {"modelId": "anthropic.claude-v9", "outputModalities": ["TEXT"]}]
    fake.vertex_models = {
        m.model_id: {"launchStage": "GA", "versionState": "VERSION_STATE_STABLE"} for m in live("vertex_ai")
    }


def _openai_item(m: ModelInfo) -> dict[str, Any]:
    item: dict[str, Any] = {"id": m.model_id, "object": "model", "created": 1700000000, "owned_by": "system"}
    if m.lifecycle.get("retired"):
        item["shutdown_date"] = m.lifecycle["retired"]
    return item


def _azure_item(m: ModelInfo) -> dict[str, Any]:
    item: dict[str, Any] = {"id": m.model_id, "lifecycle_status": "generally-available", "object": "model"}
    if m.lifecycle.get("retired"):
        moment = dt.datetime.fromisoformat(m.lifecycle["retired"]).replace(tzinfo=dt.UTC)
        item["deprecation"] = {"inference": int(moment.timestamp())}
    return item


def _bedrock_item(m: ModelInfo) -> dict[str, Any]:
    lifecycle: dict[str, Any] = {"status": "LEGACY" if m.status(today()) == "deprecated" else "ACTIVE"}
    if m.lifecycle.get("retired"):
        lifecycle["endOfLifeTime"] = m.lifecycle["retired"] + "T00:00:00Z"
    model_id = unprefixed(m.model_id)
    return {"modelArn": f"arn:aws:bedrock:us-west-2::foundation-model/{model_id}", "modelId": model_id,
            "outputModalities": ["IMAGE"], "modelLifecycle": lifecycle}  # fmt: skip


@pytest.fixture
def env(fake: FakeProvider, service_account: Path, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """Credentials for every provider, each pointed at the fake; Vertex through a profile's api_base."""
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    profile = f'[profiles.vertex_ai]\nprovider = "vertex_ai"\napi_base = "{fake.base_url}"\n'
    (config / "config.toml").write_text(profile)
    (config / "config.toml").chmod(0o600)
    return {
        "IMGGEN_TODAY": TODAY,
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.openai_base,
        "AZURE_API_KEY": fake.azure_key, "AZURE_API_BASE": fake.base_url,
        "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_API_BASE": f"{fake.base_url}/v1beta",
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_ENDPOINT_URL_BEDROCK": fake.base_url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(service_account),
    }  # fmt: skip


def check(env: dict[str, str], *args: str, **more: str) -> Any:
    return run_cli("models", "check", *args, env={**env, **more})


def rows(result: Any) -> list[dict[str, Any]]:
    return json.loads(result.stdout)


def no_secret(fake: FakeProvider, text: str) -> None:
    for secret in (OPENAI_KEY, fake.azure_key, GEMINI_KEY, AWS_SECRET, *fake.google_tokens):
        assert secret not in text


def test_all_providers_agree_exit_0(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--json")
    assert result.code == 0, result.stderr
    found = rows(result)
    assert sorted(r["model"] for r in found) == sorted(m.id for p in PROVIDERS for m in catalog(p))
    assert all(r["disagreements"] == [] for r in found)
    assert {r["model"]: r["available"] for r in found} == {
        m.id: m.status(today()) != "retired" for p in PROVIDERS for m in catalog(p)
    }
    assert f"all {len(found)} models agree with the catalog" in result.stderr
    no_secret(fake, result.everything())


def test_json_shape(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--provider", "gemini", "--json")
    assert result.code == 0, result.stderr
    found = rows(result)
    assert found and all(set(r) == JSON_KEYS for r in found)
    first = next(r for r in found if r["available"])
    info = next(m for m in catalog("gemini") if m.id == first["model"])
    assert first == {
        "model": info.id, "provider": "gemini", "in_catalog": True, "available": True,
        "provider_lifecycle": "listed", "catalog_status": info.status(today()), "disagreements": [],
    }  # fmt: skip


def test_disagreements_exit_1_and_say_what_differs(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    active = next(m for m in live("openai") if m.status(today()) == "active")
    fake.openai_models = [i for i in fake.openai_models if i["id"] != active.model_id]
    fake.openai_models.append({"id": "gpt-image-9", "object": "model", "created": 1, "owned_by": "system"})
    retired = [m for m in catalog("openai") if m.status(today()) == "retired"]
    fake.openai_models += [{"id": m.model_id, "object": "model"} for m in retired]
    result = check(env, "--provider", "openai", "--json")
    assert result.code == 1, result.stderr
    said = {r["model"]: r["disagreements"] for r in rows(result)}
    assert said[active.id] == ["in catalog, not listed by OpenAI"]
    assert said["openai/gpt-image-9"] == ["listed by OpenAI, not in the catalog"]
    for m in retired:
        assert said[m.id] == [f"catalog: retired {m.lifecycle['retired']}; OpenAI: listed"]
    assert "disagree with the catalog" in result.stderr


def test_bedrock_legacy_against_an_active_catalog_entry(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    active = next(m for m in live("bedrock") if m.status(today()) == "active")
    for item in fake.bedrock_models:
        if item["modelId"] == unprefixed(active.model_id):
            item["modelLifecycle"] = {"status": "LEGACY", "legacyTime": "2026-11-01T00:00:00Z"}
    result = check(env, "--provider", "bedrock", "--json")
    assert result.code == 1, result.stderr
    said = {r["model"]: r for r in rows(result)}
    assert said[active.id]["disagreements"] == ["catalog: active; Bedrock: LEGACY, legacy since 2026-11-01"]
    assert said[active.id]["provider_lifecycle"] == "LEGACY, legacy since 2026-11-01"
    assert not any(r["model"].endswith("claude-v9") for r in rows(result))  # a text model is not listed


def test_the_injected_date_drives_the_catalog_side(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    ending = next(m for m in catalog("openai") if m.lifecycle.get("retired"))
    fake.openai_models = [{"id": m.model_id, "object": "model"} for m in catalog("openai")]
    retired = dt.date.fromisoformat(ending.lifecycle["retired"])
    before = check(env, "--provider", "openai", "--json", IMGGEN_TODAY=str(retired - dt.timedelta(days=1)))
    after = check(env, "--provider", "openai", "--json", IMGGEN_TODAY=str(retired + dt.timedelta(days=1)))
    said_before = {r["model"]: r for r in rows(before)}[ending.id]
    said_after = {r["model"]: r for r in rows(after)}[ending.id]
    assert said_before["catalog_status"] == "deprecated" and said_before["disagreements"] == []
    assert said_after["catalog_status"] == "retired"
    assert said_after["disagreements"] == [f"catalog: retired {retired}; OpenAI: listed"]


def test_a_rejected_openai_key_is_exit_3(fake: FakeProvider, env: dict[str, str]) -> None:
    result = check(env, "--provider", "openai", OPENAI_API_KEY="sk-wrong-key-000000000000")
    assert result.code == 3, result.stderr
    assert "401" in result.stderr and "sk-wrong-key-000000000000" not in result.everything()


def test_a_rejected_gemini_key_is_exit_3(fake: FakeProvider, env: dict[str, str]) -> None:
    result = check(env, "--provider", "gemini", GEMINI_API_KEY="AIza-not-a-valid-key-123456")
    assert result.code == 3, result.stderr
    assert "API key not valid" in result.stderr


def test_one_rejected_provider_makes_the_whole_check_exit_3(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--json", AZURE_API_KEY="azure-wrong-key-0000000000")
    assert result.code == 3, result.stderr
    assert "Azure" in result.stderr and "401" in result.stderr
    assert {r["provider"] for r in rows(result)} == {"openai", "bedrock", "vertex_ai", "gemini"}


def test_no_credentials_for_the_asked_provider_is_exit_3(fake: FakeProvider) -> None:
    result = run_cli("models", "check", "--provider", "bedrock", env={"IMGGEN_TODAY": TODAY})
    assert result.code == 3
    assert "no credentials configured for Bedrock" in result.stderr
    assert fake.requests == []


def test_no_provider_configured_is_exit_3() -> None:
    result = run_cli("models", "check", env={"IMGGEN_TODAY": TODAY})
    assert result.code == 3 and "no provider has credentials configured" in result.stderr


def test_a_network_failure_is_exit_1(env: dict[str, str]) -> None:
    result = check(env, "--provider", "openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.code == 1
    assert "refused the connection" in result.stderr


def test_dry_run_sends_nothing_and_masks_keys(fake: FakeProvider, env: dict[str, str]) -> None:
    result = check(env, "--dry-run")
    assert result.code == 0, result.stderr
    assert fake.requests == []
    assert f"GET {fake.openai_base}/models" in result.stdout
    assert f"GET {fake.base_url}/openai/models?api-version=2024-10-21" in result.stdout
    assert f"GET {fake.base_url}/v1beta/models?pageSize=1000" in result.stdout
    assert f"GET {fake.base_url}/foundation-models?byOutputModality=IMAGE" in result.stdout
    for m in catalog("vertex_ai"):
        assert f"{fake.base_url}/v1beta1/publishers/google/models/{m.model_id}" in result.stdout
    assert "Authorization: Bearer ****" in result.stdout
    no_secret(fake, result.everything())


def test_dry_run_json_lists_each_request(fake: FakeProvider, env: dict[str, str]) -> None:
    result = check(env, "--dry-run", "--json", "--provider", "gemini")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == [{"provider": "gemini", "method": "GET",
                                          "url": f"{fake.base_url}/v1beta/models?pageSize=1000",
                                          "headers": {"x-goog-api-key": "****5678"}}]  # fmt: skip
    assert fake.requests == []


def test_provider_filter_asks_only_that_provider(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--provider", "azure", "--json")
    assert result.code == 0, result.stderr
    assert {r["provider"] for r in rows(result)} == {"azure"}
    assert [r.path for r in fake.requests] == ["/openai/models"]
    assert fake.requests[0].query == {"api-version": "2024-10-21"}


def test_a_pipe_gets_tab_separated_lines(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--provider", "gemini")
    assert result.code == 0, result.stderr
    fields = [line.split("\t") for line in result.lines]
    assert [f[0] for f in fields] == [m.id for m in catalog("gemini")]
    assert all(len(f) == 6 and f[1] == "gemini" and f[5] == "-" for f in fields)


def test_gemini_pages_are_followed(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    fake.gemini_page_cap = 1
    result = check(env, "--provider", "gemini", "--json")
    assert result.code == 0, result.stderr
    assert len(fake.requests) == len(fake.gemini_models)
    assert [r.query.get("pageToken") for r in fake.requests][:2] == [None, "1"]


def test_bedrock_signs_for_each_catalog_region_unless_one_is_set(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    result = check(env, "--provider", "bedrock")
    assert result.code == 0, result.stderr
    expected = {m.regions[0] for m in catalog("bedrock") if m.regions}
    assert set(fake.signed_regions) == expected and len(fake.signed_regions) == len(expected)
    fake.signed_regions.clear()
    fake.expect_region = "eu-central-1"
    result = check(env, "--provider", "bedrock", AWS_REGION="eu-central-1")
    assert result.code == 0, result.stderr
    assert fake.signed_regions == ["eu-central-1"]


def test_vertex_404_is_not_available(fake: FakeProvider, env: dict[str, str]) -> None:
    agreeing(fake)
    gone = live("vertex_ai")[0]
    del fake.vertex_models[gone.model_id]
    result = check(env, "--provider", "vertex_ai", "--json")
    assert result.code == 1, result.stderr
    said = {r["model"]: r for r in rows(result)}
    assert said[gone.id]["available"] is False
    assert said[gone.id]["disagreements"] == ["in catalog, not listed by Vertex AI"]
    assert len(fake.google_tokens) == 1  # one token for every lookup
    no_secret(fake, result.everything())


# compare() on a catalog of its own: the wording of each disagreement, whatever models.json holds.

A_DAY = dt.date(2026, 11, 30)


def model(model_id: str, **lifecycle: str) -> ModelInfo:
    provider, _ = model_id.split("/", 1)
    return ModelInfo(id=model_id, provider=provider, family="test", lifecycle=lifecycle)


@pytest.mark.parametrize(
    ("info", "listed", "expected"),
    [
        (model("bedrock/a"), Listed("a", "ACTIVE", "active"), ()),
        (model("bedrock/a"), Listed("a", "LEGACY", "legacy"), ("catalog: active; Bedrock: LEGACY",)),
        (model("bedrock/a", retired="2027-01-01"), Listed("a", "ACTIVE", "active"),
         ("catalog: retires 2027-01-01; Bedrock: ACTIVE",)),
        (model("bedrock/a", retired="2027-01-01"),
         Listed("a", "LEGACY, end of life 2027-01-01", "legacy", dt.date(2027, 1, 1)), ()),
        (model("openai/a", retired="2026-10-23"), Listed("a"), ("catalog: retired 2026-10-23; OpenAI: listed",)),
        (model("openai/a", retired="2026-10-23"), None, ()),
        (model("openai/a"), None, ("in catalog, not listed by OpenAI",)),
        (model("openai/a", retired="2026-12-01"),
         Listed("a", "shuts down 2026-12-15", "legacy", dt.date(2026, 12, 15)),
         ("catalog: retires 2026-12-01; OpenAI: shuts down 2026-12-15",)),
        (model("openai/a", deprecated="2026-01-01"), Listed("a"), ()),
    ],
)  # fmt: skip
def test_compare_words_each_disagreement(info: ModelInfo, listed: Listed | None, expected: tuple[str, ...]) -> None:
    listing = Listing(info.provider, {"a": listed} if listed else {})
    [row] = compare([info], [listing], A_DAY)
    assert row.disagreements == expected
    assert row.available is (listed is not None)


def test_compare_adds_listed_models_the_catalog_lacks() -> None:
    listing = Listing("gemini", {"gemini-9-image": Listed("gemini-9-image")})
    [row] = compare([], [listing], A_DAY)
    assert (row.model, row.in_catalog, row.catalog_status) == ("gemini/gemini-9-image", False, None)
    assert row.disagreements == ("listed by Gemini API, not in the catalog",)


def test_an_inference_profile_is_checked_as_its_model() -> None:
    listing = Listing("bedrock", {"amazon.x-v1:0": Listed("amazon.x-v1:0", "ACTIVE", "active")})
    found = compare([model("bedrock/us.amazon.x-v1:0")], [listing], A_DAY)
    assert [(r.model, r.available, r.disagreements) for r in found] == [("bedrock/us.amazon.x-v1:0", True, ())]


def test_a_bad_injected_date_is_exit_3(env: dict[str, str]) -> None:
    result = check(env, "--provider", "openai", IMGGEN_TODAY="30/11/2026")
    assert result.code == 3 and "IMGGEN_TODAY=30/11/2026 is not a date (YYYY-MM-DD)" in result.stderr
