"""`imggen config`: profiles in config.toml, and `explain` of where every setting comes from."""

from __future__ import annotations

import re
import sys
from typing import Any

import typer

from ..catalog import PROVIDERS, parse_model
from ..errors import ConfigError, UsageError
from ..providers import SPECS
from ..secrets import SECRET_SETTINGS
from ..settings import (
    ENV_REF,
    KEYRING_REF,
    PROFILE_KEYS,
    Config,
    Resolved,
    check_value,
    config_path,
    load_config,
    resolve,
    save_config,
)  # fmt: skip
from . import render
from .complete import complete_key, complete_model, complete_profile
from .helptext import epilog

config_app = typer.Typer(help="Profiles and settings (config.toml).", no_args_is_help=True)
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _load() -> Config:
    config = load_config()
    for text in config.warnings:
        render.warn(text)
    return config


def _profile(config: Config, name: str) -> dict[str, Any]:
    if name not in config.profiles:
        known = ", ".join(config.profiles) or "none yet"
        raise ConfigError(f"no profile named '{name}' in {config.path}", hint=f"Known profiles: {known}.")
    return config.profiles[name]


def shown(key: str, value: Any, reveal: bool = False) -> str:
    """A value as printed: secrets masked unless revealed (the registry in secrets.py decides)."""
    from ..secrets import shown as shown_value

    return shown_value(key, value, reveal)


@config_app.command("path", epilog=epilog("config path"))
def path_cmd() -> None:
    """Print the config file's path."""
    sys.stdout.write(f"{config_path()}\n")


@config_app.command("set", epilog=epilog("config set"))
def set_cmd(
    profile: str = typer.Argument(
        ...,
        help="Profile name (a provider name implies that provider).",
        metavar="PROFILE",
        autocompletion=complete_profile,
    ),
    key: str = typer.Argument(
        ..., metavar="KEY", help="One of: " + ", ".join(PROFILE_KEYS), autocompletion=complete_key
    ),
    value: str | None = typer.Argument(
        None, metavar="[VALUE]", help="The value; - reads stdin; omit for api_key to be prompted."
    ),
    in_keyring: bool = typer.Option(
        False, "--keyring", help="Keep the secret in the OS keyring; the profile holds a keyring: reference."
    ),
) -> None:
    """Create or update a profile's key."""
    if not PROFILE_NAME.match(profile):
        raise UsageError(f"profile name '{profile}' may use only letters, digits, '.', '_' and '-'")
    config = _load()
    unbound = _needs_provider(profile, config.profiles.get(profile, {}), key)
    if unbound and key in ("api_key", "api_version"):  # they never say which: said before a key is typed in
        raise _no_provider(profile, key)
    if in_keyring and key not in SECRET_SETTINGS:
        raise UsageError(f"--keyring keeps secrets; {key} is not one", hint="Leave out --keyring.")
    converted = check_value(key, _read_value(key, value))
    entry = config.profiles.setdefault(profile, {})
    if profile in PROVIDERS and key != "provider":
        entry.setdefault("provider", profile)
    inferred = _inferred_provider(key, converted) if unbound else None
    if unbound and inferred is None:
        raise _no_provider(profile, key)
    if inferred is not None:
        entry["provider"] = inferred
    _check_consistent(profile, entry, key, converted)
    where = f"in {config.path}"
    if in_keyring and not str(converted).startswith(ENV_REF):
        from ..keyrings import reference, store

        ref = reference(profile, key)
        where = f"in the keyring ({store(ref, str(converted))}); the profile holds {ref}"
        entry[key] = ref
    else:
        _forget(entry.get(key))
        entry[key] = converted
    save_config(config)
    render.note(f"{profile}.{key} = {shown(key, converted)} ({where})")
    if inferred is not None:
        render.note(f"profile '{profile}' is for {inferred} (from the {key}); "
                    f"imggen config set {profile} provider PROVIDER to change it")  # fmt: skip


# Keys that work with any provider: a profile of only these needs none (e.g. `--profile slow`).
PROVIDER_FREE_KEYS = ("provider", "timeout", "rpm", "output_dir")
# api_base hosts that can only be one provider's.
PROVIDER_HOSTS = tuple((re.compile(spec.api_hosts), spec.name) for spec in SPECS if spec.api_hosts)


