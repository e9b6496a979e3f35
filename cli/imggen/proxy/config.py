"""LiteLLM's proxy config, read as LiteLLM reads it for everything that concerns images.

Every deployment is resolved into imggen settings at start-up, so a bad entry (an unset
`os.environ/` reference, an unknown provider) stops the server before it listens, naming the entry,
instead of failing every request later. Keys imggen does not use are warnings that name the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import lookup
from ..checks import RANGES, Range, number_problem, quoted
from ..errors import ConfigError, ImggenError
from ..providers import SPECS
from ..secrets import is_secret, remember, remember_setting
from ..settings import ENV_REF, Config, Resolved, Setting, clean_secret, resolve
from ..types import ModelRef

# litellm_params keys that become imggen settings of the same meaning: every provider's settings
# (under their own names and their declared aliases), the common ones and the timeout.
SETTING_KEYS = {
    **{key: key for key in ("api_key", "api_base", "api_version", "timeout")},
    **{key: s.key for spec in SPECS for s in spec.settings for key in (s.key, *s.proxy_aliases)},
}
ROUTING_KEYS = {"model", "rpm", "weight", "drop_params", "base_model", "allow_retired"}
ROUTER_KEYS = {
    "routing_strategy", "num_retries", "timeout", "cooldown_time", "allowed_fails", "fallbacks",
    "model_group_alias", "redis_host", "redis_port", "redis_password",
}  # fmt: skip
SECTIONS = {"model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables"}
STRATEGIES = ("simple-shuffle", "usage-based-routing", "usage-based-routing-v2", "usage-based")
GENERAL_KEYS = {"master_key", "max_request_size_mb", "max_upload_size_mb", "database_url"}
MAX_REQUEST_MB = 1.0  # JSON bodies beyond this are refused unread (413); LiteLLM's max_request_size_mb
# Multipart uploads (/images/edits, /images/variations) beyond this are refused (413), imggen's own key:
# 16 images of up to 50 MB each are OpenAI's limits, but a body that large is held while it is routed,
# so the default keeps a few concurrent uploads within a small server's memory.
MAX_UPLOAD_MB = 64.0


@dataclass
class Deployment:
    id: str
    group: str
    model: str  # as the config names it: azure/my-deployment, bedrock/amazon.nova-canvas-v1:0, …
    settings: Resolved
    rpm: int | None = None
    weight: float = 1.0
    drop_params: bool | None = None
    allow_retired: bool = False  # litellm_params.allow_retired: a retired model is sent all the same


@dataclass
class Router:
    strategy: str = "simple-shuffle"
    num_retries: int = 0
    timeout: float | None = None
    cooldown_time: float = 5.0
    allowed_fails: int = 3
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # aliases that work but /v1/models does not list
    redis: dict[str, Any] | None = None  # host, port, password


@dataclass
class ProxyConfig:
    deployments: list[Deployment]
    router: Router
    master_key: str | None = None
    drop_params: bool = False
    max_request_bytes: int = int(MAX_REQUEST_MB * 1024 * 1024)
    max_upload_bytes: int = int(MAX_UPLOAD_MB * 1024 * 1024)
    warnings: list[str] = field(default_factory=list)
    database_url: str | None = None  # general_settings.database_url: keys and spend (db.py); None: SQLite file

    def groups(self) -> dict[str, list[Deployment]]:
        groups: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            groups.setdefault(deployment.group, []).append(deployment)
        return groups


def load(path: Path) -> ProxyConfig:
    """Read, check and resolve a LiteLLM proxy config file."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_first_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a LiteLLM proxy config (expected a mapping with model_list)")
    return parse(raw, str(path))


