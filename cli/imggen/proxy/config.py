"""LiteLLM's proxy config, read as LiteLLM reads it for everything that concerns images.

A config LiteLLM starts, imggen starts: entries that are not image models (chat, embeddings, other
providers) are skipped, a deployment whose `os.environ/` reference is unset is disabled (its model
answers 503 saying why) and the rest serve; each of these, and the keys imggen does not use, is one
grouped warning at start-up. `imggen serve --strict` refuses to start on a disabled deployment instead.
A wrong value (a number that is not one, a bad mapping) still stops the start-up, naming its key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import family_of, lookup, parse_model
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
ROUTING_KEYS = {
    "model", "rpm", "weight", "drop_params", "base_model", "allow_retired", "model_id", "max_parallel_requests",
}  # fmt: skip
ROUTER_KEYS = {
    "routing_strategy", "num_retries", "timeout", "cooldown_time", "allowed_fails", "fallbacks",
    "model_group_alias", "redis_host", "redis_port", "redis_password", "retry_policy",
    "content_policy_fallbacks", "default_fallbacks",
}  # fmt: skip
# litellm_settings keys imggen reads; all but drop_params and request_timeout are router_settings' too
# (router_settings wins where both are set), as LiteLLM's proxy reads them from either section.
SHARED_KEYS = ("num_retries", "fallbacks", "content_policy_fallbacks", "default_fallbacks", "allowed_fails",
               "cooldown_time")  # fmt: skip
LITELLM_KEYS = {"drop_params", "request_timeout", *SHARED_KEYS}
INFO_KEYS = {"id", "base_model", "mode"}  # model_info keys imggen reads; the rest are LiteLLM's metadata
SECTIONS = {"model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables"}
STRATEGIES = ("simple-shuffle", "usage-based-routing", "usage-based-routing-v2", "usage-based",
              "latency-based-routing")  # fmt: skip
IMAGE_MODES = ("image_generation", "image_edit")  # LiteLLM's model_info.mode of image models
# LiteLLM's RetryPolicy fields, by the kind of failure each counts retries of.
RETRY_POLICY = {
    "BadRequestErrorRetries": "bad_request", "AuthenticationErrorRetries": "auth", "TimeoutErrorRetries": "timeout",
    "RateLimitErrorRetries": "rate_limit", "ContentPolicyViolationErrorRetries": "content_policy",
    "InternalServerErrorRetries": "server",
}  # fmt: skip
# Ids of models that do not make images (chat, embeddings, audio, rerank, video), whoever serves them:
# a config entry naming one is skipped. An id with "image", "imagen" or "dall-e" in it is an image model.
NOT_IMAGE_IDS = re.compile(
    r"(^|[/.:])(gpt-?[345]|o[1-9]($|-)|chatgpt|text-|davinci|babbage|curie|ada-|claude|llama|mistral|mixtral|"
    r"codestral|pixtral|ministral|command|embed|rerank|whisper|tts|titan-(text|embed|tg1)|nova-(micro|lite|pro|"
    r"premier|sonic|reel)|jamba|j2-|qwen|deepseek|phi-?\d|gemma|gemini-(?!.*image)|grok|sonar|moderation|"
    r"computer-use|codex|realtime|audio|transcribe|veo|sora|zephyr|vicuna|llava|falcon|granite|kimi|glm-|yi-|"
    r"sentence-|bge-|e5-|nomic-|voyage)",
    re.IGNORECASE,
)
IMAGE_IDS = re.compile(r"image|dall-e|stable-diffusion|sdxl|sd3|flux", re.IGNORECASE)
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
    max_parallel: int | None = None  # litellm_params.max_parallel_requests: calls in flight at once here


@dataclass
class Disabled:
    """A deployment that cannot serve: an `os.environ/` reference it uses is not set."""

    id: str
    group: str
    model: str
    variables: list[str]
    where: str = ""  # model_list[i] (name)

    @property
    def reason(self) -> str:
        names = ", ".join(f"os.environ/{v}" for v in self.variables)
        return f"deployment disabled: {names} {'is' if len(self.variables) == 1 else 'are'} not set"


@dataclass
class Skipped:
    """A model_list entry that is not an image model (a chat model, an embedding model, …)."""

    group: str
    model: str
    reason: str
    id: str | None = None  # model_info.id, which a fallback may name


@dataclass
class Router:
    strategy: str = "simple-shuffle"
    num_retries: int = 0
    timeout: float | None = None
    cooldown_time: float = 5.0
    allowed_fails: int = 3
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    default_fallbacks: list[str] = field(default_factory=list)
    retry_policy: dict[str, int] = field(default_factory=dict)  # kind of failure (RETRY_POLICY) -> retries
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
    disabled: list[Disabled] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    strict: bool = False  # --strict: Redis unreachable at start stops the server instead of degrading
    database_url: str | None = None  # general_settings.database_url: keys and spend (db.py); None: SQLite file

    def groups(self) -> dict[str, list[Deployment]]:
        groups: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            groups.setdefault(deployment.group, []).append(deployment)
        return groups

    def disabled_groups(self) -> dict[str, list[Disabled]]:
        """Model names whose every deployment is disabled: they answer 503 with the reason."""
        enabled = self.groups()
        groups: dict[str, list[Disabled]] = {}
        for entry in self.disabled:
            if entry.group not in enabled:
                groups.setdefault(entry.group, []).append(entry)
        return groups


@dataclass
class _Notes:
    """What start-up says once, grouped: keys not used, variables not set."""

    ignored: dict[str, None] = field(default_factory=dict)  # dotted keys, in the order met
    unset: dict[str, None] = field(default_factory=dict)

    def ignore(self, key: str) -> None:
        self.ignored[key] = None


def load(path: Path, strict: bool = False) -> ProxyConfig:
    """Read, check and resolve a LiteLLM proxy config file."""
    return parse(_read(path), str(path), strict)


def database_url_of(path: Path) -> str | None:
    """A config file's general_settings.database_url alone (`imggen serve spend`: its deployments need
    not be servable to read the spend they logged)."""
    return _database_url(_mapping(_read(path), "general_settings", str(path)))


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_first_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a LiteLLM proxy config (expected a mapping with model_list)")
    return raw


def parse(raw: dict[str, Any], where: str = "config", strict: bool = False) -> ProxyConfig:
    warnings: list[str] = []
    notes = _Notes()
    for name, value in _mapping(raw, "environment_variables", where).items():
        value = _env(value, f"environment_variables.{name}", notes)
        if value is not None:  # as LiteLLM does, before the rest
            os.environ[str(name)] = str(value)
    for key in raw:
        if key not in SECTIONS:
            notes.ignore(str(key))
    litellm_settings = _mapping(raw, "litellm_settings", where)
    for key in litellm_settings:
        if key not in LITELLM_KEYS:
            notes.ignore(f"litellm_settings.{key}")
    general = _mapping(raw, "general_settings", where)
    for key in general:
        if key not in GENERAL_KEYS:
            notes.ignore(f"general_settings.{key}")
    master_key = _env(general.get("master_key"), "general_settings.master_key")  # unset: never serve without it
    if master_key:
        master_key = _clean_master_key(str(master_key), warnings)
    size_mb = _megabytes(general, "max_request_size_mb", MAX_REQUEST_MB)
    upload_mb = _megabytes(general, "max_upload_size_mb", MAX_UPLOAD_MB)
    litellm = {k: _env(litellm_settings[k], f"litellm_settings.{k}", notes) for k in LITELLM_KEYS
               if k in litellm_settings}  # fmt: skip
    router = _router(_mapping(raw, "router_settings", where), litellm, notes, warnings)
    entries = raw.get("model_list") or []
    if not isinstance(entries, list) or not entries:  # entries that are all skipped start; none at all is a mistake
        raise ConfigError(f"{where} has no model_list entries", hint="Add at least one model_name + litellm_params.")
    deployments: list[Deployment] = []
    disabled: list[Disabled] = []
    skipped: list[Skipped] = []
    kept: list[Any] = []
    for index, entry in enumerate(entries):
        made = _deployment(index, entry, router, notes, warnings)
        if isinstance(made, Deployment):
            deployments.append(made)
            kept.append(entry)
        elif isinstance(made, Disabled):
            disabled.append(made)
        else:
            skipped.append(made)
    _unique_ids(deployments, kept)
    drop = _env(litellm.get("drop_params", False), "litellm_settings.drop_params") or False
    config = ProxyConfig(deployments, router, str(master_key) if master_key else None,
                         flag(drop, "litellm_settings.drop_params"), max(1, int(size_mb * 1024 * 1024)),
                         max(1, int(upload_mb * 1024 * 1024)), warnings, disabled, skipped, strict)  # fmt: skip
    config.database_url = _database_url(general)
    _check_names(config, warnings)
    warnings += _grouped(config, notes)
    if strict and notes.unset:
        names = ", ".join(f"os.environ/{v}" for v in notes.unset)
        users = "; ".join(f"{d.where} uses {', '.join(d.variables)}" for d in disabled) or "router or litellm settings"
        raise ConfigError(
            f"{where} refers to {names}, which {'is' if len(notes.unset) == 1 else 'are'} not set ({users})",
            hint="Set them, or start without --strict to serve the deployments that do not need them.",
        )
    if not deployments and not disabled:
        warnings.append(f"{where} has no image model in model_list: every images request will be answered 400")
    return config


def _grouped(config: ProxyConfig, notes: _Notes) -> list[str]:
    """One warning for each kind of thing start-up passes over, naming every one of them."""
    said = []
    if config.skipped:
        shown = "; ".join(f"{s.group} ({s.model}: {s.reason})" for s in config.skipped)
        said.append(f"model_list entries that are not image models are skipped ({len(config.skipped)}): {shown}")
    if notes.unset:
        names = ", ".join(f"os.environ/{v}" for v in notes.unset)
        off = ", ".join(f"{d.group} ({d.model})" for d in config.disabled)
        said.append(f"not set: {names}; " + (f"these deployments are disabled: {off}" if off else
                                            "the settings that name them are left out"))  # fmt: skip
    if notes.ignored:
        said.append("not used by imggen serve (ignored): " + ", ".join(notes.ignored))
    return said


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


def _router(settings: dict[str, Any], litellm: dict[str, Any], notes: _Notes, warnings: list[str]) -> Router:
    for key in settings:
        if key not in ROUTER_KEYS:
            notes.ignore(f"router_settings.{key}")
    settings = {k: _resolved(v, f"router_settings.{k}", notes) for k, v in settings.items() if k in ROUTER_KEYS}
    for key in SHARED_KEYS:
        if settings.get(key) is None and litellm.get(key) is not None:  # LiteLLM reads these in either section
            settings[key] = _resolved(litellm[key], f"litellm_settings.{key}", notes)
    if settings.get("timeout") is None and litellm.get("request_timeout") is not None:
        settings["timeout"] = litellm["request_timeout"]
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
        content_policy_fallbacks=_fallbacks(settings.get("content_policy_fallbacks"), "content_policy_fallbacks"),
        default_fallbacks=_names(settings.get("default_fallbacks"), "default_fallbacks"),
        retry_policy=_retry_policy(settings.get("retry_policy"), notes),
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


def _names(value: Any, key: str) -> list[str]:
    """default_fallbacks: a list of model names (one name alone is read as a list of one)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"router_settings.{key} must be a list of model names, not {quoted(value)}")
    return list(value)


