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

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ConfigError

if TYPE_CHECKING:
    from .overlay_check import Entry

NAMES = ("models.json", "models.toml")
MERGED = ("lifecycle", "sources")  # merged one key deep; every other key replaces the catalog's
NOT_LIKED = ("id", "provider", "lifecycle", "sources", "notes", "bare")  # what `like` does not copy


class Origin(NamedTuple):
    """What the overlay did to one model: the keys it gave, and whether it added the model."""

    path: Path
    keys: tuple[str, ...]
    added: bool
    like: str | None = None


_ORIGINS: dict[str, Origin] = {}


def origin(full_id: str) -> Origin | None:
    return _ORIGINS.get(full_id)


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
    return merge(builtin, read(path)["models"], path)


def merge(builtin: list[dict[str, Any]], entries: list[Any], path: Path) -> list[dict[str, Any]]:
    """Every entry checked (overlay_check, loaded only when there is a file), then applied in order."""
    from .overlay_check import Catalog, Entry

    catalog = Catalog(builtin)
    result = {m["id"]: m for m in builtin}
    checked = [Entry(path, index, raw).checked(catalog) for index, raw in enumerate(entries)]
    _no_duplicates(checked)
    # overrides of built-in models first, so that `like` copies a model as the overlay left it
    for entry in sorted(checked, key=lambda e: "like" in e.data):
        full_id, like = entry.data["id"], entry.data.get("like")
        base = _liked(result[like], entry.data["provider"]) if like else result.get(full_id) or catalog.defaults(entry)
        result[full_id] = apply_entry(base, entry.data)
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


def apply_entry(base: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    result = {**base}
    for key, value in entry.items():
        if key in MERGED:
            inner = {**(base.get(key) or {}), **value}
            result[key] = {k: v for k, v in inner.items() if v is not None}
        else:
            result[key] = value
    return result
