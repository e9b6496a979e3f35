"""Config file, profiles and the one precedence rule, each value kept with its source."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .catalog import PROVIDERS, parse_model
from .errors import ConfigError, UsageError
from .providers import PROVIDERS as PROVIDER_SPECS
from .providers import SPECS, get_provider
from .providers.spec import COMMON_SETTINGS
from .secrets import HEADER_SETTINGS, SECRET_SETTINGS, remember, remember_setting
from .secrets import is_secret as is_secret  # re-exported: older imports take these from settings
from .secrets import mask as mask
from .secrets import redact as redact
from .types import ModelRef

# Each provider's own keys (its declaration's), after the common ones.
_OWN_PROFILE_KEYS = (s.key for spec in SPECS for s in spec.settings if s.profile and s.key not in COMMON_SETTINGS)
PROFILE_KEYS = tuple(dict.fromkeys(("provider", "model", *COMMON_SETTINGS, "rpm", "timeout", *_OWN_PROFILE_KEYS,
                                    "output_dir")))  # fmt: skip
# Settings a param (`-p KEY=…`, a Python keyword) gives, which --dry-run shows.
PROVIDER_SETTINGS = tuple(dict.fromkeys(s.key for spec in SPECS for s in spec.settings if s.param))
SECRET_KEYS = SECRET_SETTINGS  # the registry lives in secrets.py; kept here for older imports
NUMBER_KEYS = ("rpm", "timeout")
GENERIC_DEFAULTS: dict[str, Any] = {"timeout": 600.0, "output_dir": "."}
DEFAULT_MODEL = "openai/gpt-image-2"
SWITCHES = ("preview", "open", "log")  # top-level true/false: what a run does by default
DEFAULT_PROVIDER = DEFAULT_MODEL.split("/", 1)[0]
ENV_REF = "os.environ/"
KEYRING_REF = "keyring:"  # keyrings.KEYRING_REF, here without importing it on every start


def config_dir() -> Path:
    override = os.environ.get("IMGGEN_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("imggen"))


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass
class Config:
    path: Path
    default_profile: str | None = None
    default_model: str | None = None  # `imggen models default MODEL`: beats the default profile's model
    provider_defaults: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    preview: bool | None = None  # `preview = true`: --preview by default (commands/show.py)
    open: bool | None = None  # `open = true`: --open by default, when stdout is a terminal
    log: bool | None = None  # `log = false`: saved images are not recorded in the log (`imggen logs`)
    warnings: list[str] = field(default_factory=list)

    def profile_provider(self, name: str) -> str | None:
        profile = self.profiles.get(name, {})
        provider = profile.get("provider")
        return str(provider) if provider else (name if name in PROVIDERS else None)

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.default_profile:
            data["default_profile"] = self.default_profile
        if self.default_model:
            data["default_model"] = self.default_model
        if self.provider_defaults:
            data["provider_defaults"] = dict(self.provider_defaults)
        for key in SWITCHES:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["profiles"] = self.profiles
        return data


def load_config(path: Path | None = None) -> Config:
    path = path or config_path()
    config = Config(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return config
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        config.warnings.append(f"{path} is readable by other users; run: chmod 600 {path}")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}", hint="Fix that line, or move the file away."
        ) from exc
    _fill_config(config, data)
    return config


def _fill_config(config: Config, data: dict[str, Any]) -> None:
    where = str(config.path)
    for key in data:
        if key not in ("default_profile", "default_model", "provider_defaults", "profiles", *SWITCHES):
            raise ConfigError(
                f"{where}: unknown top-level key '{key}'",
                hint="Allowed: default_profile, default_model, profiles, " + ", ".join(SWITCHES) + ".",
            )
    _check_top_level(where, data)
    for key in SWITCHES:
        if key in data:
            setattr(config, key, data[key])
    config.default_profile = data.get("default_profile")
    config.default_model = data.get("default_model")
    config.provider_defaults = dict(data.get("provider_defaults", {}))
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{where}: 'profiles' must be a table of [profiles.NAME] sections")
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            raise ConfigError(f"{where}: profile '{name}' must be a table")
        for key in profile:
            if key not in PROFILE_KEYS:
                raise ConfigError(
                    f"{where}: profile '{name}' has unknown key '{key}'", hint="Allowed: " + ", ".join(PROFILE_KEYS)
                )
            _check_config_value(f"{where}: profile '{name}'", key, profile[key])
    config.profiles = profiles


def _check_top_level(where: str, data: dict[str, Any]) -> None:
    if not isinstance(data.get("default_profile", ""), str):
        raise ConfigError(f"{where}: 'default_profile' must be a profile name in quotes")
    if not isinstance(data.get("default_model", ""), str):
        raise ConfigError(f"{where}: 'default_model' must be a model name in quotes, e.g. \"openai/gpt-image-2\"")
    for key in SWITCHES:
        if not isinstance(data.get(key, False), bool):
            raise ConfigError(f"{where}: '{key}' must be true or false")
    defaults = data.get("provider_defaults", {})
    if not isinstance(defaults, dict) or not all(isinstance(v, str) for v in defaults.values()):
        raise ConfigError(f"{where}: 'provider_defaults' must map provider names to profile names in quotes")


def _check_config_value(where: str, key: str, value: Any) -> None:
    """Numbers where numbers belong (finite, in range), text everywhere else: exit 3 naming the key."""
    from .checks import RANGES, number_problem, quoted, text_problem

    if isinstance(value, str) and value.startswith(ENV_REF):
        return  # checked when the variable is read (`_check_numbers`)
    if key in NUMBER_KEYS:
        problem = number_problem(value, RANGES[key])
        if problem:
            raise ConfigError(f"{where}: '{key}' is {quoted(value)}; it {problem}", hint="Fix it in the config file.")
        return
    problem = "must be text in quotes" if not isinstance(value, str) else text_problem(value)
    if problem:
        raise ConfigError(f"{where}: '{key}' {problem}", hint="Fix it in the config file.")


def _check_numbers(values: dict[str, Setting]) -> None:
    """timeout and rpm from wherever they came (an os.environ/ reference gives text): numbers in range.
    A flag or Python argument that is wrong is a usage error; a config or variable, a config error."""
    from .checks import RANGES, number_problem, param_error, quoted

    for key in NUMBER_KEYS:
        setting = values.get(key)
        if setting is None or setting.value is None:
            continue
        value = setting.value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # left as text: the check below says it is not a number
                value = float(value.strip())
        problem = number_problem(value, RANGES[key])
        if problem and setting.source == "flag":  # a flag or a Python argument: worded as its caller names it
            raise param_error("{given} {problem}", param=key, value=setting.value, problem=problem)
        if problem:
            raise ConfigError(f"{key} {quoted(setting.value)} (from {setting.source}) {problem}")
        values[key] = replace(setting, value=value)


def save_config(config: Config) -> None:
    """Write config.toml atomically."""
    import tomli_w

    write_atomically(config.path, tomli_w.dumps(config.to_toml()))


def write_atomically(path: Path, text: str) -> None:
    """A file in the config directory, whole or not at all: a 0600 temporary file in the same 0700
    directory, then a rename over the old one."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_value(key: str, value: str) -> Any:
    """Validate and convert a value given to `config set`."""
    if key not in PROFILE_KEYS:
        raise UsageError(f"unknown config key '{key}'", hint="Allowed: " + ", ".join(PROFILE_KEYS) + ".")
    if value.startswith(ENV_REF):
        return value
    if key == "provider" and value not in PROVIDERS:
        raise UsageError(f"unknown provider '{value}'", hint="Use one of: " + ", ".join(PROVIDERS) + ".")
    if key == "model":
        parse_model(value)
    if key in NUMBER_KEYS:
        return _number(key, value)
    if key in HEADER_SETTINGS:  # refused now rather than at every later run
        value = value.strip(" \t")
        try:
            _check_header_value(key, Setting(value, "flag"))
        except ConfigError as exc:
            raise UsageError(exc.message, hint="Give the value without it.") from exc
    return value


