"""The checks of the user's overlay entries: each key against what the catalog takes, with a message
that names the key and what is wrong (`overlay.read` has parsed the file, `overlay.merge` merges)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError

LIFECYCLE_KEYS = ("deprecated", "retired", "replacement", "source")
PRICE_KEYS = ("per_image", "tokens", "image_tokens")
_SIZE = r"^([1-9]\d{0,4}x[1-9]\d{0,4}|auto)$"
_RATIO = r"^[1-9]\d*:[1-9]\d*$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class Problem(Exception):
    """One problem in one entry; `Entry.error` turns it into the ConfigError the user sees."""


class Catalog:
    """What the checks need from the built-in catalog: its ids, families and fields."""

    def __init__(self, builtin: list[dict[str, Any]]) -> None:
        self.by_id = {m["id"]: m for m in builtin}
        self.bare: dict[str, str] = {m["id"].split("/", 1)[1]: m["id"] for m in builtin if m.get("bare")}
        self.families: dict[str, set[str]] = {}
        for m in builtin:
            self.families.setdefault(m["provider"], set()).add(m["family"])
        self.fields = {name for m in builtin for name in m.get("fields", ())}

    def full_id(self, name: str, provider: str | None = None) -> str:
        """`provider/id` for an id as an overlay writes it: prefixed, bare with "provider", or bare
        and unambiguous (`gpt-image-2`)."""
        from .catalog import _BARE_RULES, PROVIDERS, _close

        if "/" in name:
            prefix = name.split("/", 1)[0]
            if prefix not in PROVIDERS:
                near = _close(prefix, PROVIDERS)
                guess = f"; did you mean {near[0]}/?" if near else ""
                raise Problem(
                    f"unknown provider prefix '{prefix}/' in '{name}'{guess} (one of: {', '.join(PROVIDERS)})"
                )
            if not name.split("/", 1)[1]:
                raise Problem(f"'{name}' has no id after the prefix")
            return name
        if provider is not None:
            return self.full_id(f"{provider}/{name}")
        if name in self.bare:
            return self.bare[name]
        for pattern, rule_provider in _BARE_RULES:
            if pattern.match(name):
                return f"{rule_provider}/{name}"
        raise Problem(f"'{name}' does not say its provider: write it as provider/{name}")

    def known(self, name: str, what: str) -> str:
        from .catalog import _close

        full = self.full_id(name)
        if full not in self.by_id:
            near = _close(full, self.by_id)
            guess = f"; did you mean {near[0]}?" if near else ""
            raise Problem(f'{what} "{name}" is not in the built-in catalog{guess}')
        return full

    def defaults(self, entry: Entry) -> dict[str, Any]:
        """The facts of a new model without `like`: its provider's family and fields."""
        from .plan import PROVIDER_FIELDS

        provider = entry.data["provider"]
        families = sorted(self.families.get(provider, ()))
        if "family" not in entry.data and len(families) != 1:
            raise entry.error(
                f'a new model needs "like" (a catalog model whose rules it takes) or "family" (one of: '
                f"{', '.join(families)})"
            )
        return {"family": families[0] if families else provider, "fields": list(PROVIDER_FIELDS.get(provider, ()))}