def _retry_policy(value: Any, notes: _Notes) -> dict[str, int]:
    """LiteLLM's RetryPolicy: retries per kind of failure, e.g. {RateLimitErrorRetries: 3}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"router_settings.retry_policy must be a mapping, not {quoted(value)}")
    policy = {}
    for key, retries in value.items():
        if key not in RETRY_POLICY:
            notes.ignore(f"router_settings.retry_policy.{key}")
            continue
        if retries is not None:
            policy[RETRY_POLICY[key]] = number(retries, f"router_settings.retry_policy.{key}", RANGES["retries"])
    return policy


def _alias_target(value: Any) -> str:
    """An alias maps to a model name, or (newer LiteLLM) to {"model": name, "hidden": bool}."""
    return str(value.get("model") if isinstance(value, dict) else value)


FALLBACKS_HINT = "e.g. fallbacks: [{dall-e-3: [gpt-image-1]}]"


def _fallbacks(value: Any, key: str = "fallbacks") -> dict[str, list[str]]:
    """LiteLLM writes fallbacks as a list of one-key mappings: [{"dall-e-3": ["gpt-image-1"]}]."""
    result: dict[str, list[str]] = {}
    if value is not None and not isinstance(value, list):
        raise ConfigError(f"router_settings.{key} must be a list of mappings", hint=FALLBACKS_HINT)
    for item in value or []:
        if not isinstance(item, dict):
            raise ConfigError(f"router_settings.{key}: {quoted(item)} is not a mapping", hint=FALLBACKS_HINT)
        for name, targets in item.items():
            result[str(name)] = [str(t) for t in (targets if isinstance(targets, list) else [targets])]
    return result


def _deployment(
    index: int, entry: Any, router: Router, notes: _Notes, warnings: list[str]
) -> Deployment | Disabled | Skipped:
    if not isinstance(entry, dict) or not entry.get("model_name") or "litellm_params" not in entry:
        raise ConfigError(f"model_list[{index}] needs model_name and litellm_params")
    if not isinstance(entry["model_name"], str | int | float) or isinstance(entry["model_name"], bool):
        raise ConfigError(f"model_list[{index}]: model_name must be a string, not {quoted(entry['model_name'])}")
    where = f"model_list[{index}] ({entry['model_name']})"
    for key in ("litellm_params", "model_info"):
        if entry.get(key) is not None and not isinstance(entry[key], dict):
            raise ConfigError(f"{where}: {key} must be a mapping, not {quoted(entry[key])}")
    group = str(entry["model_name"])
    raw = dict(entry["litellm_params"] or {})
    used = {k: v for k, v in raw.items() if k in SETTING_KEYS or k in ROUTING_KEYS}
    raw_info = entry.get("model_info") or {}
    info = {k: raw_info[k] for k in INFO_KEYS if k in raw_info}  # the rest is LiteLLM's metadata
    unset = _unset([used, info])
    if not used.get("model"):
        raise ConfigError(f"{where}: litellm_params.model is missing", hint="e.g. model: openai/dall-e-3")
    model_value = _resolved(used["model"], where, notes)
    if model_value is not None and not isinstance(model_value, str):
        raise ConfigError(f"{where}: litellm_params.model must be a string, not {quoted(model_value)}")
    model = str(model_value or used["model"])
    mode = _resolved(info.get("mode"), where, notes)
    base = _resolved(info.get("base_model") or used.get("base_model"), where, notes)
    reason = None if model_value is None else not_image(model, mode, base)
    if reason:
        return Skipped(group, model, reason, None if info.get("id") is None else str(info["id"]))
    for key in raw:
        if key not in used:
            notes.ignore(f"litellm_params.{key}")
    if unset:
        notes.unset.update(dict.fromkeys(unset))
        return Disabled(str(info.get("id") or _generated_id(group, raw)), group, model, unset, where)
    params, info = _resolved(used, where), _resolved(info, where)
    flags: dict[str, Any] = {SETTING_KEYS[k]: v for k, v in params.items() if k in SETTING_KEYS}
    if flags.get("timeout") is not None:
        flags["timeout"] = number(flags["timeout"], f"{where}: litellm_params.timeout", RANGES["timeout"])
    if "timeout" not in flags and router.timeout:
        flags["timeout"] = router.timeout
    try:  # resolve() remembers the secrets among the flags, to mask them
        settings = resolve(model=model, flags=flags, env=os.environ, config=Config(Path(where)))
    except ImggenError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc
    warnings += [f"{where}: {text}" for text in settings.warnings]
    if base:
        _use_base_model(settings, str(base), where, warnings)
    if params.get("model_id"):  # LiteLLM's Bedrock model_id: an inference profile or ARN, sent in the URL
        ref = settings.model
        settings.model = ModelRef(ref.provider, str(params["model_id"]), ref.info)
    rpm, weight, drop = params.get("rpm"), params.get("weight"), params.get("drop_params")
    allowed, parallel = params.get("allow_retired"), params.get("max_parallel_requests")
    allow = allowed is not None and flag(allowed, f"{where}: litellm_params.allow_retired")
    warnings += _lifecycle_warnings(settings, allow, where)
    whole = Range(0, whole=True, above=True)
    return Deployment(
        id=str(info.get("id") or _generated_id(group, params)), group=group, model=model, settings=settings,
        rpm=None if rpm is None else number(rpm, f"{where}: litellm_params.rpm", whole),
        weight=1.0 if weight is None else number(weight, f"{where}: litellm_params.weight", Range(0, above=True)),
        drop_params=None if drop is None else flag(drop, f"{where}: litellm_params.drop_params"), allow_retired=allow,
        max_parallel=None if parallel is None else number(parallel, f"{where}: litellm_params.max_parallel_requests",
                                                          whole),
    )  # fmt: skip


def not_image(model: str, mode: Any, base: Any) -> str | None:
    """Why a model_list entry is not an image model, or None when it is one.

    LiteLLM's own word first (model_info.mode); then the provider (one imggen does not have makes no
    images here); then imggen's catalog and families (base_model's too); then the id's words: one that
    names an image model ("image", "dall-e", …) is one, one of a chat, embedding or audio family is
    not; an id that is neither (an Azure deployment's name, a model of an OpenAI-compatible server)
    is served as it is, as the CLI sends an unknown id on a known provider."""
    if mode is not None:
        return None if str(mode) in IMAGE_MODES else f"model_info.mode {mode}"
    if "*" in model:
        return "a wildcard route"
    try:
        ref = parse_model(model)
    except ImggenError:
        prefix = model.split("/", 1)[0] if "/" in model else None
        return f"provider {prefix}/ makes no images here" if prefix else "not an image model imggen knows"
    ids = [ref.model_id]
    if base:
        base_ref = f"{ref.provider}/{base}" if "/" not in str(base) else str(base)
        if lookup(base_ref) is not None:
            return None
        ids.insert(0, str(base).rsplit("/", 1)[-1])
    if ref.info is not None or family_of(ref.provider, ref.model_id) is not None:
        return None
    if IMAGE_IDS.search(ids[0]):
        return None
    if NOT_IMAGE_IDS.search(ids[0]):
        return "a chat, embedding or audio model"
    return None


def _unset(values: list[Any]) -> list[str]:
    """The `os.environ/NAME` references inside the values whose variable is not set, in order."""
    found: dict[str, None] = {}
    stack = list(reversed(values))
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
        elif isinstance(value, str) and value.startswith(ENV_REF) and not os.environ.get(value[len(ENV_REF) :]):
            found[value[len(ENV_REF) :]] = None
    return list(found)


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


def _check_names(config: ProxyConfig, warnings: list[str]) -> None:
    """Fallbacks and aliases name model groups: one skipped (not an image model) or disabled is left
    out with a warning; a name no entry has at all is a start-up error (a typo)."""
    known = set(config.groups()) | set(config.disabled_groups()) | {d.id for d in config.deployments}
    skipped = {s.group for s in config.skipped} | {s.id for s in config.skipped if s.id}
    router = config.router
    for table in (router.fallbacks, router.content_policy_fallbacks):
        for name, targets in list(table.items()):
            for target in [name, *targets]:
                if target not in known and target not in router.aliases and target not in skipped:
                    raise ConfigError(f"router_settings.fallbacks names '{target}', which no model_list entry has")
            if name in skipped:
                del table[name]
            else:
                table[name] = [t for t in targets if t not in skipped]
    router.default_fallbacks = [t for t in router.default_fallbacks if t not in skipped]
    for target in router.default_fallbacks:
        if target not in known and target not in router.aliases:
            raise ConfigError(f"router_settings.default_fallbacks names '{target}', which no model_list entry has")
    for alias, target in list(router.aliases.items()):
        if target in skipped:
            del router.aliases[alias]
        elif target not in known:
            raise ConfigError(f"router_settings.model_group_alias '{alias}' points at unknown model '{target}'")


def _resolved(value: Any, where: str, notes: _Notes | None = None) -> Any:
    """`os.environ/NAME` resolved anywhere inside a value (mappings and lists included)."""
    if isinstance(value, dict):
        return {k: _resolved(v, f"{where}: {k}" if ":" not in where else f"{where}.{k}", notes)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_resolved(v, where, notes) for v in value]
    return _env(value, where, notes)


def _env(value: Any, where: str, notes: _Notes | None = None) -> Any:
    """`os.environ/NAME` anywhere: the variable's value. Not set: None, noted for the start-up warning,
    when `notes` is given, else a start-up error (the master key: never serve without it)."""
    if isinstance(value, str) and value.startswith(ENV_REF):
        name = value[len(ENV_REF) :]
        if not os.environ.get(name):
            if notes is not None:
                notes.unset[name] = None
                return None
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
