"""The user's own models: `models.json` or `models.toml` in the config directory, in the catalog's
shape, merged over the built-in catalog when `catalog.all_models` first runs.

An entry whose id is in the built-in catalog changes the facts it gives: each key replaces the
catalog's, except `lifecycle` and `sources`, which are merged one key deep (a null removes a key), so
`{"lifecycle": {"retired": "2027-03-01"}}` keeps the catalog's replacement and source. `price` is
replaced whole: a figure of yours beside the catalog's token rates would give a cost nobody published.
An entry with a new id adds a model: `"like": "provider/id"` takes that built-in model's rules and
price (not its lifecycle, notes or sources) as they are at load, so later catalog fixes flow through;
without `like` it takes `family` (needed when the provider has several) and the provider's fields.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError

NAMES = ("models.json", "models.toml")
MERGED = ("lifecycle", "sources")  # merged one key deep; every other key replaces the catalog's
NOT_LIKED = ("id", "provider", "lifecycle", "sources", "notes", "bare")  # what `like` does not copy
LIFECYCLE_KEYS = ("deprecated", "retired", "replacement", "source")
PRICE_KEYS = ("per_image", "tokens", "image_tokens")
# patterns as text, compiled (and cached by `re`) only when there is an overlay to check
_SIZE = r"^([1-9]\d{0,4}x[1-9]\d{0,4}|auto)$"
_RATIO = r"^[1-9]\d*:[1-9]\d*$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class Origin(NamedTuple):
    """What the overlay did to one model: the keys it gave, and whether it added the model."""

    path: Path
    keys: tuple[str, ...]
    added: bool
    like: str | None = None


_ORIGINS: dict[str, Origin] = {}


def origin(full_id: str) -> Origin | None:
    return _ORIGINS.get(full_id)


class _Bad(Exception):
    """One problem in one entry; `Entry.error` turns it into the ConfigError the user sees."""


def find() -> Path | None:
    """The overlay file, if there is one: a stat per name, and nothing else, when there is none."""
    from .settings import config_dir

    directory = config_dir()
    found = [directory / name for name in NAMES if (directory / name).is_file()]
    if len(found) > 1:
        raise ConfigError(
            f"both {found[0]} and {found[1].name} exist", hint="Keep one of them: imggen reads one overlay."
        )
    return found[0] if found else None


def read(path: Path) -> dict[str, Any]:
    """The file's data, or a ConfigError naming the file and the line that does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="Fix or remove the file.") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}", hint="Fix or remove the file.") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise ConfigError(
                f"{path} is not valid JSON: {exc.msg} ({where})", hint="Fix or remove the file."
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or set(data) != {"models"}:
        raise ConfigError(
            f'{path} must hold one key, "models", a list of model entries',
            hint='e.g. {"models": [{"id": "openai/my-model", "like": "openai/gpt-image-2"}]}.',
        )
    return data


