"""The catalog's facts as of its `checked` date: lifecycles by date, sources on every entry, current models,
and the size and price rules issue 12 corrected. Dates are injected (IMGGEN_TODAY), never read from the clock."""

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import run_cli
from imggen import catalog, sizes
from imggen.catalog import all_models, estimate_cost, lookup, price_range
from imggen.errors import ConfigError, UsageError

CATALOG = json.loads((Path(catalog.__file__).parent / "models.json").read_text(encoding="utf-8"))
CHECKED = dt.date.fromisoformat(CATALOG["checked"])


def model(full_id: str) -> catalog.ModelInfo:
    info = lookup(full_id)
    assert info is not None, full_id
    return info


def test_the_catalog_says_when_it_was_checked() -> None:
    assert CATALOG["checked"] == "2026-11-30"


def test_lifecycles_hold_dates_and_facts_never_a_stored_status() -> None:
    for entry in CATALOG["models"]:
        life = entry["lifecycle"]
        assert "status" not in life, entry["id"]
        assert set(life) <= {"deprecated", "retired", "replacement", "source"}, entry["id"]
        for key in ("deprecated", "retired"):
            if key in life:
                dt.date.fromisoformat(life[key])
        if entry["provider"] != "placeholder":
            assert life.get("source"), f"{entry['id']}: lifecycle without a source"


def test_every_entry_says_where_its_rules_and_price_come_from() -> None:
    for entry in CATALOG["models"]:
        assert entry["sources"].get("rules") and entry["sources"].get("price"), entry["id"]


def test_replacements_are_models_active_on_the_checked_date() -> None:
    for info in all_models():
        replacement = info.lifecycle.get("replacement")
        if replacement:
            target = lookup(replacement)
            assert target is not None, f"{info.id} -> {replacement}"
            assert target.status(CHECKED) == "active", f"{info.id} -> {replacement} is {target.status(CHECKED)}"


@pytest.mark.parametrize(
    ("model_id", "day", "status"),
    [
        ("openai/gpt-image-1", "2026-10-22", "deprecated"),
        ("openai/gpt-image-1", "2026-10-23", "retired"),
        ("openai/gpt-image-1-mini", "2026-11-30", "deprecated"),
        ("openai/gpt-image-1-mini", "2026-12-01", "retired"),
        ("openai/chatgpt-image-latest", "2026-05-01", "deprecated"),  # a shutdown day ahead is a deprecation
        ("azure/dall-e-3", "2026-02-18", "retired"),
        ("bedrock/amazon.nova-canvas-v1:0", "2026-09-30", "retired"),
        ("bedrock/amazon.titan-image-generator-v2:0", "2026-06-29", "deprecated"),
        ("vertex_ai/imagen-4.0-generate-001", "2026-08-16", "deprecated"),
        ("vertex_ai/imagen-4.0-generate-001", "2026-08-17", "retired"),
        ("gemini/gemini-3-pro-image-preview", "2026-06-25", "retired"),
        ("vertex_ai/gemini-3.1-flash-image-preview", "2026-07-16", "deprecated"),
        ("vertex_ai/gemini-3.1-flash-image-preview", "2026-07-17", "retired"),
        ("openai/gpt-image-2.5-sunburst", "2026-11-30", "active"),
    ],
)
def test_status_is_computed_from_the_dates(model_id: str, day: str, status: str) -> None:
    assert model(model_id).status(dt.date.fromisoformat(day)) == status


def test_status_follows_the_injected_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_TODAY", "2026-11-30")
    assert catalog.today() == dt.date(2026, 11, 30)
    assert model("openai/gpt-image-1.5").status() == "deprecated"
    monkeypatch.setenv("IMGGEN_TODAY", "2026-12-01")
    assert model("openai/gpt-image-1.5").status() == "retired"


def test_a_bad_injected_date_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_TODAY", "tomorrow")
    with pytest.raises(ConfigError) as err:
        catalog.today()
    assert str(err.value).startswith("IMGGEN_TODAY=tomorrow is not a date (YYYY-MM-DD)")


def test_the_current_models_are_in_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGGEN_TODAY", "2026-11-30")
    current = [
        "openai/gpt-image-2",
        "openai/gpt-image-2.5-sunburst",
        "openai/gpt-image-2.5-flare",
        "openai/gpt-image-2.5-sunburst-2026-09-08",
        "openai/gpt-image-2.5-flare-2026-09-08",
        "openai/gpt-image-2.6-sunburst",
        "openai/gpt-image-2.6-flare",
        "azure/gpt-image-2",
        "bedrock/stability.sd3-5-large-v1:0",
        "bedrock/stability.stable-image-core-v1:1",
        "bedrock/stability.stable-image-ultra-v1:1",
    ] + [
        f"{p}/{m}"
        for p in ("vertex_ai", "gemini")
        for m in (
            "gemini-3-pro-image",
            "gemini-3.1-flash-image",
            "gemini-3.1-flash-lite-image",
            "gemini-nano-banana-2.1",
        )
    ]
    for model_id in current:
        assert model(model_id).status() == "active", model_id
    for bare in ("gpt-image-2.5-flare", "gpt-image-2.6-sunburst", "gpt-image-2.5-sunburst-2026-09-08"):
        ref = catalog.parse_model(bare)
        assert (ref.provider, ref.model_id) == ("openai", bare)


def test_the_new_gpt_image_qualities() -> None:
    assert {"xhigh", "max"} <= set(model("openai/gpt-image-2.5-flare").qualities)
    assert "xhigh" not in model("openai/gpt-image-2").qualities


