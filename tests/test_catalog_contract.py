"""The catalog and imggen's request builders against the providers' own schemas, read from the
installed SDKs (openai's ImageGenerateParams and ImageModel, google-genai's GenerateContentConfig and
finish reasons): an SDK upgrade that renames, drops or adds something shows up here. No network."""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

# The test extra installs both SDKs: a missing one fails here rather than skipping the contract.
from google.genai import types as genai_types
from openai.types import image_generate_params as openai_params
from openai.types import image_model as openai_models

from imggen import catalog
from imggen.catalog import ModelInfo, parse_model
from imggen.errors import ContentFilterError
from imggen.providers import google_wire
from imggen.providers.azure import PROVIDER as AZURE
from imggen.providers.openai import PROVIDER as OPENAI
from imggen.settings import resolve
from imggen.types import HttpRequest, ImageRequest

CATALOG_FILE = Path(catalog.__file__).parent / "models.json"
OPENAI_LIKE = ("openai", "azure")
GEMINI_PROVIDERS = ("gemini", "vertex_ai")


def models(providers: tuple[str, ...], family: str | None = None) -> list[ModelInfo]:
    return [m for m in catalog.all_models() if m.provider in providers and family in (None, m.family)]


def checked_on() -> dt.date:
    """The day the catalog was last checked (its own record), so no test depends on the clock."""
    raw = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return dt.date.fromisoformat(raw.get("checked") or "2026-11-30")


def retired(info: ModelInfo, on: dt.date) -> bool:
    day = info.lifecycle.get("retired")
    return bool(day) and dt.date.fromisoformat(day) <= on


def full_request(info: ModelInfo, **extra: Any) -> ImageRequest:
    """A request with every option the catalog says the model takes set to a value it allows."""
    values: dict[str, Any] = {
        "n": 1,
        "size": (info.sizes or (info.default_size,))[0] if info.has_field("size") else None,
        "quality": info.qualities[0] if info.qualities else None,
        "style": info.styles[0] if info.styles else None,
        "response_format": info.response_formats[0] if info.response_formats else None,
        "user": "end-user-1" if info.has_field("user") else None,
        "seed": 7 if info.has_field("seed") else None,
        "negative_prompt": "fog" if info.has_field("negative_prompt") else None,
        "aspect_ratio": info.aspect_ratios[0] if info.aspect_ratios else None,
        "image_size": info.image_sizes[-1] if info.image_sizes else None,
    }
    return ImageRequest("a lighthouse", parse_model(info.id), **{**values, **extra})


def dry_request(info: ModelInfo, request: ImageRequest, **settings: str) -> HttpRequest:
    resolved = resolve(model=info.id, flags=settings, env={})
    provider = OPENAI if info.provider == "openai" else AZURE
    return provider.build_request(request, resolved, dry_run=True)


# --- OpenAI and Azure: the body's keys and values are ImageGenerateParams' ---------------------------


def sdk_fields() -> dict[str, Any]:
    """Every field of ImageGenerateParams (the streaming and non-streaming TypedDicts), with its type."""
    hints: dict[str, Any] = {}
    for typed_dict in typing.get_args(openai_params.ImageGenerateParams):
        assert typed_dict.__required_keys__ | typed_dict.__optional_keys__ == set(typing.get_type_hints(typed_dict))
        hints.update(typing.get_type_hints(typed_dict))
    return hints


def literal_values(hint: Any) -> set[Any] | None:
    """The values a Literal type allows (through Optional/Union); None when any other type is allowed."""
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        allowed: set[Any] = set()
        for arm in typing.get_args(hint):
            if arm is type(None):
                continue
            values = literal_values(arm)
            if values is None:
                return None
            allowed |= values
        return allowed
    return None


def assert_fits_image_generate_params(body: dict[str, Any], who: str) -> None:
    fields = sdk_fields()
    unknown = sorted(set(body) - set(fields))
    assert not unknown, f"{who} sends {unknown}, which openai's ImageGenerateParams does not have"
    for key, value in body.items():
        allowed = literal_values(fields[key])
        assert allowed is None or value in allowed, f"{who}: {key}={value!r} is not one of {sorted(allowed)}"