def merged(builtin: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The built-in entries with the overlay's applied (in place of the catalog's), then the added ones."""
    _ORIGINS.clear()
    path = find()
    if path is None:
        return builtin
    return _merge(builtin, read(path)["models"], path)


def _merge(builtin: list[dict[str, Any]], entries: list[Any], path: Path) -> list[dict[str, Any]]:
    catalog = Catalog(builtin)
    result = {m["id"]: m for m in builtin}
    checked = [Entry(path, index, raw).checked(catalog) for index, raw in enumerate(entries)]
    _no_duplicates(checked)
    # overrides of built-in models first, so that `like` copies a model as the overlay left it
    for entry in sorted(checked, key=lambda e: "like" in e.data):
        full_id, like = entry.data["id"], entry.data.get("like")
        base = _liked(result[like], entry.data["provider"]) if like else result.get(full_id) or catalog.defaults(entry)
        result[full_id] = _apply(base, entry.data)
        given = tuple(k for k in entry.data if k not in ("id", "provider"))
        _ORIGINS[full_id] = Origin(path, given, added=full_id not in catalog.by_id, like=like)
    return list(result.values())


def _no_duplicates(entries: list[Entry]) -> None:
    seen: dict[str, int] = {}
    for entry in entries:
        first = seen.setdefault(entry.data["id"], entry.index)
        if first != entry.index:
            raise entry.error(f"the same id as models[{first}]; give each model one entry")


def _liked(model: dict[str, Any], provider: str) -> dict[str, Any]:
    base = {k: v for k, v in model.items() if k not in NOT_LIKED}
    if model["provider"] == provider and model.get("bare"):
        base["bare"] = True
    return base


def _apply(base: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    result = {**base}
    for key, value in entry.items():
        if key in MERGED:
            inner = {**(base.get(key) or {}), **value}
            result[key] = {k: v for k, v in inner.items() if v is not None}
        else:
            result[key] = value
    return result


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
                raise _Bad(f"unknown provider prefix '{prefix}/' in '{name}'{guess} (one of: {', '.join(PROVIDERS)})")
            if not name.split("/", 1)[1]:
                raise _Bad(f"'{name}' has no id after the prefix")
            return name
        if provider is not None:
            return self.full_id(f"{provider}/{name}")
        if name in self.bare:
            return self.bare[name]
        for pattern, rule_provider in _BARE_RULES:
            if pattern.match(name):
                return f"{rule_provider}/{name}"
        raise _Bad(f"'{name}' does not say its provider: write it as provider/{name}")

    def known(self, name: str, what: str) -> str:
        from .catalog import _close

        full = self.full_id(name)
        if full not in self.by_id:
            near = _close(full, self.by_id)
            guess = f"; did you mean {near[0]}?" if near else ""
            raise _Bad(f'{what} "{name}" is not in the built-in catalog{guess}')
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
        except _Bad as exc:
            raise self.error(str(exc)) from None
        return self

    def _check(self, catalog: Catalog) -> dict[str, Any]:
        raw = self.raw
        if not isinstance(raw, dict):
            raise _Bad(f"an entry must be a table of facts with an id, not {_shown(raw)}")
        if not isinstance(raw.get("id"), str) or not raw["id"].strip():
            raise _Bad('"id" is missing: give the model as "provider/id"')
        _unknown_keys(raw)
        provider = raw.get("provider")
        full_id = catalog.full_id(raw["id"].strip(), provider if isinstance(provider, str) else None)
        data = {"id": full_id, "provider": full_id.split("/", 1)[0]}
        if provider is not None and provider != data["provider"]:
            raise _Bad(f'"provider" is {_shown(provider)} but the id says {data["provider"]}')
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
            raise _Bad(f'unknown key "{key}"{guess} (allowed: {", ".join(sorted(allowed))})')


def _allowed() -> dict[str, str]:
    """Key -> its type as ModelInfo declares it, and `like`."""
    from .catalog import ModelInfo

    fields = {name: str(f.type) for name, f in ModelInfo.__dataclass_fields__.items()}
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
    raise _Bad(f'"{key}" must be {_WANTED.get(kind, kind)}, not {_shown(value)}')


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
            raise _Bad(f'"{key}" must be a list of {example}, not {_shown(value)}')
        for item in value:
            if not isinstance(item, str) or not re.match(pattern, item):
                raise _Bad(f'"{key}" must be a list of {example}; {_shown(item)} is not one')
        return list(value)

    return check


def _check_family(value: Any, catalog: Catalog, provider: str) -> str:
    families = sorted(catalog.families.get(provider, ()))
    if value not in families:
        raise _Bad(f'"family" {_shown(value)} is not one of {provider}\'s: {", ".join(families)}')
    return str(value)


def _check_like(value: Any, catalog: Catalog, provider: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f'"like" must be a catalog id such as "openai/gpt-image-2", not {_shown(value)}')
    return catalog.known(value, '"like"')


def _check_fields(value: Any, catalog: Catalog, provider: str) -> list[str]:
    names = _typed("fields", value, "tuple[str, ...]")
    unknown = [name for name in names if name not in catalog.fields]
    if unknown:
        raise _Bad(f'"fields" has {_shown(unknown[0])}; imggen knows: {", ".join(sorted(catalog.fields))}')
    return list(names)


def _check_lifecycle(value: Any, catalog: Catalog, provider: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f'"lifecycle" must be a table (deprecated, retired, replacement, source), not {_shown(value)}')
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key == "status":
            raise _Bad('"lifecycle.status" is not stored: status comes from the "retired" and "deprecated" dates')
        if key not in LIFECYCLE_KEYS:
            raise _Bad(f'unknown key "lifecycle.{key}" (allowed: {", ".join(LIFECYCLE_KEYS)})')
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
    raise _Bad(f'"lifecycle.{key}" must be a date YYYY-MM-DD, not {_shown(value)}')


def _replacement(key: str, value: Any, catalog: Catalog) -> str:
    if not isinstance(value, str):
        raise _Bad(f'"lifecycle.replacement" must be a model id such as "openai/gpt-image-2", not {_shown(value)}')
    try:
        return catalog.full_id(value)
    except _Bad as exc:
        raise _Bad(f'"lifecycle.replacement": {exc}') from None


def _text(key: str, value: Any, catalog: Catalog) -> str:
    return str(_typed(f"lifecycle.{key}", value, "str"))


_LIFECYCLE: dict[str, Callable[[str, Any, Catalog], str]] = {
    "deprecated": _date, "retired": _date, "replacement": _replacement, "source": _text,
}  # fmt: skip


def _check_price(value: Any, catalog: Catalog, provider: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise _Bad(f'"price" must be a table such as {{"per_image": 0.04}}, not {_shown(value)}')
    for key, item in value.items():
        if key not in PRICE_KEYS:
            raise _Bad(f'unknown key "price.{key}" (allowed: {", ".join(PRICE_KEYS)})')
        # per_image: USD, or quality -> size -> USD; tokens: USD per token; image_tokens: quality -> tokens
        _price_part(f"price.{key}", item, depth=2 if key == "per_image" else 1, number_ok=key == "per_image")
    if "tokens" in value and "image_tokens" not in value:
        raise _Bad('"price.tokens" needs "price.image_tokens" (the tokens an image takes, per quality)')
    return value


def _price_part(name: str, value: Any, depth: int, number_ok: bool) -> None:
    if number_ok and _number(value):
        return
    if depth == 0 or not isinstance(value, dict) or not value:
        wanted = "a number (0 or more)" + (" or a table of them" if depth else "")
        raise _Bad(f'"{name}" must be {wanted if number_ok else "a table of numbers"}, not {_shown(value)}')
    for key, item in value.items():
        _price_part(f"{name}.{key}", item, depth - 1, number_ok=True)


_SPECIAL: dict[str, Callable[[Any, Catalog, str], Any]] = {
    "sizes": _listed("sizes", _SIZE, 'sizes WxH ("1024x1024") or "auto"'),
    "aspect_ratios": _listed("aspect_ratios", _RATIO, 'ratios W:H ("16:9")'),
    "response_formats": _listed("response_formats", "^(url|b64_json)$", '"url" and "b64_json"'),
    "family": _check_family,
    "like": _check_like,
    "fields": _check_fields,
    "lifecycle": _check_lifecycle,
    "price": _check_price,
}


FLAGS = {'"like"': "--like", '"lifecycle.retired"': "--retired", '"lifecycle.deprecated"': "--deprecated",
         '"lifecycle.replacement"': "--replacement", '"location"': "--location"}  # fmt: skip


def add(fields: dict[str, Any]) -> tuple[str, Path]:
    """Write `fields` (id, like, price, lifecycle, location) into the overlay: a new entry, or the keys
    given merged into the id's entry. Returns the full id and the file."""
    from .catalog import builtin_entries
    from .errors import UsageError

    path, data = _editable()
    builtin = builtin_entries()
    catalog = Catalog(builtin)
    try:
        entry = Entry(path, len(data["models"]), fields)._check(catalog)
    except _Bad as exc:
        message = str(exc)
        for key, flag in FLAGS.items():
            message = message.replace(key, flag)
        raise UsageError(message, hint="See: imggen models add -h.") from None
    full_id = entry.pop("provider") and entry["id"]  # the id says the provider
    if full_id not in catalog.by_id and "like" not in entry and _index(data, full_id, catalog) is None:
        raise UsageError(
            f"{full_id} is not in the catalog", hint="Give --like MODEL: a catalog model whose rules it takes."
        )
    index = _index(data, full_id, catalog)
    if index is None:
        data["models"].append(entry)
    elif path.suffix == ".toml":
        raise ConfigError(
            f"{full_id} is already in {path}; imggen does not rewrite a TOML overlay (its comments would be lost)",
            hint="Edit its [[models]] table by hand.",
        )
    else:
        data["models"][index] = _apply(data["models"][index], entry)
    _merge(builtin, data["models"], path)  # the file as it will be must load
    _write(path, data, appended=entry if index is None else None)
    return full_id, path