def parse(raw: dict[str, Any], where: str = "config") -> ProxyConfig:
    warnings: list[str] = []
    for name, value in _mapping(raw, "environment_variables", where).items():
        os.environ[str(name)] = str(_env(value, f"environment_variables.{name}"))  # as LiteLLM does, before the rest
    unknown = set(raw) - SECTIONS
    warnings += [f"{where}: '{key}' is not used by imggen serve" for key in sorted(unknown)]
    litellm_settings = _mapping(raw, "litellm_settings", where)
    warnings += [f"litellm_settings.{k} is not used by imggen serve" for k in litellm_settings if k != "drop_params"]
    general = _mapping(raw, "general_settings", where)
    warnings += [f"general_settings.{k} is not used by imggen serve" for k in general if k not in GENERAL_KEYS]
    master_key = _env(general.get("master_key"), "general_settings.master_key")
    if master_key:
        master_key = _clean_master_key(str(master_key), warnings)
    size_mb = _megabytes(general, "max_request_size_mb", MAX_REQUEST_MB)
    upload_mb = _megabytes(general, "max_upload_size_mb", MAX_UPLOAD_MB)
    router = _router(_mapping(raw, "router_settings", where), warnings)
    entries = raw.get("model_list") or []
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} has no model_list entries", hint="Add at least one model_name + litellm_params.")
    deployments = [_deployment(i, entry, router, warnings) for i, entry in enumerate(entries)]
    _unique_ids(deployments, entries)
    drop = _env(litellm_settings.get("drop_params", False), "litellm_settings.drop_params")
    config = ProxyConfig(deployments, router, str(master_key) if master_key else None,
                         flag(drop, "litellm_settings.drop_params"), max(1, int(size_mb * 1024 * 1024)),
                         max(1, int(upload_mb * 1024 * 1024)), warnings)  # fmt: skip
    config.database_url = _database_url(general)
    _check_names(config)
    return config


def _database_url(general: dict[str, Any]) -> str | None:
    """LiteLLM's database_url (os.environ/DATABASE_URL works); its password is masked like any secret."""
    value = _env(general.get("database_url"), "general_settings.database_url")
    if not value:
        return None
    remember_setting("database_url", str(value))
    return str(value)


def _megabytes(general: dict[str, Any], key: str, default: float) -> float:
    where = f"general_settings.{key}"
    value = _env(general.get(key), where)
    return default if value is None else float(number(value, where, Range(0, above=True)))


def _router(settings: dict[str, Any], warnings: list[str]) -> Router:
    warnings += [f"router_settings.{k} is not used by imggen serve" for k in settings if k not in ROUTER_KEYS]
    settings = {k: _resolved(v, f"router_settings.{k}") for k, v in settings.items() if k in ROUTER_KEYS}
    aliases = _mapping(settings, "model_group_alias", "router_settings")
    strategy = str(settings.get("routing_strategy") or "simple-shuffle")
    if strategy not in STRATEGIES:
        warnings.append(f"router_settings.routing_strategy '{strategy}' is not supported; using simple-shuffle")
        strategy = "simple-shuffle"
    router = Router(
        strategy="usage-based" if strategy.startswith("usage-based") else strategy,
        num_retries=_number(settings, "num_retries", 0, RANGES["retries"]),
        timeout=_number(settings, "timeout", None, RANGES["timeout"]),
        cooldown_time=_number(settings, "cooldown_time", 5.0, Range(0)),
        allowed_fails=_number(settings, "allowed_fails", 3, Range(0, whole=True)),
        fallbacks=_fallbacks(settings.get("fallbacks")),
        aliases={str(k): _alias_target(v) for k, v in aliases.items()},
        hidden={str(k) for k, v in aliases.items() if isinstance(v, dict) and v.get("hidden")},
    )
    if settings.get("redis_password"):
        remember(str(settings["redis_password"]))
    if settings.get("redis_host"):
        router.redis = {
            "host": str(settings["redis_host"]),
            "port": _number(settings, "redis_port", 6379, Range(1, 65535, whole=True)),
            "password": settings.get("redis_password"),
        }
    return router


def _alias_target(value: Any) -> str:
    """An alias maps to a model name, or (newer LiteLLM) to {"model": name, "hidden": bool}."""
    return str(value.get("model") if isinstance(value, dict) else value)


FALLBACKS_HINT = "e.g. fallbacks: [{dall-e-3: [gpt-image-1]}]"


def _fallbacks(value: Any) -> dict[str, list[str]]:
    """LiteLLM writes fallbacks as a list of one-key mappings: [{"dall-e-3": ["gpt-image-1"]}]."""
    result: dict[str, list[str]] = {}
    if value is not None and not isinstance(value, list):
        raise ConfigError("router_settings.fallbacks must be a list of mappings", hint=FALLBACKS_HINT)
    for item in value or []:
        if not isinstance(item, dict):
            raise ConfigError(f"router_settings.fallbacks: {quoted(item)} is not a mapping", hint=FALLBACKS_HINT)
        for name, targets in item.items():
            result[str(name)] = [str(t) for t in (targets if isinstance(targets, list) else [targets])]
    return result


