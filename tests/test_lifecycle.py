"""Lifecycles that cannot go stale: statuses computed from dates against an injected today, retired
models refused before anything is sent, families for ids the catalog does not know, a catalog that
says when it was last checked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import OPENAI_KEY, openai_env, run_cli
from fakeserver import FakeProvider
from servehelp import Served, deployment, proxy_config

RETIRING = "openai/gpt-image-1.5"  # the provider shuts it down on 2026-12-01
IMAGES = "/v1/images/generations"


def replacement(model: str) -> str:
    from imggen.catalog import lookup

    info = lookup(model)
    assert info is not None
    return info.lifecycle["replacement"]


def at(day: str, **more: str) -> dict[str, str]:
    return {"IMGGEN_TODAY": day, **more}


@pytest.fixture
def provider_hosts(fake: FakeProvider, tmp_path: Path) -> dict[str, str]:
    """The providers' own hosts (api.openai.com, …) answered by the fake through an HTTPS proxy, so a
    request that should not be sent is seen, not sent out, and one that should reaches "the provider"."""
    ca_file = fake.enable_proxy(tmp_path)
    return {"HTTPS_PROXY": fake.base_url, "SSL_CERT_FILE": str(ca_file), "NO_PROXY": "127.0.0.1"}


def sent(fake: FakeProvider) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/images/generations")]


# --- 4. Status computed from dates


def test_a_retirement_date_makes_a_model_deprecated_the_day_before_and_retired_on_the_day() -> None:
    from imggen.catalog import ModelInfo

    info = ModelInfo(id="openai/x", provider="openai", family="gpt-image", lifecycle={"retired": "2026-12-01"})
    assert info.status(dt.date(2026, 11, 30)) == "deprecated"
    assert info.status(dt.date(2026, 12, 1)) == "retired"
    announced = ModelInfo(id="openai/y", provider="openai", family="gpt-image", lifecycle={"deprecated": "2027-01-01"})
    assert announced.status(dt.date(2026, 12, 31)) == "active"
    assert announced.status(dt.date(2027, 1, 1)) == "deprecated"


def test_status_comes_from_the_dates_alone() -> None:
    from imggen.catalog import ModelInfo

    def status(**lifecycle: str) -> str:
        return ModelInfo(id="a/b", provider="openai", family="f", lifecycle=lifecycle).status(dt.date(2026, 7, 1))

    assert status(status="active", retired="2026-06-30") == "retired"  # a stored status never counts
    assert status(status="retired") == "active"
    assert status(retired="2026-07-02") == "deprecated"  # a shutdown announced for a later day
    assert status(deprecated="2026-07-02") == "active"
    assert status(deprecated="2026-07-01") == "deprecated"
    assert status() == "active"


def test_status_follows_imggen_today(monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen.catalog import lookup, today

    info = lookup(RETIRING)
    assert info is not None
    monkeypatch.setenv("IMGGEN_TODAY", "2026-11-30")
    assert today() == dt.date(2026, 11, 30) and info.status() == "deprecated"
    monkeypatch.setenv("IMGGEN_TODAY", "2026-12-01")
    assert info.status() == "retired"


def test_models_lists_what_today_makes_of_the_dates() -> None:
    before = run_cli("models", "--all", "--provider", "openai", env=at("2026-11-30"))
    after = run_cli("models", "--all", "--provider", "openai", env=at("2026-12-01"))
    row = {line.split("\t")[0]: line.split("\t") for line in before.lines}
    assert row[RETIRING][2] == "retires 2026-12-01"
    row = {line.split("\t")[0]: line.split("\t") for line in after.lines}
    assert row[RETIRING][2] == "retired 2026-12-01"
    assert RETIRING not in run_cli("models", env=at("2026-12-01")).stdout  # retired: only with --all
    assert RETIRING in run_cli("models", env=at("2026-11-30")).stdout
    shown = run_cli("models", "show", RETIRING, "--json", env=at("2026-12-01"))
    assert json.loads(shown.stdout)["status"] == "retired"


def test_a_bad_imggen_today_is_a_configuration_error() -> None:
    result = run_cli("models", env=at("30/11/2026"))
    assert result.code == 3
    assert "IMGGEN_TODAY=30/11/2026 is not a date (YYYY-MM-DD)" in result.stderr


def test_a_deprecated_model_warns_with_its_date_and_replacement() -> None:
    result = run_cli("generate", "otter", "-m", RETIRING, "--dry-run", env=at("2026-11-30"))
    assert result.code == 0, result.stderr
    expected = f"warning: {RETIRING} is deprecated and shuts down on 2026-12-01; use {replacement(RETIRING)} instead"
    assert expected in result.stderr.splitlines()


# --- 5. Retired models


def test_a_retired_model_is_refused_before_anything_is_sent(fake: FakeProvider, provider_hosts: dict[str, str]) -> None:
    env = {**provider_hosts, "OPENAI_API_KEY": OPENAI_KEY, **at("2026-12-01")}
    result = run_cli("generate", "otter", "-m", RETIRING, "-o", "out", env=env)
    assert result.code == 2
    assert f"error: {RETIRING} was retired on 2026-12-01; use {replacement(RETIRING)} instead." in result.stderr
    assert "--allow-retired" in result.stderr
    assert not fake.tunnels and not sent(fake)
    assert not Path("out").exists() or not any(Path("out").iterdir())
    # the day before, the same command is sent, with the deprecation warning
    result = run_cli("generate", "otter", "-m", RETIRING, "-o", "out", env={**env, **at("2026-11-30")})
    assert result.code == 0, result.stderr
    assert "is deprecated and shuts down on 2026-12-01" in result.stderr and len(sent(fake)) == 1


def test_allow_retired_sends_it_to_the_provider_all_the_same(
    fake: FakeProvider, provider_hosts: dict[str, str]
) -> None:
    env = {**provider_hosts, "OPENAI_API_KEY": OPENAI_KEY, **at("2026-12-01")}
    result = run_cli("generate", "otter", "-m", RETIRING, "-o", "out", "--allow-retired", env=env)
    assert result.code == 0, result.stderr
    assert fake.tunnels == ["api.openai.com:443"] and len(sent(fake)) == 1
    assert f"warning: {RETIRING} was retired on 2026-12-01; sending it anyway, as allowed" in result.stderr


def test_a_custom_api_base_gets_the_retired_model_with_a_note(fake: FakeProvider) -> None:
    for how in (["--api-base", fake.openai_base], []):  # the flag, then the environment (OPENAI_BASE_URL)
        fake.requests.clear()
        result = run_cli("generate", "otter", "-m", RETIRING, "-o", "out", *how, env={**openai_env(fake),
                         **at("2026-12-01")})  # fmt: skip
        assert result.code == 0, result.stderr
        assert len(sent(fake)) == 1 and json.loads(sent(fake)[0].body)["model"] == "gpt-image-1.5"
        note = f"note: {RETIRING} was retired on 2026-12-01 by its provider; sending it to the api_base you set"
        assert note in result.stderr and "warning:" not in result.stderr


def test_a_profiles_api_base_counts_as_a_custom_endpoint(fake: FakeProvider) -> None:
    assert run_cli("config", "set", "openai", "api_base", fake.openai_base).code == 0
    result = run_cli("generate", "otter", "-m", RETIRING, "-o", "out", env={"OPENAI_API_KEY": OPENAI_KEY,
                     **at("2026-12-01")})  # fmt: skip
    assert result.code == 0, result.stderr
    assert len(sent(fake)) == 1 and "sending it to the api_base you set" in result.stderr


def test_a_dry_run_prints_the_request_then_the_refusal_and_exits_2() -> None:
    result = run_cli("generate", "otter", "-m", RETIRING, "--dry-run", env=at("2026-12-01"))
    assert result.code == 2
    assert "POST https://api.openai.com/v1/images/generations" in result.stdout
    assert '"model": "gpt-image-1.5"' in result.stdout and "# estimated cost:" in result.stdout
    assert f"error: {RETIRING} was retired on 2026-12-01; use {replacement(RETIRING)} instead." in result.stderr
    as_json = run_cli("generate", "otter", "-m", RETIRING, "--dry-run", "--json", env=at("2026-12-01"))
    assert as_json.code == 2 and as_json.json_lines()[0]["model"] == RETIRING
    allowed = run_cli("generate", "otter", "-m", RETIRING, "--dry-run", "--allow-retired", env=at("2026-12-01"))
    assert allowed.code == 0 and "sending it anyway, as allowed" in allowed.stderr


def test_a_batch_with_one_retired_line_is_refused_whole_before_sending(
    fake: FakeProvider, provider_hosts: dict[str, str], tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [{"prompt": "one", "model": "openai/gpt-image-2"}, {"prompt": "two"}, {"prompt": "three"}]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = {**provider_hosts, "OPENAI_API_KEY": OPENAI_KEY, **at("2026-12-01")}
    result = run_cli("generate", "--prompts-file", str(jobs), "-m", RETIRING, "-o", "out", env=env)
    assert result.code == 2
    assert f"jobs.jsonl line 2: {RETIRING} was retired on 2026-12-01" in result.stderr
    assert not fake.tunnels and not sent(fake)
    dry = run_cli("generate", "--prompts-file", str(jobs), "-m", RETIRING, "--dry-run", "--json", env=env)
    assert dry.code == 2 and [line["model"] for line in dry.json_lines()] == ["openai/gpt-image-2"] + [RETIRING] * 2
    # allowed on the lines that need it, the batch is sent
    lines[1]["allow_retired"] = lines[2]["allow_retired"] = True
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_cli("generate", "--prompts-file", str(jobs), "-m", RETIRING, "-o", "out", env=env)
    assert result.code == 0, result.stderr
    assert len(sent(fake)) == 3


def test_prompts_on_stdin_with_a_retired_model_are_refused_up_front(
    fake: FakeProvider, provider_hosts: dict[str, str]
) -> None:
    env = {**provider_hosts, "OPENAI_API_KEY": OPENAI_KEY, **at("2026-12-01")}
    result = run_cli("generate", "-", "-m", RETIRING, "-o", "out", input=b"one\ntwo\n", env=env)
    assert result.code == 2 and "was retired on 2026-12-01" in result.stderr
    assert not fake.tunnels and not sent(fake)


def test_allow_retired_in_a_jsonl_line_must_be_true_or_false(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "one", "allow_retired": "yes"}\n')
    result = run_cli("generate", "--prompts-file", str(jobs), "--dry-run")
    assert result.code == 2 and "'allow_retired' must be true or false" in result.stderr


def test_the_python_api_refuses_a_retired_model_unless_allowed(
    fake: FakeProvider, provider_hosts: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import imggen
    from imggen.errors import UsageError

    for name, value in {**provider_hosts, **at("2026-12-01")}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        imggen.generate("otter", model=RETIRING, api_key=OPENAI_KEY)
    assert str(caught.value) == (
        f"{RETIRING} was retired on 2026-12-01; use {replacement(RETIRING)} instead. "
        "Nothing was sent. If your provider still serves it, pass allow_retired=True."
    )
    assert not fake.tunnels and not sent(fake)
    response = imggen.generate("otter", model=RETIRING, api_key=OPENAI_KEY, allow_retired=True)
    assert len(response.data) == 1 and len(sent(fake)) == 1
    with pytest.raises(UsageError, match="allow_retired='yes' must be True or False"):
        imggen.generate("otter", model=RETIRING, api_key=OPENAI_KEY, allow_retired="yes")  # type: ignore[arg-type]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def run(config: dict[str, Any], env: dict[str, str]) -> Served:
        started.append(Served(tmp_path, config, env))
        return started[-1]

    yield run
    for one in started:
        one.stop()


def test_the_proxy_starts_with_a_retired_model_and_answers_400_naming_the_replacement(
    fake: FakeProvider, provider_hosts: dict[str, str], served: Any
) -> None:
    config = proxy_config(
        deployment("old", RETIRING, api_key=OPENAI_KEY),
        deployment("old-allowed", RETIRING, api_key=OPENAI_KEY, allow_retired=True),
        deployment("old-elsewhere", RETIRING, api_key=OPENAI_KEY, api_base=fake.openai_base),
    )
    proxy = served(config, {**provider_hosts, **at("2026-12-01")})
    warnings = proxy.stderr()
    assert f"model_list[0] (old): {RETIRING} was retired on 2026-12-01; use {replacement(RETIRING)} instead" in warnings
    assert "answered 400 unless litellm_params.allow_retired is true" in warnings
    assert "model_list[1] (old-allowed)" in warnings and "allow_retired' is not used" not in warnings
    refused = proxy.post({"model": "old", "prompt": "otter"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "model_retired"
    assert replacement(RETIRING) in error["message"] and "allow_retired: true" in error["message"]
    assert not fake.tunnels and not sent(fake)
    assert proxy.post({"model": "old-allowed", "prompt": "otter"}).status_code == 200
    assert fake.tunnels == ["api.openai.com:443"]
    assert proxy.post({"model": "old-elsewhere", "prompt": "otter"}).status_code == 200
    assert len(sent(fake)) == 2
    # a client cannot allow it itself
    assert proxy.post({"model": "old", "prompt": "otter", "allow_retired": True}).status_code == 400
    assert len(sent(fake)) == 2


def test_models_default_refuses_a_retired_model() -> None:
    result = run_cli("models", "default", RETIRING, env=at("2026-12-01"))
    assert result.code == 2 and f"{RETIRING} is retired" in result.stderr
    assert run_cli("models", "default", RETIRING, env=at("2026-11-30")).code == 0


# --- 6. Families


def test_an_unknown_id_of_a_known_family_gets_its_rules_with_a_note() -> None:
    result = run_cli("generate", "otter", "-m", "openai/gpt-image-3", "-q", "high", "--dry-run")
    assert result.code == 0, result.stderr
    note = "openai/gpt-image-3 is not in imggen's catalog; using the rules of openai/gpt-image-2 (family gpt-image-*)"
    assert f"# note: {note}" in result.stdout
    assert '"quality": "high"' in result.stdout and "warning:" not in result.stderr
    assert "# estimated cost: unknown" in result.stdout
    wrong = run_cli("generate", "otter", "-m", "openai/gpt-image-3", "-q", "ultra", "--dry-run")
    assert wrong.code == 2 and "openai/gpt-image-3 does not take -q 'ultra'" in wrong.stderr


def test_a_family_note_is_said_on_stderr_when_sending(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-3", "-o", "out", env=openai_env(fake))
    assert result.code == 0, result.stderr
    assert "note: openai/gpt-image-3 is not in imggen's catalog; using the rules of openai/gpt-image-2" in result.stderr
    assert json.loads(sent(fake)[0].body)["model"] == "gpt-image-3"


@pytest.mark.parametrize(
    ("model", "like"),
    [
        ("gemini/gemini-4-flash-image", "family gemini-*-image*"),
        ("vertex_ai/gemini-4-pro-image-preview", "family gemini-*-image*"),
        ("bedrock/stability.sd4-large-v1:0", "family stability.*"),
    ],
)
def test_every_provider_family_gives_its_rules(model: str, like: str) -> None:
    from imggen.catalog import family_of, lookup, parse_model

    ref = parse_model(model)
    assert ref.info is not None and ref.info.id == model and ref.info.price is None and not ref.info.lifecycle
    entry = family_of(ref.provider, ref.model_id)
    assert entry is not None and f"family {entry['pattern']}" == like
    like_info = lookup(entry["like"])
    assert like_info is not None and ref.info.sizes == like_info.sizes and ref.info.fields == like_info.fields


def test_every_family_points_at_a_catalog_model_of_its_provider() -> None:
    from imggen.catalog import families, lookup

    assert families()
    for entry in families():
        info = lookup(entry["like"])
        assert info is not None and info.provider == entry["provider"], entry


def test_an_id_in_no_family_keeps_the_unknown_id_warning() -> None:
    result = run_cli("generate", "otter", "-m", "openai/dall-e-4", "--dry-run")
    assert result.code == 0
    assert "openai/dall-e-4 is not in imggen's catalog; nearest known:" in result.stderr
    assert "family" not in result.everything()


def test_max_cost_refuses_a_model_whose_cost_is_unknown(fake: FakeProvider) -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-3", "-o", "out", "--max-cost", "5", env=openai_env(fake))
    assert result.code == 2
    assert "error: the cost of openai/gpt-image-3 is unknown; --max-cost cannot bound it." in result.stderr
    assert not sent(fake)
    assert run_cli("generate", "otter", "-m", "gpt-image-3", "-o", "out", env=openai_env(fake)).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "gpt-image-3", "--max-cost", "5"], "the cost of openai/gpt-image-3 is unknown"),
        (["-m", "gpt-image-2", "-q", "high", "-n", "10", "--max-cost", "0.5"], "is above --max-cost $0.5"),
    ],
)
def test_a_dry_run_prints_the_requests_then_the_max_cost_refusal(args: list[str], message: str) -> None:
    result = run_cli("generate", "otter", "--dry-run", *args)
    assert result.code == 2
    assert "POST https://api.openai.com/v1/images/generations" in result.stdout
    assert message in result.stderr


def test_models_show_says_where_each_fact_comes_from() -> None:
    result = run_cli("models", "show", "vertex_ai/gemini-3-pro-image")
    assert result.code == 0, result.stderr
    assert "location:          global" in result.stdout
    assert "\nsources:\n  rules:" in result.stdout and "\n  price:" in result.stdout
    shown = json.loads(run_cli("models", "show", "vertex_ai/gemini-3-pro-image", "--json").stdout)
    assert shown["location"] == "global" and set(shown["sources"]) == {"rules", "price", "edit"}


def test_models_show_of_a_family_id_names_the_rules_it_gets() -> None:
    result = run_cli("models", "show", "openai/gpt-image-3")
    assert result.code == 2
    assert "generate gives it the rules of openai/gpt-image-2 (family gpt-image-*)" in result.stderr


# --- 7. A catalog that says when it was last checked


def test_a_stale_catalog_says_so_once_in_models() -> None:
    from imggen.catalog import STALE_AFTER_DAYS, checked

    last = checked()
    assert last is not None
    late = (last + dt.timedelta(days=STALE_AFTER_DAYS + 1)).isoformat()
    for args in (["models"], ["models", "--json"], ["models", "show", "openai/gpt-image-2"]):
        result = run_cli(*args, env=at(late))
        assert result.code == 0, result.stderr
        expected = (
            f"warning: the catalog was last checked on {last} ({STALE_AFTER_DAYS + 1} days ago); "
            "run `imggen models check` to compare it with your providers"
        )
        assert result.stderr.splitlines().count(expected) == 1, result.stderr
    on_time = (last + dt.timedelta(days=STALE_AFTER_DAYS)).isoformat()
    assert "last checked" not in run_cli("models", env=at(on_time)).stderr


def test_the_stale_warning_on_2027_04_01() -> None:
    from imggen.catalog import checked

    if checked() != dt.date(2026, 11, 30):
        pytest.skip("the catalog was checked again")
    result = run_cli("models", env=at("2027-04-01"))
    assert (
        "warning: the catalog was last checked on 2026-11-30 (122 days ago); "
        "run `imggen models check` to compare it with your providers"
    ) in result.stderr