@pytest.mark.parametrize("info", models(("openai",)), ids=lambda m: m.id)
def test_openai_bodies_fit_the_sdks_image_generate_params(info: ModelInfo) -> None:
    http = dry_request(info, full_request(info))
    assert_fits_image_generate_params(http.json, info.id)
    if info.has_field("user"):
        field = "safety_identifier" if info.family == "gpt-image" else "user"
        assert http.json[field] == "end-user-1"


@pytest.mark.parametrize("version", ["2025-04-01-preview", "v1"])
@pytest.mark.parametrize("info", models(("azure",)), ids=lambda m: m.id)
def test_azure_bodies_fit_the_sdks_image_generate_params(info: ModelInfo, version: str) -> None:
    http = dry_request(info, full_request(info), api_version=version)
    assert_fits_image_generate_params(http.json, f"{info.id} (api-version {version})")


def test_the_sdk_still_takes_safety_identifier_and_user() -> None:
    """--user becomes safety_identifier for OpenAI's GPT image models because the SDK has it (and
    marks `user` deprecated); the day either goes, this says so."""
    assert {"safety_identifier", "user"} <= set(sdk_fields())


def test_every_current_openai_model_is_in_the_sdks_image_model_literal() -> None:
    known = set(typing.get_args(openai_models.ImageModel))
    on = checked_on()
    listed = [m.model_id for m in models(("openai",)) if not retired(m, on)]
    unknown = sorted(set(listed) - known)
    assert not unknown, f"the catalog lists {unknown}, which the installed openai SDK's ImageModel does not know"


# --- Gemini and Vertex AI: the generationConfig is google-genai's GenerateContentConfig -----------------


@pytest.mark.parametrize("info", models(GEMINI_PROVIDERS, "gemini"), ids=lambda m: m.id)
def test_gemini_generation_config_validates_as_generate_content_config(info: ModelInfo) -> None:
    body = google_wire.build_body(full_request(info))
    assert set(body) == {"contents", "generationConfig"}
    config = genai_types.GenerateContentConfig.model_validate(body["generationConfig"])  # camelCase aliases
    modalities = {m.value for m in genai_types.Modality}
    assert set(config.response_modalities or ()) <= modalities
    if info.aspect_ratios:
        assert config.image_config is not None and config.image_config.aspect_ratio == info.aspect_ratios[0]
    for content in body["contents"]:
        genai_types.Content.model_validate(content)


def test_generate_content_config_refuses_an_unknown_key() -> None:
    """The validation above proves something only while the SDK forbids extra keys."""
    with pytest.raises(ValueError, match="imageConfig"):
        genai_types.GenerateContentConfig.model_validate({"imageConfig": {"aspectRatio": "1:1", "bogus": 1}})


def enum_values(enum: type[Enum]) -> set[str]:
    return {member.value for member in enum}


def test_every_filter_reason_imggen_knows_is_one_google_sends() -> None:
    sent = enum_values(genai_types.FinishReason) | enum_values(genai_types.BlockedReason)
    assert sent >= google_wire.FILTER_REASONS, sorted(google_wire.FILTER_REASONS - sent)
    for named in ("IMAGE_RECITATION", "RECITATION", "PROHIBITED_CONTENT", "MODEL_ARMOR", "IMAGE_SAFETY", "SAFETY"):
        assert named in google_wire.FILTER_REASONS


@pytest.mark.parametrize("reason", sorted(google_wire.FILTER_REASONS))
def test_each_filter_reason_is_a_content_filter_error_naming_it(reason: str) -> None:
    request = ImageRequest("a lighthouse", parse_model("gemini/gemini-2.5-flash-image"))
    payload = {"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": reason}]}
    with pytest.raises(ContentFilterError, match=reason) as caught:
        google_wire.parse(request, payload, None)
    assert caught.value.hint and caught.value.code == reason


@pytest.mark.parametrize("reason", ["STOP", "MAX_TOKENS", "NO_IMAGE", "IMAGE_OTHER", "OTHER", "MALFORMED_RESPONSE"])
def test_other_finish_reasons_are_not_filters(reason: str) -> None:
    assert reason in enum_values(genai_types.FinishReason)
    assert reason not in google_wire.FILTER_REASONS