class Entry:
    """One overlay entry: its place in the file, its raw data, and once checked, its data normalised."""

    def __init__(self, path: Path, index: int, raw: Any) -> None:
        self.path, self.index, self.raw = path, index, raw
        self.data: dict[str, Any] = {}

    def error(self, problem: str) -> ConfigError:
        name = self.data.get("id") or (self.raw.get("id") if isinstance(self.raw, dict) else None)
        label = f"models[{self.index}]" + (f" ({name})" if isinstance(name, str) else "")
        return ConfigError(f"{self.path}: {label}: {problem}", hint="Fix the entry, or remove it from the file.")

    def checked(self, catalog: Catalog) -> Entry:
        try:
            self.data = self._check(catalog)
        except Problem as exc:
            raise self.error(str(exc)) from None
        return self

    def _check(self, catalog: Catalog) -> dict[str, Any]:
        raw = self.raw
        if not isinstance(raw, dict):
            raise Problem(f"an entry must be a table of facts with an id, not {_shown(raw)}")
        if not isinstance(raw.get("id"), str) or not raw["id"].strip():
            raise Problem('"id" is missing: give the model as "provider/id"')
        _unknown_keys(raw)
        provider = raw.get("provider")
        full_id = catalog.full_id(raw["id"].strip(), provider if isinstance(provider, str) else None)
        data = {"id": full_id, "provider": full_id.split("/", 1)[0]}
        if provider is not None and provider != data["provider"]:
            raise Problem(f'"provider" is {_shown(provider)} but the id says {data["provider"]}')
        for key, value in raw.items():
            if key not in ("id", "provider"):
                data[key] = _check_value(key, value, catalog, data["provider"])
        return data


def _unknown_keys(raw: dict[str, Any]) -> None:
    from .catalog import _close

    allowed = _allowed()
    for key in raw:
        if key not in allowed:
            near = _close(key, allowed)
            guess = f"; did you mean {near[0]}?" if near else ""
            raise Problem(f'unknown key "{key}"{guess} (allowed: {", ".join(sorted(allowed))})')


def _allowed() -> dict[str, str]:
    """Key -> its type as ModelInfo declares it, and `like` (not `from_family`: imggen sets it for ids
    a family matches, and a file giving it would claim rules it does not carry)."""
    from .catalog import ModelInfo

    fields = {name: str(f.type) for name, f in ModelInfo.__dataclass_fields__.items() if name != "from_family"}
    return {**fields, "like": "str"}


def _check_value(key: str, value: Any, catalog: Catalog, provider: str) -> Any:
    check = _SPECIAL.get(key)
    if check is not None:
        return check(value, catalog, provider)
    return _typed(key, value, _allowed()[key])


def _typed(key: str, value: Any, kind: str) -> Any:
    if value is None and kind.endswith("| None"):
        return None
    kind = kind.removesuffix(" | None")
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if kind.startswith("tuple[str") and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if kind.startswith("dict[str, float]") and isinstance(value, dict) and all(map(_number, value.values())):
        return value
    if (
        kind.startswith("dict[str, str]")
        and isinstance(value, dict)
        and all(isinstance(v, str) for v in value.values())
    ):
        return value
    raise Problem(f'"{key}" must be {_WANTED.get(kind, kind)}, not {_shown(value)}')


