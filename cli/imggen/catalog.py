"""The built-in model catalog: `models.json` read into plain objects, model-name parsing and prices."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .providers import PROVIDERS as _SPECS
from .types import ImageRequest, ModelRef, Usage

PROVIDERS = tuple(_SPECS)
STALE_AFTER_DAYS = 120  # past this many days since the catalog's `checked` date, `imggen models` says so

# Bare ids that can only mean one provider, for ids the catalog does not list.
_BARE_RULES = tuple((re.compile(spec.bare_ids), spec.name) for spec in _SPECS.values() if spec.bare_ids)
# Provider names that are model names alone (`placeholder`), with the full id each stands for.
_ALONE = {spec.name: f"{spec.prefix}{spec.alone}" for spec in _SPECS.values() if spec.alone}


@dataclass(frozen=True)
class ModelInfo:
    """One catalog entry; see models.json for the meaning of each key."""

    id: str
    provider: str
    family: str
    bare: bool = False
    sizes: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    size_rule: dict[str, float] | None = None
    image_sizes: tuple[str, ...] = ()
    default_size: str | None = None
    max_n: int = 10
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    styles: tuple[str, ...] = ()
    response_formats: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    prompt_max: int | None = None
    price: dict[str, Any] | None = None
    lifecycle: dict[str, str] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    location: str | None = None
    notes: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    # For an id the catalog does not list but a family matches: that family's entry in models.json
    # ({"provider", "pattern", "like"}); the rules are those of `like`, without its price or lifecycle.
    from_family: dict[str, str] | None = None
    tasks: tuple[str, ...] = ("generate",)  # what it does: "generate" (from text), "edit" (input images)
    # How it edits, for a model whose tasks have "edit": max_images, formats, max_bytes (each image),
    # mask (takes a mask file), mask_bytes, mask_prompt (takes a text mask), input_fidelity (values),
    # fields (the edit request's, when not the model's), price (what input images add to the cost).
    edit: dict[str, Any] | None = None
    # The provider batch services that take it (`imggen batch`): `services`, the batch services by their
    # provider's name (a model's batch service is its provider's: OpenAI's Batch API, the Gemini API's
    # batch mode), and what a batch image costs: `discount`, the batch price as a share of `price`
    # (0.5: half), or `price`, a per-image table shaped like `price.per_image`; `source`, where that is
    # from. Absent: no batch service imggen drives takes it. Vertex AI batch prediction and Bedrock
    # model-invocation jobs are on no entry: Vertex's list of batch models (docs.cloud.google.com/
    # gemini-enterprise-agent-platform/reference/models/batch-prediction-api) names Gemini Nano Banana 2.1,
    # but imggen drives no Vertex batch job yet; Bedrock's "Supported Regions and models for batch
    # inference" lists no image model (2026-11-30).
    batch: dict[str, Any] | None = None

    @property
    def model_id(self) -> str:
        return self.id.split("/", 1)[1]

    def status(self, on: dt.date | None = None) -> str:
        """active / deprecated / retired on a day (default `today()`), computed from the catalog's dates:
        retired from the shutdown day on; deprecated once announced or while a shutdown day is ahead."""
        on = on or today()
        retired, deprecated = self.lifecycle.get("retired"), self.lifecycle.get("deprecated")
        if retired and dt.date.fromisoformat(retired) <= on:
            return "retired"
        if retired or (deprecated and dt.date.fromisoformat(deprecated) <= on):
            return "deprecated"
        return "active"

    def status_words(self, on: dt.date | None = None) -> str:
        """The status with its date said for what it is: "retires 2026-12-01", "retired 2026-05-12"."""
        status, retired = self.status(on), self.lifecycle.get("retired")
        if status == "retired":
            return f"retired {retired}" if retired else "retired"
        return f"retires {retired}" if retired else status

    def has_field(self, name: str) -> bool:
        return name in self.fields


def today() -> dt.date:
    """The date every lifecycle status is computed for: IMGGEN_TODAY (YYYY-MM-DD) when set, so tests
    and users can ask what a day will bring, else the system's date."""
    given = os.environ.get("IMGGEN_TODAY", "").strip()
    if not given:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(given)
    except ValueError:
        raise ConfigError(
            f"IMGGEN_TODAY={given} is not a date (YYYY-MM-DD)", hint="Unset it to use today's date."
        ) from None


def _model_from_dict(raw: dict[str, Any]) -> ModelInfo:
    known = ModelInfo.__dataclass_fields__
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    return ModelInfo(**values)