def remove(name: str) -> tuple[str, Path]:
    """Take the id's entry out of the overlay; returns the full id and the file."""
    from .catalog import builtin_entries
    from .errors import UsageError

    path, data = _editable()
    catalog = Catalog(builtin_entries())
    try:
        full_id = catalog.full_id(name)
    except _Bad as exc:
        raise UsageError(str(exc)) from None
    index = _index(data, full_id, catalog)
    if index is None:
        raise UsageError(f"{full_id} is not in {path}", hint="`imggen models show MODEL` says what the overlay gives.")
    if path.suffix == ".toml":
        raise ConfigError(
            f"imggen does not rewrite a TOML overlay ({path})", hint="Remove its [[models]] table by hand."
        )
    del data["models"][index]
    _write(path, data)
    return full_id, path


def _editable() -> tuple[Path, dict[str, Any]]:
    from .settings import config_dir

    path = find()
    if path is None:
        return config_dir() / NAMES[0], {"models": []}
    return path, read(path)


def _index(data: dict[str, Any], full_id: str, catalog: Catalog) -> int | None:
    for index, raw in enumerate(data["models"]):
        try:
            if isinstance(raw, dict) and catalog.full_id(str(raw.get("id")), raw.get("provider")) == full_id:
                return index
        except _Bad:
            continue
    return None


def _write(path: Path, data: dict[str, Any], appended: dict[str, Any] | None = None) -> None:
    """JSON is rewritten in the catalog's layout; TOML only ever gets a new table at its end."""
    from .settings import write_atomically

    if path.suffix == ".toml":
        assert appended is not None
        old = path.read_text(encoding="utf-8")
        before = old.rstrip("\n") + "\n\n" if old.strip() else ""
        write_atomically(path, before + _toml_table(appended))
    else:
        write_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _toml_table(entry: dict[str, Any]) -> str:
    """One `[[models]]` table, its tables inline (`price = { per_image = 0.05 }`), so that it can follow
    whatever the file ends with."""
    import tomli_w

    lines = ["[[models]]"]
    for key, value in entry.items():
        if isinstance(value, dict):
            inner = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(tomli_w.dumps({key: value}).strip())
    return "\n".join(lines) + "\n"