def test_vertex_gemini_3_image_models_default_to_the_global_location() -> None:
    for info in all_models():
        if info.provider == "vertex_ai" and info.model_id.startswith(("gemini-3", "gemini-nano-banana")):
            assert info.location == "global", info.id
    assert model("vertex_ai/gemini-2.5-flash-image").location is None


# -- gpt-image-2: the pixel floor and the per-image price table -----------------------------------------


def test_gpt_image_2_refuses_a_size_below_its_pixel_floor() -> None:
    with pytest.raises(UsageError) as err:
        sizes.choose(model("openai/gpt-image-2"), "768x768", None)
    assert "589,824 pixels" in str(err.value) and "at least 655,360" in str(err.value)
    assert sizes.choose(model("openai/gpt-image-2"), "1024x640", None).size == "1024x640"  # exactly the floor


def test_the_cli_refuses_768x768_for_gpt_image_2_before_sending() -> None:
    result = run_cli("generate", "a fox", "-m", "gpt-image-2", "-s", "768x768", "--dry-run")
    assert result.code == 2
    assert "-s '768x768' is 589,824 pixels; openai/gpt-image-2 needs at least 655,360" in result.stderr
    assert "POST" not in result.stdout


SQUARE_HIGH = 0.211  # gpt-image-2, 1024x1024, high: the guide's table


@pytest.mark.parametrize(
    ("model_id", "n", "size", "quality", "expected"),
    [
        # gpt-image-2: the published table (quality x size) ...
        ("openai/gpt-image-2", 1, "1024x1024", "low", 0.006),
        ("openai/gpt-image-2", 1, "1024x1024", "medium", 0.053),
        ("openai/gpt-image-2", 2, "1024x1024", "high", 2 * SQUARE_HIGH),
        ("openai/gpt-image-2", 1, "1536x1024", "high", 0.165),
        ("openai/gpt-image-2", 1, "auto", "auto", SQUARE_HIGH),  # the dearest choice
        # ... and other sizes: the square's price scaled by area, an upper bound
        ("openai/gpt-image-2", 1, "2048x2048", "high", 4 * SQUARE_HIGH),
        ("openai/gpt-image-2", 1, "1024x640", "low", 0.006 * 0.625),
        ("openai/gpt-image-2", 1, "3840x2160", "medium", 0.053 * 3840 * 2160 / 1024**2),
        ("openai/gpt-image-1-mini", 1, "1024x1024", "high", 0.036),
        ("openai/gpt-image-1-mini", 1, "1536x1024", "high", 0.052),
        ("openai/gpt-image-2.5-sunburst", 1, "1024x1024", "low", 0.006),
        ("openai/gpt-image-2.5-sunburst", 1, "1024x1024", "max", SQUARE_HIGH),
        ("bedrock/amazon.titan-image-generator-v2:0", 1, "512x512", "standard", 0.008),
        ("bedrock/amazon.titan-image-generator-v2:0", 1, "1024x1024", "standard", 0.01),
        ("bedrock/amazon.titan-image-generator-v2:0", 1, "512x512", "premium", 0.01),
        ("bedrock/amazon.titan-image-generator-v2:0", 5, "1152x768", "premium", 0.06),
    ],
)
def test_estimates_follow_the_published_prices(model_id: str, n: int, size: str, quality: str, expected: float) -> None:
    assert estimate_cost(model(model_id), n, size, quality) == pytest.approx(expected, rel=0.03)


def test_the_models_list_shows_gpt_image_2s_table_range() -> None:
    assert price_range(model("openai/gpt-image-2")) == (0.005, SQUARE_HIGH)


# -- Gemini 3.1 Flash Image: the extra ratios and the 512 size ----------------------------------------


@pytest.mark.parametrize("ratio", ["1:4", "4:1", "1:8", "8:1"])
def test_gemini_3_1_flash_image_takes_the_extreme_ratios(ratio: str) -> None:
    for provider in ("vertex_ai", "gemini"):
        assert sizes.choose(model(f"{provider}/gemini-3.1-flash-image"), None, ratio).aspect_ratio == ratio
    assert "9:21" in model("vertex_ai/gemini-3.1-flash-image").aspect_ratios


def test_a_small_size_on_gemini_3_1_flash_image_asks_for_512() -> None:
    choice = sizes.choose(model("gemini/gemini-3.1-flash-image"), "512x512", None)
    assert (choice.aspect_ratio, choice.image_size) == ("1:1", "512")
    assert sizes.choose(model("gemini/gemini-3.1-flash-image"), "1024x1024", None).image_size == "1K"
    assert sizes.choose(model("gemini/gemini-3-pro-image"), "512x512", None).image_size == "1K"


def test_the_512_size_goes_on_the_wire_as_gemini_spells_it() -> None:
    env = {"GEMINI_API_KEY": "gm-test-key-0000", "IMGGEN_TODAY": "2026-11-30"}
    result = run_cli("generate", "a fox", "-m", "gemini/gemini-3.1-flash-image", "-s", "512x2048", "--dry-run",
                     env=env)  # fmt: skip
    assert result.code == 0, result.stderr
    assert '"aspectRatio": "1:4"' in result.stdout and '"imageSize": "2K"' in result.stdout
    result = run_cli("generate", "a fox", "-m", "gemini/gemini-3.1-flash-image", "-s", "128x512", "--dry-run",
                     env=env)  # fmt: skip
    assert '"imageSize": "512"' in result.stdout
