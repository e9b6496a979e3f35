"""`imggen models add` and `remove`: editing the user's overlay file, whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .overlay import NAMES, apply_entry, find, merge, read
from .overlay_check import Catalog, Entry, Problem

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
    except Problem as exc:
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
        data["models"][index] = apply_entry(data["models"][index], entry)
    merge(builtin, data["models"], path)  # the file as it will be must load
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
    except Problem as exc:
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
        except Problem:
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