def _number(key: str, value: str) -> int | float:
    from .checks import RANGES, number_problem

    try:
        number: int | float = int(value) if key == "rpm" else float(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{key} must be a number, not '{value}'") from None
    problem = number_problem(number, RANGES[key])
    if problem:
        raise UsageError(f"{key} {value} {problem}")
    return number


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str
    missing_ref: str | None = None  # the variable an unset os.environ/ reference names


@dataclass
class Resolved:
    """Every setting `generate` will use, with where it came from (what `config explain` prints)."""

    model: ModelRef
    model_source: str
    profile: str | None
    values: dict[str, Setting]
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        setting = self.values.get(key)
        return default if setting is None or setting.value is None else setting.value

    def given(self, key: str) -> bool:
        """The user set `key` (a flag, a profile, the environment): it is not imggen's default."""
        setting = self.values.get(key)
        return setting is not None and setting.value is not None and setting.source not in ("default", "unset")

    def require(self, key: str, what: str, hint: str) -> Any:
        """The value of `key`, or a ConfigError naming exactly what is missing."""
        setting = self.values.get(key)
        if setting is not None and setting.value is not None:
            return setting.value
        if setting is not None and setting.missing_ref:
            raise ConfigError(f"{what}: {setting.source} refers to ${setting.missing_ref}, which is not set")
        raise ConfigError(f"{what} is not set for {self.model.name}", hint=hint)


def resolve(
    model: str | None = None,
    profile: str | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> Resolved:
    """flag/argument > profile named by --profile > environment > provider's default profile > default."""
    env = os.environ if env is None else env
    config = config if config is not None else load_config()
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    explicit, explicit_source = _explicit_profile(profile, env, config)
    ref, model_source = _model(model, explicit, env, config)
    _check_profile_provider(explicit, ref, config)
    fallback = None if explicit else _provider_default(ref.provider, config)
    layers = _layers(flags, env, config, explicit, fallback, ref.provider)
    keys = _setting_keys(ref.provider)
    values = {key: _first(key, layers, env) for key in keys}
    cleaned = _clean_secrets(values)
    if explicit:
        values["profile"] = Setting(explicit, explicit_source)
    elif fallback:
        values["profile"] = Setting(fallback, "default")
    _check_numbers(values)
    resolved = Resolved(ref, model_source, explicit or fallback, values, list(config.warnings) + cleaned)
    _complete(resolved)
    return resolved


def _complete(resolved: Resolved) -> None:
    """Let the provider fill settings only it can derive (Bedrock's region from the AWS config)."""
    get_provider(resolved.model.provider).complete_settings(resolved)


def _explicit_profile(profile: str | None, env: Mapping[str, str], config: Config) -> tuple[str | None, str]:
    name, source = (profile, "flag") if profile else (env.get("IMGGEN_PROFILE") or None, "env:IMGGEN_PROFILE")
    if name and name not in config.profiles:
        known = ", ".join(config.profiles) or "none yet"
        raise ConfigError(f"no profile named '{name}' in {config.path}", hint=f"Known profiles: {known}.")
    return name, source


def default_model(config: Config, env: Mapping[str, str] | None = None) -> tuple[ModelRef, str]:
    """The model `generate` uses without -m, and where that comes from (`imggen models default`)."""
    env = os.environ if env is None else env
    explicit, _ = _explicit_profile(None, env, config)
    return _model(None, explicit, env, config)


def _model(model: str | None, explicit: str | None, env: Mapping[str, str], config: Config) -> tuple[ModelRef, str]:
    """-m > IMGGEN_MODEL > the --profile's model > default_model > the default profile's model > built-in."""
    if model:
        return parse_model(model), "flag"
    if env.get("IMGGEN_MODEL"):
        return parse_model(env["IMGGEN_MODEL"]), "env:IMGGEN_MODEL"
    if explicit and config.profiles.get(explicit, {}).get("model"):
        return parse_model(str(config.profiles[explicit]["model"])), f"profile:{explicit}"
    if config.default_model:
        ref = _config_model(config)
        if explicit is None or config.profile_provider(explicit) in (None, ref.provider):
            return ref, "config:default_model"
    name = None if explicit else config.default_profile
    if name and config.profiles.get(name, {}).get("model"):
        return parse_model(str(config.profiles[name]["model"])), f"profile:{name}"
    if explicit and config.profile_provider(explicit) not in (None, DEFAULT_PROVIDER):
        raise UsageError(
            f"profile '{explicit}' sets no model",
            hint=f"Pass -m, or: imggen config set {explicit} model <provider/model>",
        )
    return parse_model(DEFAULT_MODEL), "default"


def _config_model(config: Config) -> ModelRef:
    try:
        return parse_model(str(config.default_model))
    except UsageError as exc:  # the file's fault, not the command line's
        raise ConfigError(
            f"{config.path}: default_model: {exc.message}", hint="Set it again: imggen models default MODEL"
        ) from exc


def _check_profile_provider(explicit: str | None, ref: ModelRef, config: Config) -> None:
    provider = config.profile_provider(explicit) if explicit else None
    if provider and provider != ref.provider:
        raise UsageError(
            f"model {ref.name} is a {ref.provider} model but profile '{explicit}' is for {provider}",
            hint=f"Pick a {provider}/ model or a {ref.provider} profile.",
        )


def _provider_default(provider: str, config: Config) -> str | None:
    for name in (config.provider_defaults.get(provider), config.default_profile, provider):
        if name and name in config.profiles and config.profile_provider(name) == provider:
            return name
    return None


def _setting_keys(provider: str) -> list[str]:
    spec = PROVIDER_SPECS[provider]
    keys = ["api_key", "api_base", "api_version", *spec.env, "timeout", "rpm", "output_dir"]
    return list(dict.fromkeys(keys))


def _layers(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Config,
    explicit: str | None,
    fallback: str | None,
    provider: str,
) -> list[tuple[str, Mapping[str, Any]]]:
    spec = PROVIDER_SPECS[provider]
    return [
        ("flag", flags),
        ("env", {"output_dir": ("IMGGEN_OUTPUT_DIR",)}),  # stands in for -o when it is absent
        (f"profile:{explicit}", config.profiles.get(explicit, {}) if explicit else {}),
        ("env", spec.env),
        (f"profile:{fallback}", config.profiles.get(fallback, {}) if fallback else {}),
        ("default", {**GENERIC_DEFAULTS, **spec.defaults}),
    ]


def _first(key: str, layers: list[tuple[str, Mapping[str, Any]]], env: Mapping[str, str]) -> Setting:
    for source, layer in layers:
        if source == "env":
            for name in layer.get(key, ()):
                if env.get(name):
                    return Setting(env[name], f"env:{name}")
            continue
        value = layer.get(key)
        if value is None or value == "":
            continue
        setting = _env_ref(value, source, env) if isinstance(value, str) and value.startswith(ENV_REF) else None
        if isinstance(value, str) and value.startswith(KEYRING_REF):
            setting = _keyring_ref(key, value, source)
        return setting or Setting(value, source)
    return Setting(None, "unset")


def remember_secret(value: str) -> None:
    """Mask `value` wherever imggen prints (keys from settings, tokens fetched at run time)."""
    remember(value)


def _clean_secrets(values: dict[str, Setting]) -> list[str]:
    """Check and remember every secret before anything is sent (see clean_secret)."""
    notes = []
    for key, setting in values.items():
        values[key], note = clean_secret(key, setting)
        notes += [note] if note else []
    return notes


def clean_secret(key: str, setting: Setting) -> tuple[Setting, str | None]:
    """A value sent in a header: surrounding spaces dropped with a note; a line break or another
    character a header cannot hold is a ConfigError naming where it came from (sent, it would fail
    as a network error and be retried). Every secret is remembered, to be masked wherever shown."""
    note = None
    if key in HEADER_SETTINGS and isinstance(setting.value, str):
        value = setting.value.strip(" \t")
        if value != setting.value:
            note = f"{_where(key, setting)} has spaces around it; imggen uses it without them"
            if not value:
                note = f"{_where(key, setting)} holds only spaces; imggen treats it as not set"
            setting = Setting(value or None, setting.source, setting.missing_ref)
        _check_header_value(key, setting)
    remember_setting(key, setting.value)
    return setting, note


def _check_header_value(key: str, setting: Setting) -> None:
    for char in str(setting.value or ""):
        if " " <= char <= "~":
            continue
        if char in "\r\n":
            what = "a line break" if char == "\n" else "a carriage return"
            problem = f"contains {what} (often from a file with Windows line endings)"
        elif char < " " or char == "\x7f":
            problem = f"contains a control character (U+{ord(char):04X}), which an HTTP header cannot carry"
        else:
            problem = "contains a non-ASCII character, which an HTTP header cannot carry"
        raise ConfigError(f"{_where(key, setting)} {problem}", hint="Set it again without that character.")


def _where(key: str, setting: Setting) -> str:
    """The name a user knows the value by: the variable, or the key and where it was set."""
    if setting.source.startswith("env:"):
        return setting.source[4:]
    return key if setting.source == "flag" else f"{key} (from {setting.source})"


def _env_ref(value: str, source: str, env: Mapping[str, str]) -> Setting:
    name = value[len(ENV_REF) :]
    if env.get(name):
        return Setting(env[name], f"{source} ({value})")
    return Setting(None, f"{source} ({value})", missing_ref=name)


def _keyring_ref(key: str, value: str, source: str) -> Setting:
    """A `keyring:` reference, read from the OS keyring only when a profile holds one."""
    from .keyrings import fetch

    return Setting(fetch(value, f"{key} (from {source})"), f"{source} ({value})")


def credentials_configured(provider: str, config: Config, env: Mapping[str, str] | None = None) -> bool:
    """Whether any of the provider's credentials actually resolves: a variable that is set, a profile
    value (its os.environ/ reference set), AWS's or Google's files. No network call, no metadata server."""
    env = os.environ if env is None else env
    names = [n for n in config.profiles if config.profile_provider(n) == provider]
    candidates = [{k: v for k, v in config.profiles[n].items() if k != "provider"} for n in names] + [{}]
    return any(credential_source(provider, profile, env) for profile in candidates)


def credential_source(provider: str, values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """Where the provider's credential comes from, given a profile's (or resolved) values, or None.
    `values` hold profile keys; an os.environ/ reference counts only when the variable is set."""
    env = os.environ if env is None else env
    spec = PROVIDER_SPECS[provider]
    if not spec.needs_credentials:
        return "none needed"
    found = {k: _present(v, env) for k, v in values.items()}
    if found.get("api_key"):
        return "api_key"
    for name in spec.credential_env:
        if env.get(name, "").strip() and name not in spec.chain_env:
            return f"env:{name}"
    return spec.credential_chain(found, env) if spec.credential_chain else None


def _present(value: Any, env: Mapping[str, str]) -> Any:
    """A setting's value as it would resolve: an unset os.environ/ reference or blank text is None."""
    if isinstance(value, str) and value.startswith(ENV_REF):
        value = env.get(value[len(ENV_REF) :])
    return None if value is None or (isinstance(value, str) and not value.strip()) else value