def _needs_provider(profile: str, entry: dict[str, Any], key: str) -> bool:
    """A profile not named for a provider, with none set, given a key only some provider uses
    (a key, an endpoint): it must say which, or the default model's provider would get them."""
    return profile not in PROVIDERS and not entry.get("provider") and key not in PROVIDER_FREE_KEYS


def _inferred_provider(key: str, value: Any) -> str | None:
    """The provider a value makes certain: an api_base host only one provider serves, a model with
    a provider prefix, a key only one provider has. None when it could be any."""
    text = str(value)
    if text.startswith(ENV_REF):
        return None
    if key == "api_base":
        from urllib.parse import urlsplit

        host = (urlsplit(text).hostname or "").lower()
        return next((provider for pattern, provider in PROVIDER_HOSTS if pattern.search(host)), None)
    if key == "model":
        return text.split("/", 1)[0] if "/" in text else None  # check_value took the prefix already
    owners = [spec.name for spec in SPECS if key in spec.env]
    return owners[0] if len(owners) == 1 else None  # a key only one provider has


def _no_provider(profile: str, key: str) -> UsageError:
    return UsageError(
        f"profile '{profile}' has no provider, and its {key} does not say which",
        hint=f"Set it first: imggen config set {profile} provider PROVIDER ({', '.join(PROVIDERS)}).",
    )


def _forget(old: Any) -> None:
    """A secret the profile kept in the keyring, taken out of it when the profile stops naming it."""
    if isinstance(old, str) and old.startswith(KEYRING_REF):
        from ..keyrings import delete

        delete(old)


def _where_shown(key: str, value: Any, reveal: bool = False) -> str:
    """A value as `config show` and `get` print it; a secret says where it lives: the keyring (read
    from it, then masked), a variable (os.environ/NAME, shown as is), or this file."""
    if isinstance(value, str) and value.startswith(KEYRING_REF):
        from ..keyrings import fetch

        try:
            secret = fetch(value, key)
        except ConfigError as exc:
            return f"{value} ({exc.message})"
        return shown(key, secret, reveal) if reveal else f"{shown(key, secret)} (keyring)"
    if reveal or key not in SECRET_SETTINGS or str(value).startswith(ENV_REF):
        return shown(key, value, reveal)
    return f"{shown(key, value)} (config file)"


def _read_value(key: str, value: str | None) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    if value is not None:
        return value
    if key == "api_key":
        if not sys.stdin.isatty():
            return sys.stdin.readline().strip()
        return str(typer.prompt("api_key", hide_input=True))
    raise UsageError(f"config set needs a value for {key}", hint="Give it as the last argument, or - for stdin.")


def _check_consistent(profile: str, entry: dict[str, Any], key: str, value: Any) -> None:
    if not value and value != 0:
        raise UsageError(f"an empty value for {key}", hint=f"To remove it: imggen config unset {profile} {key}")
    provider = value if key == "provider" else entry.get("provider")
    model = value if key == "model" else entry.get("model")
    if provider and model and not str(model).startswith(ENV_REF):
        ref = parse_model(str(model))
        if ref.provider != provider:
            raise UsageError(f"profile '{profile}' is for {provider}, but {model} is a {ref.provider} model")


@config_app.command("get", epilog=epilog("config get"))
def get_cmd(
    profile: str = typer.Argument(..., metavar="PROFILE", autocompletion=complete_profile),
    key: str = typer.Argument(..., metavar="KEY", autocompletion=complete_key),
    reveal: bool = typer.Option(False, "--reveal", help="Print secrets in full."),
) -> None:
    """Print one value (secrets masked unless --reveal)."""
    entry = _profile(_load(), profile)
    if key not in PROFILE_KEYS:
        raise UsageError(f"unknown config key '{key}'", hint="Allowed: " + ", ".join(PROFILE_KEYS) + ".")
    if key not in entry:
        raise ConfigError(f"profile '{profile}' has no {key}", hint=f"Set it: imggen config set {profile} {key} VALUE")
    value = entry[key]
    in_keyring = str(value).startswith(KEYRING_REF)  # read from it: --reveal prints the key itself
    sys.stdout.write((_where_shown(key, value, reveal) if in_keyring else shown(key, value, reveal)) + "\n")


@config_app.command("unset", epilog=epilog("config unset"))
def unset_cmd(
    profile: str = typer.Argument(..., metavar="PROFILE", autocompletion=complete_profile),
    key: str = typer.Argument(..., metavar="KEY", autocompletion=complete_key),
) -> None:
    """Delete one key from a profile."""
    config = _load()
    entry = _profile(config, profile)
    if key not in entry:
        raise ConfigError(f"profile '{profile}' has no {key}")
    old = entry.pop(key)
    save_config(config)
    _forget(old)


