"""The catalog's `batch` field: which models a provider batch service takes and at what price,
checked as the loader checks it (built-in entries and the user's overlay), the batch estimate, and
`imggen models --batch`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from imggen import catalog
from imggen.catalog import all_models, batch_cost, batch_problem, batch_services, estimate_cost, lookup

CATALOG = json.loads((Path(catalog.__file__).parent / "models.json").read_text(encoding="utf-8"))


def test_every_built_in_batch_field_is_valid_and_sourced() -> None:
    entries = [e for e in CATALOG["models"] if "batch" in e]
    assert entries
    for entry in entries:
        assert batch_problem(entry["batch"], entry["provider"]) is None, entry["id"]
        assert entry["batch"].get("source"), f"{entry['id']}: batch without a source"


def test_which_models_the_batch_services_take() -> None:
    taken = {m.id for m in all_models() if m.batch}
    # OpenAI's Batch API (/v1/images/generations): the GPT image models, not dall-e.
    assert "openai/gpt-image-2" in taken and "openai/gpt-image-1.5" in taken
    assert "openai/dall-e-3" not in taken
    # The Gemini API's batch mode: its Gemini image models, not Imagen. Vertex AI batch prediction: the
    # image model Google's list names (Nano Banana 2.1). No Bedrock (lists no image model) or Azure entry.
    assert {m.provider for m in all_models() if m.batch} == {"openai", "gemini", "vertex_ai"}
    assert {m.id for m in all_models() if m.provider == "vertex_ai" and m.batch} == {"vertex_ai/gemini-nano-banana-2.1"}
    assert not any(m.family == "imagen" for m in all_models() if m.batch)
    assert batch_services(lookup("openai/gpt-image-2")) == ("openai",)
    assert batch_services(lookup("gemini/gemini-3.1-flash-image")) == ("gemini",)
    assert batch_services(lookup("vertex_ai/gemini-nano-banana-2.1")) == ("vertex_ai",)
    assert batch_services(lookup("vertex_ai/gemini-3-pro-image")) == ()
    assert batch_services(lookup("bedrock/amazon.nova-canvas-v1:0")) == ()
    assert batch_services(None) == ()


def test_batch_cost_is_the_discounted_estimate_or_the_batch_price() -> None:
    info = lookup("openai/gpt-image-2")
    full = estimate_cost(info, 4, "1024x1024", "high")
    assert full is not None and batch_cost(info, 4, "1024x1024", "high") == pytest.approx(full / 2)
    gemini = lookup("gemini/gemini-3.1-flash-image")
    interactive = estimate_cost(gemini, 2, None, None)
    assert interactive is not None and batch_cost(gemini, 2, None, None) == pytest.approx(interactive / 2)
    assert batch_cost(lookup("bedrock/amazon.nova-canvas-v1:0"), 1, None, None) is None
    assert batch_cost(None, 1, None, None) is None
    assert info is not None
    priced = dataclasses.replace(info, batch={"services": ["openai"], "price": {"high": {"1024x1024": 0.02}}})
    assert batch_cost(priced, 3, "1024x1024", "high") == pytest.approx(0.06)
    assert batch_cost(priced, 3, "1536x1024", "high") is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ([0.5], "must be a table"),
        ({"discount": 0.5}, "batch.services"),
        ({"discount": 0.5, "services": []}, "batch.services"),
        ({"discount": 0.5, "services": ["gemini"]}, "only the entry's provider (openai)"),
        ({"services": ["openai"]}, "exactly one"),
        ({"services": ["openai"], "discount": 0.5, "price": 0.01}, "exactly one"),
        ({"services": ["openai"], "discount": 0}, "above 0"),
        ({"services": ["openai"], "discount": 1.5}, "above 0"),
        ({"services": ["openai"], "discount": True}, "above 0"),
        ({"services": ["openai"], "price": -1}, "batch.price"),
        ({"services": ["openai"], "price": {"high": {"1024x1024": "x"}}}, "batch.price"),
        ({"services": ["openai"], "discount": 0.5, "window": "24h"}, 'unknown key "batch.window"'),
    ],
)
def test_bad_batch_fields_are_refused(value: Any, said: str) -> None:
    problem = batch_problem(value, "openai")
    assert problem is not None and said in problem


def test_an_overlay_may_give_a_batch_field_and_a_bad_one_is_exit_3(isolated: Path) -> None:
    config = isolated / "config"
    config.mkdir()
    good = {"id": "openai/gpt-image-2", "batch": {"services": ["openai"], "discount": 0.25}}
    (config / "models.json").write_text(json.dumps({"models": [good]}))
    listed = run_cli("models", "--batch", "--json")
    assert listed.code == 0, listed.stderr
    row = next(m for m in json.loads(listed.stdout) if m["id"] == "openai/gpt-image-2")
    assert row["batch"]["discount"] == 0.25
    bad = {"id": "openai/gpt-image-2", "batch": {"services": ["gemini"], "discount": 0.5}}
    (config / "models.json").write_text(json.dumps({"models": [bad]}))
    refused = run_cli("models", "--batch")
    assert refused.code == 3 and "batch.services" in refused.stderr


def test_models_batch_lists_only_the_models_a_batch_service_takes() -> None:
    result = run_cli("models", "--batch", "--json")
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(row["batch"] and row["batch"]["services"] for row in rows)
    ids = {row["id"] for row in rows}
    assert "openai/gpt-image-2" in ids and "gemini/gemini-2.5-flash-image" in ids
    assert "vertex_ai/gemini-nano-banana-2.1" in ids and "vertex_ai/gemini-3-pro-image" not in ids
    assert not any(i.startswith(("bedrock/", "vertex_ai/imagen", "recraft/", "gemini/imagen")) for i in ids)
    plain = run_cli("models", "--batch", "--provider", "openai")
    lines = [line.split("\t")[0] for line in plain.stdout.splitlines()]
    assert lines and all(line.startswith(("openai/gpt-image-", "openai/chatgpt-image-")) for line in lines)
    assert "--batch" in run_cli("models", "--help").stdout
