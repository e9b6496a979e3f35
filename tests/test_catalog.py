"""The catalog as data: model names, lifecycle and prices."""

import datetime as dt

import pytest

from imggen.catalog import all_models, estimate_cost, lookup, parse_model, usage_cost
from imggen.errors import UsageError
from imggen.providers import PROVIDERS
from imggen.types import Usage


@pytest.mark.parametrize(
    ("name", "provider", "model_id"),
    [
        ("dall-e-3", "openai", "dall-e-3"),
        ("gpt-image-2", "openai", "gpt-image-2"),
        ("amazon.nova-canvas-v1:0", "bedrock", "amazon.nova-canvas-v1:0"),
        ("stability.sd3-large-v1:0", "bedrock", "stability.sd3-large-v1:0"),
        ("imagen-4.0-generate-001", "vertex_ai", "imagen-4.0-generate-001"),
        ("imagegeneration@006", "vertex_ai", "imagegeneration@006"),
        ("placeholder", "placeholder", "default"),
        ("azure/my-deployment", "azure", "my-deployment"),
        ("openai/some-local-model", "openai", "some-local-model"),
    ],
)
def test_model_names_resolve_to_their_provider(name: str, provider: str, model_id: str) -> None:
    ref = parse_model(name)
    assert (ref.provider, ref.model_id) == (provider, model_id)


def test_unknown_prefix_is_a_usage_error_listing_providers() -> None:
    with pytest.raises(UsageError) as err:
        parse_model("midjourney/v6")
    text = str(err.value)
    for provider in ("openai/", "azure/", "bedrock/", "vertex_ai/", "gemini/", "placeholder/"):
        assert provider in text


def test_a_bare_id_of_no_known_family_needs_a_prefix() -> None:
    with pytest.raises(UsageError):
        parse_model("flux-dev")


def test_every_provider_has_models_and_ids_are_unique() -> None:
    ids = [m.id for m in all_models()]
    assert len(ids) == len(set(ids))
    # Every provider with an implementation has catalog rows (and no row names another).
    assert {m.provider for m in all_models()} == {name for name, spec in PROVIDERS.items() if spec.module}


def test_lifecycle_status_follows_the_dates() -> None:
    dalle = lookup("openai/dall-e-3")
    assert dalle is not None
    assert dalle.status(dt.date(2026, 11, 24)) == "retired"
    assert dalle.status(dt.date(2025, 1, 1)) in ("active", "deprecated")
    assert dalle.lifecycle.get("replacement")


def test_dall_e_3_prices_by_quality_and_size() -> None:
    info = lookup("openai/dall-e-3")
    assert estimate_cost(info, 1, "1024x1024", "standard") == pytest.approx(0.04)
    assert estimate_cost(info, 2, "1792x1024", "hd") == pytest.approx(0.24)


def test_gpt_image_1_token_estimate_matches_the_published_per_image_price() -> None:
    info = lookup("openai/gpt-image-1")
    assert estimate_cost(info, 1, "1024x1024", "high") == pytest.approx(0.1664, rel=0.01)
    assert estimate_cost(info, 1, "1536x1024", "low") == pytest.approx(0.016, rel=0.03)


def test_reported_tokens_price_the_actual_image() -> None:
    info = lookup("openai/gpt-image-1")
    cost = usage_cost(info, Usage(input_tokens=10, output_tokens=4160, total_tokens=4170, input_text_tokens=10))
    assert cost == pytest.approx(10 * 5e-6 + 4160 * 4e-5)