def _deployment(index: int, entry: Any, router: Router, warnings: list[str]) -> Deployment:
    if not isinstance(entry, dict) or not entry.get("model_name") or "litellm_params" not in entry:
        raise ConfigError(f"model_list[{index}] needs model_name and litellm_params")
    if not isinstance(entry["model_name"], str | int | float) or isinstance(entry["model_name"], bool):
        raise ConfigError(f"model_list[{index}]: model_name must be a string, not {quoted(entry['model_name'])}")
    where = f"model_list[{index}] ({entry['model_name']})"
    for key in ("litellm_params", "model_info"):
        if entry.get(key) is not None and not isinstance(entry[key], dict):
            raise ConfigError(f"{where}: {key} must be a mapping, not {quoted(entry[key])}")
    entry = _resolved(entry, where)
    group = str(entry["model_name"])
    params = dict(entry["litellm_params"] or {})
    if not params.get("model"):
        raise ConfigError(f"{where}: litellm_params.model is missing", hint="e.g. model: openai/dall-e-3")
    if not isinstance(params["model"], str):
        raise ConfigError(f"{where}: litellm_params.model must be a string, not {quoted(params['model'])}")
    flags: dict[str, Any] = {}
    for key, value in params.items():
        if key in SETTING_KEYS:
            flags[SETTING_KEYS[key]] = value
        elif key not in ROUTING_KEYS:
            warnings.append(f"{where}: litellm_params.{key} is not used by imggen serve")
    if flags.get("timeout") is not None:
        flags["timeout"] = number(flags["timeout"], f"{where}: litellm_params.timeout", RANGES["timeout"])
    if "timeout" not in flags and router.timeout:
        flags["timeout"] = router.timeout
    model = str(params["model"])  # resolve() remembers the secrets among the flags, to mask them
    try:
        settings = resolve(model=model, flags=flags, env=os.environ, config=Config(Path(where)))
    except ImggenError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc
    warnings += [f"{where}: {text}" for text in settings.warnings]
    if params.get("base_model"):
        _use_base_model(settings, str(params["base_model"]), where, warnings)
    info = entry.get("model_info") or {}
    rpm, weight, drop = params.get("rpm"), params.get("weight"), params.get("drop_params")
    allowed = params.get("allow_retired")
    allow = allowed is not None and flag(allowed, f"{where}: litellm_params.allow_retired")
    warnings += _lifecycle_warnings(settings, allow, where)
    return Deployment(
        id=str(info.get("id") or _generated_id(group, params)), group=group, model=model, settings=settings,
        rpm=None if rpm is None else number(rpm, f"{where}: litellm_params.rpm", Range(0, whole=True, above=True)),
        weight=1.0 if weight is None else number(weight, f"{where}: litellm_params.weight", Range(0, above=True)),
        drop_params=None if drop is None else flag(drop, f"{where}: litellm_params.drop_params"), allow_retired=allow,
    )  # fmt: skip


def _lifecycle_warnings(settings: Resolved, allow: bool, where: str) -> list[str]:
    """A deprecated or retired model on its provider's own endpoint starts the server all the same,
    with a warning; requests routed to a retired one are refused unless allow_retired is set."""
    from ..plan import deprecated_text, on_own_endpoint, retired_error, retired_text

    info = settings.model.info
    if info is None or not on_own_endpoint(settings):
        return []
    status = info.status()
    if status == "deprecated":
        return [f"{where}: {deprecated_text(info)}"]
    if status != "retired":
        return []
    if allow:
        return [f"{where}: {retired_text(info)}; requests routed to it are sent anyway (allow_retired: true)"]
    refusal = retired_error(info).message
    return [f"{where}: {refusal}; requests routed to it are answered 400 unless litellm_params.allow_retired is true"]


