"""The user's overlay: models.json / models.toml in the config directory adds models and changes facts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import OPENAI_KEY, openai_env, run_cli
from fakeserver import FakeProvider
from servehelp import MASTER_KEY, Served, deployment, proxy_config
from test_completions import _complete

TODAY = {"IMGGEN_TODAY": "2026-11-30"}


@pytest.fixture
def config(isolated: Path) -> Iterator[Path]:
    from imggen.catalog import reload

    directory = isolated / "config"
    directory.mkdir()
    reload()
    yield directory
    reload()  # what this test's overlay added must not reach the next test in this process


def write(directory: Path, *entries: dict[str, Any]) -> Path:
    path = directory / "models.json"
    path.write_text(json.dumps({"models": list(entries)}))
    return path


def test_an_added_model_is_planned_with_its_sizes_and_price(config: Path) -> None:
    write(config, {"id": "openai/gpt-image-2-2026-12-01", "like": "openai/gpt-image-2",
                   "sizes": ["1024x1024", "2048x2048"], "size_rule": None, "price": {"per_image": 0.07}})  # fmt: skip
    result = run_cli("generate", "an otter", "-m", "gpt-image-2-2026-12-01", "--size", "2048x2048", "-n", "2",
                     "--dry-run")  # fmt: skip
    assert result.code == 0, result.stderr
    assert '"model": "gpt-image-2-2026-12-01"' in result.stdout and '"size": "2048x2048"' in result.stdout
    assert "# estimated cost: $0.1400 for 2 images" in result.stdout
    assert "not in imggen's catalog" not in result.stderr
    refused = run_cli("generate", "an otter", "-m", "gpt-image-2-2026-12-01", "--size", "1536x1024", "--dry-run")
    assert refused.code == 2 and "2048x2048" in refused.stderr  # its own sizes, not gpt-image-2's


def test_an_overridden_price_drives_the_estimate_max_cost_and_the_recorded_cost(
    config: Path, fake: FakeProvider
) -> None:
    write(config, {"id": "gpt-image-2", "price": {"per_image": 0.5}})
    dry = run_cli("generate", "an otter", "-m", "gpt-image-2", "-n", "2", "--dry-run")
    assert "# estimated cost: $1.0000 for 2 images" in dry.stdout
    refused = run_cli("generate", "an otter", "-m", "gpt-image-2", "-n", "2", "--max-cost", "0.9", env=openai_env(fake))
    assert refused.code == 2 and "$1.0000 is above --max-cost" in refused.stderr and not fake.requests
    done = run_cli("generate", "an otter", "-m", "gpt-image-2", "--json", "-o", "out", env=openai_env(fake))
    assert done.code == 0, done.stderr
    assert done.json_lines()[0]["cost_usd"] == 0.5  # the price replaces the catalog's token rates whole


def test_a_lifecycle_override_shows_in_models_show_as_from_the_overlay(config: Path) -> None:
    path = write(config, {"id": "openai/gpt-image-2", "lifecycle": {"retired": "2099-01-31"}})
    shown = run_cli("models", "show", "gpt-image-2", env=TODAY)
    assert "status:            deprecated" in shown.stdout  # a retirement date ahead: deprecated until then
    assert f"overlay:           lifecycle (from {path})" in shown.stdout
    data = json.loads(run_cli("models", "show", "gpt-image-2", "--json", env=TODAY).stdout)
    assert data["lifecycle"]["retired"] == "2099-01-31" and data["overlay"] == ["lifecycle"]
    assert data["overlay_file"] == str(path) and data["overlay_added"] is False
    write(config, {"id": "openai/gpt-image-2", "lifecycle": {"retired": "2026-06-01", "replacement": "openai/x"}})
    retired = run_cli("generate", "an otter", "-m", "gpt-image-2", "--dry-run", env=TODAY)
    assert json.loads(run_cli("models", "show", "gpt-image-2", "--json", env=TODAY).stdout)["status"] == "retired"
    assert "retired" in retired.stderr


def test_the_list_marks_what_the_overlay_added_and_changed(config: Path) -> None:
    path = write(config, {"id": "openai/gpt-image-2-2026-12-01", "like": "gpt-image-2"},
                 {"id": "gpt-image-2", "price": {"per_image": 0.3}})  # fmt: skip
    listed = run_cli("models", "--provider", "openai", env=TODAY)
    assert "openai/gpt-image-2-2026-12-01\topenai\tactive\t" in listed.stdout
    assert "openai/gpt-image-2\topenai\tactive\t$0.300\t" in listed.stdout
    assert f"from your overlay {path}: added openai/gpt-image-2-2026-12-01; changed openai/gpt-image-2" in listed.stderr
    assert "openai/gpt-image-2-2026-12-01" in _complete("bash", "imggen generate -m openai/gpt-image-2-")
    rows = {m["id"]: m for m in json.loads(run_cli("models", "--json", env=TODAY).stdout)}
    assert rows["openai/gpt-image-2-2026-12-01"]["overlay_added"] is True
    assert rows["openai/gpt-image-2-2026-12-01"]["overlay_like"] == "openai/gpt-image-2"
    assert rows["openai/gpt-image-2"]["overlay"] == ["price"] and rows["gemini/gemini-2.5-flash-image"]["overlay"] == []


def test_like_takes_the_rules_not_the_lifecycle_and_follows_the_catalog() -> None:
    from imggen.overlay import merge

    builtin = [{"id": "openai/gpt-image-1.5", "provider": "openai", "family": "gpt-image", "bare": True,
                "sizes": ["1024x1024"], "lifecycle": {"retired": "2026-12-01"}, "notes": "old"}]  # fmt: skip
    merged = merge(builtin, [{"id": "azure/my-deployment", "like": "gpt-image-1.5", "max_n": 2}], Path("m.json"))
    assert merged[1] == {"family": "gpt-image", "sizes": ["1024x1024"], "id": "azure/my-deployment",
                         "provider": "azure", "like": "openai/gpt-image-1.5", "max_n": 2}  # fmt: skip


def test_lifecycle_merges_one_key_deep_and_null_removes_a_key() -> None:
    from imggen.overlay import merge

    builtin = [{"id": "openai/gpt-image-2", "provider": "openai", "family": "gpt-image",
                "lifecycle": {"deprecated": "2026-10-01", "replacement": "openai/x", "source": "docs"}}]  # fmt: skip
    merged = merge(builtin, [{"id": "gpt-image-2", "lifecycle": {"retired": "2027-01-01", "deprecated": None}}],
                    Path("m.json"))  # fmt: skip
    assert merged[0]["lifecycle"] == {"replacement": "openai/x", "source": "docs", "retired": "2027-01-01"}


BAD = [
    ('{"models": [ {"id": "openai/x",} ]}', "is not valid JSON: Expecting property name enclosed in double quotes "
                                            "(line 1 column 32)"),
    ('{"model": []}', 'must hold one key, "models"'),
    ('{"models": [{"id": "openai/x", "like": "gpt-image-2", "sizez": []}]}',
     'models[0] (openai/x): unknown key "sizez"; did you mean sizes?'),
    ('{"models": [{"id": "gpt-image-2"}, {"id": "openai/x", "like": "gpt-image-2", "sizes": ["1024"]}]}',
     'models[1] (openai/x): "sizes" must be a list of sizes WxH ("1024x1024") or "auto"; "1024" is not one'),
    ('{"models": [{"id": "openai/x", "like": "gpt-image-2", "price": {"per_image": "cheap"}}]}',
     'models[0] (openai/x): "price.per_image" must be a number (0 or more) or a table of them, not "cheap"'),
    ('{"models": [{"id": "gpt-image-2", "lifecycle": {"retired": "2027-1-1"}}]}',
     'models[0] (gpt-image-2): "lifecycle.retired" must be a date YYYY-MM-DD, not "2027-1-1"'),
    ('{"models": [{"id": "opnai/x", "like": "gpt-image-2"}]}',
     "models[0] (opnai/x): unknown provider prefix 'opnai/' in 'opnai/x'; did you mean openai/?"),
    ('{"models": [{"id": "openai/x", "like": "gpt-image-2"}, {"id": "openai/x", "max_n": 2}]}',
     "models[1] (openai/x): the same id as models[0]"),
    ('{"models": [{"id": "openai/x"}]}', 'models[0] (openai/x): a new model needs "like"'),
    ('{"models": [{"id": "openai/x", "like": "gpt-image-2", "from_family": {}}]}',
     'models[0] (openai/x): unknown key "from_family"'),
    ('{"models": [{"id": "openai/x", "like": "gpt-image-7"}]}',
     'models[0] (openai/x): "like" "gpt-image-7" is not in the built-in catalog; did you mean openai/gpt-image-2?'),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), BAD)
def test_a_bad_overlay_is_exit_3_naming_the_file_and_the_entry(config: Path, text: str, said: str) -> None:
    (config / "models.json").write_text(text)
    for args in (["models"], ["models", "show", "gpt-image-2"], ["generate", "x", "-m", "placeholder", "--dry-run"]):
        result = run_cli(*args)
        assert result.code == 3, (args, result.stderr)
        assert result.stderr.startswith(f"error: {config / 'models.json'}") and said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert _complete("bash", "imggen generate -m gpt") in ([], [""])  # completion stays quiet: no traceback at a <TAB>


def test_both_files_is_exit_3_saying_to_keep_one(config: Path) -> None:
    write(config)
    (config / "models.toml").write_text("models = []\n")
    result = run_cli("models")
    assert result.code == 3 and "models.toml exist" in result.stderr and "Keep one of them" in result.stderr


def test_a_toml_overlay_works_and_a_bad_one_names_the_line(config: Path) -> None:
    path = config / "models.toml"
    path.write_text(
        '# mine\n[[models]]\nid = "openai/gpt-image-2-2026-12-01"\nlike = "openai/gpt-image-2"\n\n'
        "[models.price]\nper_image = 0.07\n\n"
        '[[models]]\nid = "openai/gpt-image-2"\nlifecycle = { retired = 2027-01-31 }\n'
    )
    shown = json.loads(run_cli("models", "show", "openai/gpt-image-2-2026-12-01", "--json").stdout)
    assert shown["price"] == {"per_image": 0.07} and shown["overlay_file"] == str(path)
    assert json.loads(run_cli("models", "show", "gpt-image-2", "--json").stdout)["lifecycle"]["retired"] == "2027-01-31"
    path.write_text('[[models]]\nid = "openai/x"\nsizes = [1024x1024]\n')
    result = run_cli("models")
    assert result.code == 3 and f"{path} is not valid TOML" in result.stderr and "line" in result.stderr


def test_models_add_like_round_trip(config: Path) -> None:
    added = run_cli("models", "add", "openai/gpt-image-2-2026-12-01", "--like", "gpt-image-2", "--price", "0.05")
    assert added.code == 0, added.stderr
    path = config / "models.json"
    assert json.loads(path.read_text()) == {
        "models": [{"id": "openai/gpt-image-2-2026-12-01", "like": "openai/gpt-image-2", "price": {"per_image": 0.05}}]
    }
    assert run_cli("models", "add", "gpt-image-2-2026-12-01", "--retired", "2027-06-30").code == 0  # edits it
    assert run_cli("models", "add", "gpt-image-2", "--replacement", "gpt-image-2-2026-12-01").code == 0
    shown = json.loads(run_cli("models", "show", "gpt-image-2-2026-12-01", "--json", env=TODAY).stdout)
    assert shown["price"] == {"per_image": 0.05} and shown["lifecycle"] == {"retired": "2027-06-30"}
    assert shown["status"] == "deprecated" and shown["overlay"] == ["like", "price", "lifecycle"]
    assert shown["sizes"] == json.loads(run_cli("models", "show", "gpt-image-2", "--json").stdout)["sizes"]
    replaced = json.loads(run_cli("models", "show", "gpt-image-2", "--json").stdout)["lifecycle"]["replacement"]
    assert replaced == "openai/gpt-image-2-2026-12-01"
    assert run_cli("models", "remove", "gpt-image-2-2026-12-01").code == 0
    assert [m["id"] for m in json.loads(path.read_text())["models"]] == ["openai/gpt-image-2"]
    assert run_cli("models", "show", "openai/gpt-image-2-2026-12-01").code == 2
    assert not list(config.glob(".models-*"))  # the temporary file was renamed over, not left behind


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["gpt-image-9"], "nothing to add"),
        (["gpt-image-9", "--price", "1"], "openai/gpt-image-9 is not in the catalog. Give --like MODEL"),
        (["gpt-image-9", "--like", "gpt-image-2", "--retired", "2027-13-01"], "--retired must be a date YYYY-MM-DD"),
        (["gpt-image-9", "--like", "gpt-image-7"], '--like "gpt-image-7" is not in the built-in catalog'),
        (["gpt-image-9", "--like", "gpt-image-2", "--price", "-1"], "--price -1 is below 0"),
    ],
)
def test_models_add_refuses_a_bad_entry_and_writes_nothing(config: Path, args: list[str], said: str) -> None:
    result = run_cli("models", "add", *args)
    assert result.code == 2 and said in result.stderr, result.stderr
    assert not (config / "models.json").exists()


def test_models_add_appends_to_a_toml_overlay_but_does_not_rewrite_it(config: Path) -> None:
    path = config / "models.toml"
    path.write_text('# mine\n[[models]]\nid = "openai/gpt-image-2"\nprice = { per_image = 0.3 }\n')
    assert run_cli("models", "add", "openai/gpt-image-2-2026-12-01", "--like", "gpt-image-2").code == 0
    assert path.read_text().startswith("# mine\n") and not (config / "models.json").exists()
    assert json.loads(run_cli("models", "show", "gpt-image-2-2026-12-01", "--json").stdout)["overlay_added"] is True
    again = run_cli("models", "add", "gpt-image-2", "--price", "0.2")
    assert again.code == 3 and "does not rewrite a TOML overlay" in again.stderr


def test_the_proxy_serves_an_added_model_with_its_price(config: Path, fake: FakeProvider, tmp_path: Path) -> None:
    write(config, {"id": "openai/gpt-image-2-2026-12-01", "like": "gpt-image-2", "price": {"per_image": 0.07}})
    mine = deployment("mine", "openai/gpt-image-2-2026-12-01", api_base=fake.openai_base, api_key=OPENAI_KEY)
    served = Served(tmp_path, proxy_config(mine))
    try:
        answer = httpx.post(served.base + "/v1/images/generations", json={"model": "mine", "prompt": "an otter"},
                            headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert float(answer.headers["x-litellm-response-cost"]) == pytest.approx(0.07)
    finally:
        served.stop()


def test_a_bad_overlay_stops_the_proxy_at_start(config: Path, tmp_path: Path) -> None:
    (config / "models.json").write_text('{"models": [{"id": "openai/x"}]}')
    proxy = tmp_path / "proxy.yaml"
    proxy.write_text("model_list:\n  - model_name: d\n    litellm_params:\n      model: openai/gpt-image-2\n")
    result = run_cli("serve", "--config", str(proxy), "--port", "1", timeout=30)
    assert result.code == 3 and result.stderr.startswith(f"error: {config / 'models.json'}: models[0] (openai/x): ")


def test_the_example_in_imggen_help_overlay_loads(config: Path) -> None:
    from imggen.commands.helptext import OVERLAY

    example = OVERLAY[OVERLAY.index('{"models"') : OVERLAY.index("]}") + 2]
    (config / "models.json").write_text(example)
    listed = run_cli("models", "--json")
    assert listed.code == 0, listed.stderr
    rows = {m["id"]: m for m in json.loads(listed.stdout)}
    assert rows["azure/my-deployment"]["overlay_like"] == "azure/gpt-image-2"
    assert rows["gemini/gemini-3.1-flash-image"]["overlay"] == ["image_sizes", "price"]