_WANTED = {
    "str": "a string", "bool": "true or false", "int": "a whole number above 0",
    "tuple[str, ...]": "a list of strings", "dict[str, float]": "a table of numbers",
    "dict[str, str]": "a table of strings",
}  # fmt: skip


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _shown(value: Any) -> str:
    if isinstance(value, (dt.date, bool)) or value is None:
        return json.dumps(value.isoformat() if isinstance(value, dt.date) else value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _listed(key: str, pattern: str, example: str) -> Callable[..., Any]:
    def check(value: Any, catalog: Catalog, provider: str) -> list[str]:
        if not isinstance(value, list):
            raise Problem(f'"{key}" must be a list of {example}, not {_shown(value)}')
        for item in value:
            if not isinstance(item, str) or not re.match(pattern, item):
                raise Problem(f'"{key}" must be a list of {example}; {_shown(item)} is not one')
        return list(value)

    return check


def _check_family(value: Any, catalog: Catalog, provider: str) -> str:
    families = sorted(catalog.families.get(provider, ()))
    if value not in families:
        raise Problem(f'"family" {_shown(value)} is not one of {provider}\'s: {", ".join(families)}')
    return str(value)


def _check_like(value: Any, catalog: Catalog, provider: str) -> str:
    if not isinstance(value, str):
        raise Problem(f'"like" must be a catalog id such as "openai/gpt-image-2", not {_shown(value)}')
    return catalog.known(value, '"like"')


def _check_fields(value: Any, catalog: Catalog, provider: str) -> list[str]:
    names = _typed("fields", value, "tuple[str, ...]")
    unknown = [name for name in names if name not in catalog.fields]
    if unknown:
        raise Problem(f'"fields" has {_shown(unknown[0])}; imggen knows: {", ".join(sorted(catalog.fields))}')
    return list(names)


def _check_lifecycle(value: Any, catalog: Catalog, provider: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Problem(f'"lifecycle" must be a table (deprecated, retired, replacement, source), not {_shown(value)}')
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key == "status":
            raise Problem('"lifecycle.status" is not stored: status comes from the "retired" and "deprecated" dates')
        if key not in LIFECYCLE_KEYS:
            raise Problem(f'unknown key "lifecycle.{key}" (allowed: {", ".join(LIFECYCLE_KEYS)})')
        result[key] = None if item is None else _LIFECYCLE[key](key, item, catalog)
    return result


def _date(key: str, value: Any, catalog: Catalog) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):  # TOML's bare 2027-01-31
        return value.isoformat()
    if isinstance(value, str) and re.match(_DATE, value):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise Problem(f'"lifecycle.{key}" must be a date YYYY-MM-DD, not {_shown(value)}')


def _replacement(key: str, value: Any, catalog: Catalog) -> str:
    if not isinstance(value, str):
        raise Problem(f'"lifecycle.replacement" must be a model id such as "openai/gpt-image-2", not {_shown(value)}')
    try:
        return catalog.full_id(value)
    except Problem as exc:
        raise Problem(f'"lifecycle.replacement": {exc}') from None


def _text(key: str, value: Any, catalog: Catalog) -> str:
    return str(_typed(f"lifecycle.{key}", value, "str"))


_LIFECYCLE: dict[str, Callable[[str, Any, Catalog], str]] = {
    "deprecated": _date, "retired": _date, "replacement": _replacement, "source": _text,
}  # fmt: skip


def _check_price(value: Any, catalog: Catalog, provider: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise Problem(f'"price" must be a table such as {{"per_image": 0.04}}, not {_shown(value)}')
    for key, item in value.items():
        if key not in PRICE_KEYS:
            raise Problem(f'unknown key "price.{key}" (allowed: {", ".join(PRICE_KEYS)})')
        # per_image: USD, or quality -> size -> USD; tokens: USD per token; image_tokens: quality -> tokens
        _price_part(f"price.{key}", item, depth=2 if key == "per_image" else 1, number_ok=key == "per_image")
    if "tokens" in value and "image_tokens" not in value:
        raise Problem('"price.tokens" needs "price.image_tokens" (the tokens an image takes, per quality)')
    return value


def _price_part(name: str, value: Any, depth: int, number_ok: bool) -> None:
    if number_ok and _number(value):
        return
    if depth == 0 or not isinstance(value, dict) or not value:
        wanted = "a number (0 or more)" + (" or a table of them" if depth else "")
        raise Problem(f'"{name}" must be {wanted if number_ok else "a table of numbers"}, not {_shown(value)}')
    for key, item in value.items():
        _price_part(f"{name}.{key}", item, depth - 1, number_ok=True)


def _check_batch(value: Any, catalog: Catalog, provider: str) -> dict[str, Any] | None:
    from .catalog import batch_problem

    if value is None:
        return None
    problem = batch_problem(value, provider)
    if problem:
        raise Problem(problem)
    return dict(value)


_SPECIAL: dict[str, Callable[[Any, Catalog, str], Any]] = {
    "sizes": _listed("sizes", _SIZE, 'sizes WxH ("1024x1024") or "auto"'),
    "aspect_ratios": _listed("aspect_ratios", _RATIO, 'ratios W:H ("16:9")'),
    "response_formats": _listed("response_formats", "^(url|b64_json)$", '"url" and "b64_json"'),
    "family": _check_family,
    "like": _check_like,
    "fields": _check_fields,
    "lifecycle": _check_lifecycle,
    "price": _check_price,
    "batch": _check_batch,
}