def _use_base_model(settings: Resolved, base: str, where: str, warnings: list[str]) -> None:
    """An Azure deployment's name says nothing of its model; `base_model` gives its rules and price."""
    ref = settings.model
    name = base if "/" in base else f"{ref.provider}/{base}"
    info = lookup(name)
    if info is None:
        warnings.append(f"{where}: base_model '{base}' is not in imggen's catalog; no rules or price for it")
        return
    settings.model = ModelRef(ref.provider, ref.model_id, info)


def _generated_id(group: str, params: dict[str, Any], repeat: int = 0) -> str:
    """Stable across restarts and instances (shared rate limits and cooldowns key on it), as LiteLLM's
    is, but public (x-litellm-model-id, /health): it hashes the entry without its secret values, so it
    cannot be used to test a guessed key offline. `repeat` tells apart entries that differ only there."""
    public = {k: v for k, v in params.items() if not is_secret(k, v)}
    text = group + json.dumps(public, sort_keys=True, default=str) + (f"#{repeat}" if repeat else "")
    return hashlib.sha256(text.encode()).hexdigest()


def _unique_ids(deployments: list[Deployment], entries: list[Any]) -> None:
    """Entries the same but for their keys get the generated id of their order among those entries."""
    seen: dict[str, int] = {}
    for deployment, entry in zip(deployments, entries, strict=True):
        if (entry.get("model_info") or {}).get("id"):
            continue
        repeat = seen.get(deployment.id, 0)
        seen[deployment.id] = repeat + 1
        if repeat:
            deployment.id = _generated_id(deployment.group, _resolved(entry["litellm_params"], ""), repeat)


def _clean_master_key(value: str, warnings: list[str]) -> str:
    """The master key is checked like an upstream key: clients send it in a header."""
    try:
        setting, note = clean_secret("master_key", Setting(value, "flag"))
    except ConfigError as exc:
        raise ConfigError(f"general_settings: {exc.message}", hint=exc.hint) from exc
    warnings += [f"general_settings: {note}"] if note else []
    return str(setting.value)


def _check_names(config: ProxyConfig) -> None:
    groups = config.groups()
    for name, targets in config.router.fallbacks.items():
        for target in [name, *targets]:
            if target not in groups and target not in config.router.aliases:
                raise ConfigError(f"router_settings.fallbacks names '{target}', which no model_list entry has")
    for alias, target in config.router.aliases.items():
        if target not in groups:
            raise ConfigError(f"router_settings.model_group_alias '{alias}' points at unknown model '{target}'")


def _resolved(value: Any, where: str) -> Any:
    """`os.environ/NAME` resolved anywhere inside a value (mappings and lists included)."""
    if isinstance(value, dict):
        return {k: _resolved(v, f"{where}: {k}" if ":" not in where else f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, where) for v in value]
    return _env(value, where)


def _env(value: Any, where: str) -> Any:
    """`os.environ/NAME` anywhere: the variable's value, and a start-up error when it is not set."""
    if isinstance(value, str) and value.startswith(ENV_REF):
        name = value[len(ENV_REF) :]
        if not os.environ.get(name):
            raise ConfigError(f"{where} refers to os.environ/{name}, which is not set", hint=f"Set {name} or edit it.")
        return os.environ[name]
    return value


def _number(settings: dict[str, Any], key: str, default: Any, limits: Range) -> Any:
    """A router number where 0 means 0 (allowed_fails: 0 cools down at the first failure)."""
    value = settings.get(key)
    return default if value in (None, "") else number(value, f"router_settings.{key}", limits)


def number(value: Any, where: str, limits: Range) -> Any:
    """A number from YAML or from an os.environ/ string (always text), checked as the CLI checks its
    flags (checks.py): anything else stops the start-up naming where it is (exit 3)."""
    parsed: float | int | None = _parsed(value)
    if parsed is not None and limits.whole and float(parsed).is_integer():
        parsed = int(parsed)
    problem = f"must be {limits.describe()}" if parsed is None else number_problem(parsed, limits)
    if problem:
        raise ConfigError(f"{where} {problem}, not {quoted(value)}")
    return parsed


def _parsed(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        parsed = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def flag(value: Any, where: str) -> bool:
    """true/false, also as the text an os.environ/ reference gives."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return text in ("true", "yes", "on", "1")
    raise ConfigError(f"{where} must be true or false, not {quoted(value)}")


def _mapping(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping, not {quoted(value)}")
    return value


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