@cache
def _data() -> dict[str, Any]:
    # Beside this module, read directly: importlib.resources costs ~10 ms of imports at start-up.
    text = (Path(__file__).parent / "models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def all_models() -> tuple[ModelInfo, ...]:
    """The built-in catalog with the user's overlay (models.json/.toml in the config directory) merged in."""
    from .overlay import merged

    return tuple(_model_from_dict(m) for m in merged(builtin_entries()))


def builtin_entries() -> list[dict[str, Any]]:
    return list(_data()["models"])


def reload() -> None:
    """Read the catalog and the overlay again (after `imggen models add`, or between tests)."""
    all_models.cache_clear()
    _by_id.cache_clear()


def families() -> list[dict[str, str]]:
    """models.json's families: ids the catalog does not list that follow a known model's rules."""
    return list(_data().get("families", []))


def checked() -> dt.date | None:
    """The day the catalog was last compared with the providers (models.json's `checked`)."""
    value = _data().get("checked")
    return dt.date.fromisoformat(value) if value else None


def stale_warning(on: dt.date | None = None) -> str | None:
    """Past STALE_AFTER_DAYS since the catalog was checked: one line that says so."""
    last = checked()
    if last is None:
        return None
    days = ((on or today()) - last).days
    if days <= STALE_AFTER_DAYS:
        return None
    return (
        f"the catalog was last checked on {last.isoformat()} ({days} days ago); "
        "run `imggen models check` to compare it with your providers"
    )


@cache
def _by_id() -> dict[str, ModelInfo]:
    return {m.id: m for m in all_models()}


def lookup(full_id: str) -> ModelInfo | None:
    return _by_id().get(full_id)


def parse_model(name: str) -> ModelRef:
    """Turn `provider/id`, a bare id or `placeholder` into a ModelRef; unknown prefixes are usage errors."""
    name = name.strip()
    if not name:
        raise UsageError("the model name is empty", hint="Pass -m provider/model, e.g. -m openai/gpt-image-2.")
    if "/" in name:
        return _prefixed(name)
    if name in _ALONE:
        return _prefixed(_ALONE[name])
    return _prefixed(f"{_bare_provider(name)}/{name}")


def _prefixed(name: str) -> ModelRef:
    provider, model_id = name.split("/", 1)
    if provider not in PROVIDERS:
        near = _close(provider, PROVIDERS)
        guess = f"; did you mean {near[0]}/{model_id}?" if near else ""
        raise UsageError(
            f"unknown provider prefix '{provider}/' in model '{name}'{guess}",
            hint="Use one of: " + ", ".join(p + "/" for p in PROVIDERS) + ".",
        )
    if not model_id:
        raise UsageError(f"model '{name}' has no id after the prefix", hint=f"e.g. {provider}/<model-id>.")
    return ModelRef(provider, model_id, lookup(name) or family_rules(provider, model_id))


def _bare_provider(name: str) -> str:
    for model in all_models():
        if model.bare and model.model_id == name:
            return model.provider
    for pattern, provider in _BARE_RULES:
        if pattern.match(name):
            return provider
    near = _close(name, _bare_names())
    if near:
        raise UsageError(f"unknown model '{name}'; did you mean {near[0]}?", hint="`imggen models` lists the ids.")
    raise UsageError(
        f"model '{name}' does not say which provider it is for",
        hint="Add a prefix: " + ", ".join(f"{p}/{name}" for p in PROVIDERS[:5]) + ".",
    )


def _close(name: str, choices: Iterable[str], count: int = 1) -> list[str]:
    """Near misses of `name` (a typo, a dropped or added '-'): difflib's ratio, strict enough that an
    unrelated id gets no suggestion."""
    import difflib

    return difflib.get_close_matches(name.lower(), list(choices), n=count, cutoff=0.75)


def _bare_names() -> list[str]:
    """What a user may type without a prefix: bare catalog ids, `placeholder`, and every full id."""
    names = [m.model_id for m in all_models() if m.bare] + list(_ALONE)
    return names + [m.id for m in all_models()]


def family_of(provider: str, model_id: str) -> dict[str, str] | None:
    """The first family whose pattern (fnmatch, on the id without its prefix) matches, if its `like`
    model is in the catalog."""
    for entry in families():
        matches = entry["provider"] == provider and fnmatch.fnmatchcase(model_id, entry["pattern"])
        if matches and lookup(entry["like"]) is not None:
            return entry
    return None


def family_rules(provider: str, model_id: str) -> ModelInfo | None:
    """An id the catalog does not list, in a known family: the rules of the family's model (sizes,
    qualities, fields, limits), with no price and no lifecycle, for nothing is known of either."""
    entry = family_of(provider, model_id)
    if entry is None:
        return None
    like = lookup(entry["like"])
    assert like is not None
    return replace(like, id=f"{provider}/{model_id}", bare=False, price=None, lifecycle={}, notes="",
                   from_family=entry)  # fmt: skip


def family_note(info: ModelInfo | None) -> str | None:
    """What a run says when a family gave an unknown id its rules."""
    entry = info.from_family if info else None
    if info is None or entry is None:
        return None
    return f"{info.id} is not in imggen's catalog; using the rules of {entry['like']} (family {entry['pattern']})"


def unknown_id_warning(ref: ModelRef) -> str | None:
    """For an id the catalog does not know, sent to the provider's own endpoint: the nearest known ids.
    Azure ids are deployment names a user chose and placeholder takes any id, so neither is checked."""
    if ref.info is not None or not _SPECS[ref.provider].catalog_ids:
        return None
    near = nearest_ids(ref)
    nearest = "; nearest known: " + ", ".join(near) if near else ""
    return f"{ref.name} is not in imggen's catalog{nearest} (sent as it is)"


def nearest_ids(ref: ModelRef, count: int = 3) -> list[str]:
    """The provider's catalog ids closest to `ref`'s, best first."""
    ids = [m.model_id for m in all_models() if m.provider == ref.provider]
    return [f"{ref.provider}/{i}" for i in _close(ref.model_id, ids, count=count)]


def _pixels(size: str | None) -> int:
    if size and "x" in size:
        w, h = size.split("x", 1)
        return int(w) * int(h)
    # "auto" lets the provider choose: price the largest standard size so --max-cost stays safe.
    return 1536 * 1024 if size == "auto" else 1024 * 1024


def estimate_cost(info: ModelInfo | None, n: int, size: str | None, quality: str | None) -> float | None:
    """Catalog estimate for n images, before sending; None when the catalog has no price.

    A published per-image table wins; token prices cover sizes and tiers the table lacks. Where the
    provider chooses (quality or size "auto"), the dearest choice is taken."""
    price = info.price if info else None
    if not price:
        return None
    each = _table_price(price.get("per_image"), size, quality)
    if each is None and "tokens" in price:
        each = _token_image_cost(price, size, quality)
    return None if each is None else n * each


def input_cost(info: ModelInfo | None, request: ImageRequest, requests: int) -> float | None:
    """What an edit's input images add to the estimate, over `requests` requests (each sends them
    all), from the catalog's `edit.price`: `per_input_image` USD each per request; or `image_tokens`
    (how the provider tokenises an input image, see `_input_image_tokens`) at the model's
    `price.tokens.image_in` rate, once per request (whether OpenAI bills the inputs again for each of
    n images of one request is undocumented). Nothing when the edit price is absent (the provider
    bills the edit as a generation). None: unknown (an opaque upload's pixels are unknown too)."""
    price = (info.edit or {}).get("price") if info else None
    if not price:
        return 0.0
    assert info is not None
    if "image_tokens" in price:
        if any(image.opaque for image in request.images):
            return None
        rate = ((info.price or {}).get("tokens") or {}).get("image_in")
        if rate is None:
            return None
        tokens = sum(_input_image_tokens(price, image.width, image.height, request.input_fidelity)
                     for image in request.images)  # fmt: skip
        return float(tokens * rate * requests)
    each = price.get("per_input_image")
    if each is None:
        return None
    return float(each) * len(request.images) * requests


def _input_image_tokens(price: dict[str, Any], width: int, height: int, fidelity: str | None) -> int:
    """One input image's tokens, by OpenAI's "GPT Image 1" rule (images-vision guide, Calculating
    costs; a 2026-01-16 copy in tchr-dev/IOPaint-mod docs/images-vision.md): fit within `fit` px,
    scale the shortest side down to `short_side` px, then `base` tokens plus `tile` tokens per
    `tile_px` square; at high input fidelity add `high_fidelity.square` or `.other` (by its shape).
    `fidelity` is what the request sends, else the model's default (`price.fidelity`)."""
    rule = price["image_tokens"]
    w, h = float(width), float(height)
    fit = float(rule.get("fit", 2048))
    if max(w, h) > fit:
        w, h = w * fit / max(w, h), h * fit / max(w, h)
    short = float(rule.get("short_side", 512))
    if min(w, h) > short:
        w, h = w * short / min(w, h), h * short / min(w, h)
    tile_px = float(rule.get("tile_px", 512))
    # Scaled sides are rounded down: a 1024x1025 input is billed as one tile (OpenAI community
    # measurements, "Vision pricing calculator inaccurate", 2025), 512x513 as two.
    tiles = math.ceil(math.floor(w) / tile_px) * math.ceil(math.floor(h) / tile_px)
    tokens = int(rule["base"]) + int(rule["tile"]) * tiles
    extra = price.get("high_fidelity")
    if extra and (fidelity or price.get("fidelity", "low")) == "high":
        tokens += int(extra["square"] if width == height else extra["other"])
    return tokens


def task_models(task: str, provider: str | None = None) -> list[str]:
    """The ids of the models that do `task` (of one provider), current ones only."""
    return [m.id for m in all_models() if task in m.tasks and m.status() != "retired"
            and (provider is None or m.provider == provider)]  # fmt: skip


def _table_price(table: Any, size: str | None, quality: str | None) -> float | None:
    if table is None or isinstance(table, (int, float)):
        return None if table is None else float(table)
    if "*" in table:
        tiers = [table["*"]]
    elif quality in table:
        tiers = [table[quality]]
    elif quality in (None, "auto"):
        tiers = list(table.values())
    else:
        return None
    values = []
    for tier in tiers:
        if size in tier:
            values.append(float(tier[size]))
        elif size in (None, "auto"):
            values.extend(float(v) for v in tier.values())
        else:
            return None
    return max(values) if values else None


def _token_image_cost(price: dict[str, Any], size: str | None, quality: str | None) -> float:
    tokens = price["image_tokens"]
    tier = quality if quality in tokens else max(tokens, key=tokens.get)
    image_tokens = tokens[tier] * _pixels(size) / (1024 * 1024)
    return float(image_tokens * price["tokens"]["image_out"])


def usage_cost(info: ModelInfo | None, usage: Usage) -> float | None:
    """Cost from the token counts a GPT image response reports, when the model is token-priced: text
    in, input images (an edit's `input_tokens_details.image_tokens`, at `tokens.image_in`) and image
    out. None when the answer counts input image tokens the catalog has no rate for."""
    price = info.price if info else None
    if not price or "tokens" not in price or not usage.output_tokens:
        return None
    rates = price["tokens"]
    images_in = usage.input_image_tokens
    if images_in and "image_in" not in rates:
        return None
    text_in = usage.input_text_tokens or max(usage.input_tokens - images_in, 0)
    return float(text_in * rates.get("text_in", 0) + images_in * rates.get("image_in", 0)
                 + usage.output_tokens * rates["image_out"])  # fmt: skip


BATCH_KEYS = ("services", "discount", "price", "source")


def batch_problem(value: Any, provider: str) -> str | None:
    """Why a catalog entry's `batch` is wrong, or None: `services`, a non-empty list naming the entry's
    own provider (its batch service), and exactly one of `discount` (above 0, at most 1) or `price`."""
    if not isinstance(value, dict):
        return f'"batch" must be a table such as {{"discount": 0.5, "services": ["{provider}"]}}'
    unknown = [key for key in value if key not in BATCH_KEYS]
    if unknown:
        return f'unknown key "batch.{unknown[0]}" (allowed: {", ".join(BATCH_KEYS)})'
    services = value.get("services")
    if not isinstance(services, list) or not services or not all(isinstance(s, str) for s in services):
        return '"batch.services" must be a list of batch services (the provider names)'
    if any(service != provider for service in services):
        return f'"batch.services" may name only the entry\'s provider ({provider}): its batch service'
    if ("discount" in value) == ("price" in value):
        return '"batch" needs exactly one of "discount" (a share of the price) and "price" (per image)'
    discount = value.get("discount", 1)
    if isinstance(discount, bool) or not isinstance(discount, int | float) or not 0 < discount <= 1:
        return f'"batch.discount" must be a number above 0 and at most 1, not {discount!r}'
    if "price" in value and not _price_table(value["price"], 2):
        return '"batch.price" must be USD per image, or a table of quality -> size -> USD'
    return None


def _price_table(value: Any, depth: int) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value >= 0
    tiers = value.values() if depth > 0 and isinstance(value, dict) and value else None
    return tiers is not None and all(_price_table(v, depth - 1) for v in tiers)


def batch_services(info: ModelInfo | None) -> tuple[str, ...]:
    """The batch services that take the model (none when the catalog does not say)."""
    return tuple((info.batch or {}).get("services", ())) if info else ()


def batch_cost(info: ModelInfo | None, n: int, size: str | None, quality: str | None) -> float | None:
    """The catalog's estimate for n images sent through the model's batch service: its batch price
    table, or the interactive estimate times the batch discount. None when no batch service takes the
    model or the price is unknown."""
    batch = info.batch if info else None
    if not batch:
        return None
    if "price" in batch:
        each = _table_price(batch["price"], size, quality)
        return None if each is None else n * each
    full = estimate_cost(info, n, size, quality)
    return None if full is None else full * float(batch["discount"])


def price_range(info: ModelInfo) -> tuple[float, float] | None:
    """Cheapest and dearest single image the catalog knows for a model."""
    price = info.price or {}
    table = price.get("per_image")
    if isinstance(table, dict):
        figures = [float(v) for tier in table.values() for v in tier.values()]
    elif table is not None:
        figures = [float(table)]
    elif "tokens" in price:
        figures = [_token_image_cost(price, "1024x1024", q) for q in price["image_tokens"]]
    else:
        return None
    return (min(figures), max(figures)) if figures else None