@config_app.command("remove", epilog=epilog("config remove"))
def remove_cmd(profile: str = typer.Argument(..., metavar="PROFILE", autocompletion=complete_profile)) -> None:
    """Delete a profile."""
    config = _load()
    _profile(config, profile)
    removed = config.profiles.pop(profile)
    if config.default_profile == profile:
        config.default_profile = None
    config.provider_defaults = {p: n for p, n in config.provider_defaults.items() if n != profile}
    save_config(config)
    for value in removed.values():
        _forget(value)


def _marks(config: Config, name: str) -> list[str]:
    marks = ["default"] if config.default_profile == name else []
    provider = config.profile_provider(name)
    if provider and config.provider_defaults.get(provider) == name:
        marks.append(f"default for {provider}")
    return marks


@config_app.command("list", epilog=epilog("config list"))
def list_cmd(json_out: bool = typer.Option(False, "--json", help="JSON array.")) -> None:
    """Profiles: name, provider, default marks."""
    config = _load()
    if json_out:
        rows = [
            {"name": n, "provider": config.profile_provider(n), "default": config.default_profile == n}
            for n in config.profiles
        ]
        render.print_json(rows)
        return
    for name in config.profiles:
        marks = ", ".join(_marks(config, name))
        line = f"{name:<20} {config.profile_provider(name) or '-':<12} {marks}"
        sys.stdout.write(line.rstrip() + "\n")


@config_app.command("show", epilog=epilog("config show"))
def show_cmd(
    profile: str | None = typer.Argument(
        None, help="A profile; all of them when omitted.", metavar="[PROFILE]", autocompletion=complete_profile
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON object."),
) -> None:
    """A profile's values, secrets masked."""
    config = _load()
    names = [profile] if profile else list(config.profiles)
    data = {n: {k: shown(k, v) for k, v in _profile(config, n).items()} for n in names}
    if json_out:
        render.print_json(data[profile] if profile else data)
        return
    data = {n: {k: _where_shown(k, v) for k, v in _profile(config, n).items()} for n in names}
    for name, values in data.items():
        sys.stdout.write(f"[{name}]\n")
        sys.stdout.writelines(f"{k} = {v}\n" for k, v in values.items())


@config_app.command("default", epilog=epilog("config default"))
def default_cmd(profile: str = typer.Argument(..., metavar="PROFILE", autocompletion=complete_profile)) -> None:
    """Make PROFILE the default overall and for its provider."""
    config = _load()
    _profile(config, profile)
    config.default_profile = profile
    provider = config.profile_provider(profile)
    if provider:
        config.provider_defaults[provider] = profile
    save_config(config)


def _credentials_row(resolved: Resolved) -> dict[str, str | None]:
    """Whether a credential actually resolves for this model (see settings.credential_source)."""
    from ..settings import credential_source

    where = credential_source(resolved.model.provider, {k: s.value for k, s in resolved.values.items()})
    if where in resolved.values:  # a setting: say where that setting came from
        where = f"{where} ({resolved.values[where].source})"
    return {"setting": "credentials", "value": "found" if where else "not found", "source": where or "-"}


@config_app.command("explain", epilog=epilog("config explain"))
def explain_cmd(
    model: str | None = typer.Option(
        None, "-m", "--model", metavar="MODEL", help="The model generate would use.", autocompletion=complete_model
    ),
    profile: str | None = typer.Option(
        None, "--profile", metavar="NAME", help="The profile generate would use.", autocompletion=complete_profile
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON array."),
) -> None:
    """Every setting generate would use, its value (masked) and where it came from."""
    resolved = resolve(model=model, profile=profile)
    for text in resolved.warnings:
        render.warn(text)
    rows: list[dict[str, str | None]] = [
        {"setting": "model", "value": resolved.model.name, "source": resolved.model_source}
    ]
    for key, setting in resolved.values.items():
        value = None if setting.value is None else shown(key, setting.value)
        rows.append({"setting": key, "value": value, "source": setting.source})
    rows.append(_credentials_row(resolved))
    if json_out:
        render.print_json(rows)
        return
    for row in rows:
        value = "(not set)" if row["value"] is None else row["value"]
        sys.stdout.write(f"{row['setting']:<20} {value:<50} {row['source']}\n")
