"""From what the user asked to the requests imggen will send: validation, mapping, fan-out, cost.

Everything here runs before any request, so every mistake it finds is a usage error (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import sizes
from .catalog import ModelInfo, estimate_cost, family_note, input_cost, unknown_id_warning
from .checks import MAX_SEED, RANGES, number_problem, param_error, quoted, text_problem
from .errors import UsageError
from .providers import PROVIDERS, get_provider
from .settings import Resolved
from .types import ImageRequest, InputImage

MAX_N = 10
RESPONSE_FORMATS = ("url", "b64_json")
# Fields a provider's wire format has, for ids the catalog does not know.
PROVIDER_FIELDS = {name: spec.fields for name, spec in PROVIDERS.items()}
# What imggen sets itself, under its own names and the names providers' bodies give them, with the
# parameter to use instead (a flag on the command line): a param may not replace them, or the cost
# estimate, --max-cost, the fan-out and --dry-run would describe something other than what is sent.
PLANNED = {
    "n": "n", "model": "model", "prompt": "prompt", "size": "size", "aspect_ratio": "aspect_ratio",
    "image_size": "size", "quality": "quality", "style": "style", "response_format": "response_format",
    "user": "user", "seed": "seed", "negative_prompt": "negative_prompt",
    "samples": "n", "numberOfImages": "n", "sampleCount": "n", "candidateCount": "n",
    "width": "size", "height": "size", "aspectRatio": "aspect_ratio", "sampleImageSize": "size", "imageSize": "size",
    "text": "prompt", "text_prompts": "prompt", "negativeText": "negative_prompt",
    "negativePrompt": "negative_prompt", "style_preset": "style",
}  # fmt: skip
# Params whose object value is merged into an object imggen fills: their keys are checked too.
MERGED_PARAMS = ("textToImageParams", "imageGenerationConfig", "imageConfig")
# Titan and Nova Canvas take `style` as their own parameter, which --style does not set.
OWN_STYLE_FAMILIES = ("titan", "nova")
MAX_PARAM_DEPTH = 32


@dataclass(frozen=True)
class OptionFacts:
    """What one generation option is, wherever it is given: a flag, a JSONL line's key (its name), a
    keyword of the Python API (its name), a field of an OpenAI request body the proxy takes."""

    kind: type  # its type in a JSONL line, a Python call and a request body
    flag: str  # the command line's flag
    model_field: bool = False  # sent only to models with this field; for others, a note names the flag
    request: bool = True  # a field of an OpenAI images request that the proxy takes from its clients
    range: str | None = None  # its range in checks.RANGES
    line: bool = True  # a JSONL line's key and a Python keyword as it is (input images: see prompts.IMAGE_KEYS)


def _facts(kind: type, flag: str, **facts: Any) -> dict[str, OptionFacts]:
    return {"option": OptionFacts(kind, flag, **facts)}


@dataclass(frozen=True)
class Options:
    """The generic options of `generate`, as given (None: not given). Each field is the one definition
    of its option: the lists below, the JSONL keys, the Python API's checks and the proxy's accepted
    fields derive from these fields and their facts."""

    n: int = field(default=1, metadata=_facts(int, "-n", request=False, range="n"))
    size: str | None = field(default=None, metadata=_facts(str, "--size"))
    aspect_ratio: str | None = field(default=None, metadata=_facts(str, "--aspect-ratio"))
    quality: str | None = field(default=None, metadata=_facts(str, "--quality", model_field=True))
    style: str | None = field(default=None, metadata=_facts(str, "--style", model_field=True))
    response_format: str | None = field(default=None, metadata=_facts(str, "--response-format", model_field=True))
    user: str | None = field(default=None, metadata=_facts(str, "--user", model_field=True))
    seed: int | None = field(default=None, metadata=_facts(int, "--seed", model_field=True, range="seed"))
    negative_prompt: str | None = field(default=None, metadata=_facts(str, "--negative-prompt", model_field=True))
    params: dict[str, Any] = field(default_factory=dict, metadata=_facts(dict, "-p", request=False))
    # send a retired model to its provider's own endpoint all the same
    allow_retired: bool = field(default=False, metadata=_facts(bool, "--allow-retired", request=False))
    # An edit: its input images (checked: inputs.load), a mask file or a text mask, and the fidelity.
    images: tuple[InputImage, ...] = field(default=(), metadata=_facts(tuple, "IMAGE", request=False, line=False))
    mask: InputImage | None = field(default=None, metadata=_facts(InputImage, "--mask", request=False, line=False))
    mask_prompt: str | None = field(default=None, metadata=_facts(str, "--mask-prompt", request=False))
    input_fidelity: str | None = field(default=None, metadata=_facts(str, "--input-fidelity", request=False))

    @property
    def task(self) -> str:
        return "edit" if self.images or self.mask is not None or self.mask_prompt is not None else "generate"


OPTIONS: dict[str, OptionFacts] = {f.name: f.metadata["option"] for f in fields(Options)}
EDIT_OPTIONS = ("images", "mask", "mask_prompt", "input_fidelity")  # what only an edit takes
TEXT_OPTIONS = tuple(key for key, facts in OPTIONS.items() if facts.kind is str)
# The options sent as a model's own field, with the flag a note names when the model has no such field.
OPTION_FLAGS = {key: facts.flag for key, facts in OPTIONS.items() if facts.model_field}
# The options an OpenAI images request carries, with the type OpenAI's format gives them.
REQUEST_OPTIONS = {key: facts.kind for key, facts in OPTIONS.items() if facts.request}
RANGED = {key: RANGES[facts.range] for key, facts in OPTIONS.items() if facts.range}  # numbers and their ranges


@dataclass
class Plan:
    settings: Resolved
    prompt: str
    requests: list[ImageRequest]
    n: int
    size: str | None
    quality: str | None
    cost_usd: float | None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    template: ImageRequest | None = None  # the request every fanned-out one is cut from
    # A retired model on its provider's own endpoint: what a run raises before sending anything (a dry
    # run prints the requests first, then raises it)
    refusal: UsageError | None = None
    options: Options | None = None  # as asked (what the log keeps, so `generate --from` can ask again)


def make_plan(
    prompt: str, options: Options, settings: Resolved, *, any_size: bool = False, as_given: bool = False
) -> Plan:
    """The requests for a prompt. The proxy, for a deployment on an OpenAI-compatible server of the user's
    (compatible_server), lets that server decide, as LiteLLM does there: `any_size`, a WxH size the catalog's
    rules for the model's name refuse is sent as given; `as_given` (without drop_params), an option the
    catalog says the model has no field for is sent all the same rather than left out with a note. The CLI
    and the library keep the catalog's rules: an OPENAI_BASE_URL is often a gateway to OpenAI itself, and a
    batch is checked whole before anything is sent."""
    info = settings.model.info
    _check_prompt(prompt, info)
    check_options(options)
    _check_planned(options.params, settings)
    notes: list[str] = []
    choice = _size_choice(options, settings, any_size)
    if choice.note:
        notes.append(choice.note)
    values = _option_values(options, settings, notes, as_given)
    values.update(_edit_values(options, settings, notes, as_given))
    template = ImageRequest(
        prompt=prompt, model=settings.model, size=choice.size, aspect_ratio=choice.aspect_ratio,
        image_size=choice.image_size, params=dict(options.params), **values,
    )  # fmt: skip
    requests = _fan_out(template, list(range(1, options.n + 1)), info)
    notes += get_provider(settings.model.provider).plan_notes(template)
    size = choice.size or (info.default_size if info else None)
    quality = values.get("quality") or (info.default_quality if info else None)
    cost = estimate_cost(info, options.n, size, quality)
    if cost is not None and template.images:
        added = input_cost(info, template, len(requests))
        cost = None if added is None else cost + added
    plan = Plan(settings, prompt, requests, options.n, size, quality, cost, notes, template=template, options=options)
    _lifecycle(plan, options.allow_retired)
    plan.warnings += settings.warnings
    return plan


def _size_choice(options: Options, settings: Resolved, any_size: bool) -> sizes.SizeChoice:
    """The size to send. With `any_size` (make_plan), a WxH size the catalog's rules for this model refuse
    still goes, as given, to an OpenAI-compatible server of the user's: its model of that name may take it,
    and the server decides (with a note saying so)."""
    info = settings.model.info
    try:
        return sizes.choose(info, options.size, options.aspect_ratio)
    except UsageError as exc:
        if not any_size or info is None or options.size is None or options.aspect_ratio:
            raise
        if not compatible_server(settings):
            raise
        choice = sizes.choose(None, options.size, None)  # still a WxH (or auto): refused otherwise
        from .secrets import shown_url

        where = shown_url(str(settings.get("api_base")))
        note = f"{exc.worded('cli')[0]}; sent as given to the server at {where}, which decides"
        return replace(choice, note=note)


def _check_prompt(prompt: str, info: ModelInfo | None) -> None:
    if not isinstance(prompt, str):
        raise UsageError(f"the prompt must be text, not {type(prompt).__name__}")
    problem = text_problem(prompt)
    if problem:
        hint = "imggen takes UTF-8 text: check the encoding of the terminal or file." if "UTF-8" in problem else None
        raise UsageError(f"the prompt {problem}", hint=hint)
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='Give a prompt, e.g. imggen generate "a sea otter".')
    if info and info.prompt_max and len(prompt) > info.prompt_max:
        raise UsageError(
            f"the prompt is {len(prompt)} characters; {info.id} takes at most {info.prompt_max}",
            hint="Shorten the prompt.",
        )


def check_options(options: Options) -> None:
    """Types and ranges, whoever built the options (flags, a JSONL line, a Python call, the proxy).
    Runs once per prompt of a batch: the common case costs a few comparisons."""
    n, seed = options.n, options.seed
    for key, limits in RANGED.items():
        value = getattr(options, key)
        problem = None if value is None else number_problem(value, limits)
        if problem:
            raise param_error("{given} {problem}", param=key, value=value, problem=problem)
    if seed is not None and n > 1 and seed + n - 1 > MAX_SEED:  # image k gets seed + k - 1
        raise param_error(
            "{given} with {name:n} " + f"{n} gives image {n} the seed {seed + n - 1}, above the largest, {MAX_SEED}",
            param="seed", value=seed, hint=f"Use a seed of at most {MAX_SEED - n + 1}.",
        )  # fmt: skip
    for key in TEXT_OPTIONS:
        value = getattr(options, key)
        if value is None:
            continue
        problem = "must be text" if not isinstance(value, str) else text_problem(value)
        if problem:
            shown = {"value": value} if not isinstance(value, str) else {}  # text is not repeated: it may be long
            raise param_error("{given} {problem}", param=key, problem=problem, **shown)
    if not isinstance(options.params, dict):
        raise param_error("{name} must be provider parameters (an object), not {shown}", param="params",
                          shown=quoted(options.params))  # fmt: skip
    if options.params:
        _check_param_values(options.params, 0)
    if type(options.allow_retired) is not bool:
        raise param_error("{given} must be True or False", param="allow_retired", value=options.allow_retired)


def _check_param_values(value: Any, depth: int) -> None:
    """Params are sent as JSON: text keys, finite numbers, UTF-8 text, a sane depth."""
    if depth > MAX_PARAM_DEPTH:
        raise param_error("{name}: a parameter is nested more than {depth} levels deep", param="params",
                          depth=MAX_PARAM_DEPTH)  # fmt: skip
    if isinstance(value, float) and not math.isfinite(value):
        raise param_error("{name}: a parameter is {shown}; JSON has no such number", param="params",
                          shown=quoted(value))  # fmt: skip
    if isinstance(value, str) and text_problem(value):
        raise param_error("{name}: a parameter value {problem}", param="params", problem=text_problem(value))
    if isinstance(value, list):
        for item in value:
            _check_param_values(item, depth + 1)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or text_problem(key):
                raise param_error("{name}: parameter name {shown} is not valid text", param="params", shown=quoted(key))
            _check_param_values(item, depth + 1)


def _check_planned(params: dict[str, Any], settings: Resolved) -> None:
    """Refuse params that would replace what imggen plans itself (`-p n=1000`)."""
    for key, value in params.items():
        named = [(key, key, value)]
        if key in MERGED_PARAMS and isinstance(value, dict):
            named += [(inner, f"{key}.{inner}", item) for inner, item in value.items()]
        for name, shown_name, item in named:
            if name in PLANNED and not (name == "style" and _own_style(settings)):
                use = "give it as the prompt" if PLANNED[name] == "prompt" else "use {name:" + PLANNED[name] + "}"
                template = "{given}: imggen plans {planned} itself; " + use
                raise param_error(template, param=shown_name, value=item, provider=True, planned=name)


def _own_style(settings: Resolved) -> bool:
    info = settings.model.info
    if info is not None:
        return info.family in OWN_STYLE_FAMILIES
    return any(name in settings.model.model_id for name in ("titan-image", "nova-canvas"))


def model_fields(settings: Resolved, task: str = "generate") -> tuple[str, ...]:
    """The options the model's request has: its edit request's own list for an edit, when it has one."""
    info = settings.model.info
    if info is None:
        return PROVIDER_FIELDS.get(settings.model.provider, ())
    if task == "edit" and info.edit and "fields" in info.edit:
        return tuple(info.edit["fields"])
    return info.fields


def model_tasks(settings: Resolved) -> tuple[str, ...]:
    """What the model does: the catalog's tasks, else its provider's (an id the catalog lacks)."""
    info = settings.model.info
    return info.tasks if info is not None else PROVIDERS[settings.model.provider].tasks


def _check_task(options: Options, settings: Resolved) -> None:
    """An edit to a model that cannot edit, or a prompt alone to a model that only edits: exit 2,
    naming what can."""
    task, name = options.task, settings.model.name
    if task in model_tasks(settings):
        return
    if task == "edit":
        from .catalog import task_models

        can = task_models("edit", settings.model.provider) or task_models("edit")
        shown = ", ".join(can[:6]) + (", …" if len(can) > 6 else "")
        raise UsageError(f"{name} cannot edit images", param="model",
                         hint=f"Models that can: {shown} (imggen models --task edit).")  # fmt: skip
    raise UsageError(f"{name} only edits images: give it an input image",
                     hint=f'e.g. imggen edit "a prompt" photo.png -m {name}', param="model")  # fmt: skip


def _edit_values(options: Options, settings: Resolved, notes: list[str], as_given: bool = False) -> dict[str, Any]:
    """An edit's inputs, checked against what the model takes (inputs.check_edit)."""
    _check_task(options, settings)
    if options.task != "edit":
        return {}
    from .inputs import check_edit

    info, name = settings.model.info, settings.model.name
    rules = info.edit if info is not None else None
    check_edit(name, rules, options.images, options.mask, options.mask_prompt, opaque_ok=compatible_server(settings))
    values: dict[str, Any] = {"images": options.images, "mask": options.mask, "mask_prompt": options.mask_prompt}
    fidelity = options.input_fidelity
    if fidelity is not None:
        allowed = tuple((rules or {}).get("input_fidelity", ("low", "high") if rules is None else ()))
        if not allowed and as_given:
            values["input_fidelity"] = fidelity
        elif not allowed:
            notes.append(f"{name} has no input fidelity field: --input-fidelity not sent")
        elif fidelity not in allowed:
            raise param_error("{model} does not take {given}", param="input_fidelity", value=fidelity, model=name,
                              hint="Allowed: {allowed}.", allowed=", ".join(allowed))  # fmt: skip
        else:
            values["input_fidelity"] = fidelity
    return values


def _option_values(options: Options, settings: Resolved, notes: list[str], as_given: bool = False) -> dict[str, Any]:
    info, fields, name = settings.model.info, model_fields(settings, options.task), settings.model.name
    if options.response_format is not None and options.response_format not in RESPONSE_FORMATS:
        raise param_error("{given} is not one of: url, b64_json", param="response_format",
                          value=options.response_format)  # fmt: skip
    values: dict[str, Any] = {}
    for key, flag in OPTION_FLAGS.items():
        value = getattr(options, key)
        if value is None:
            continue
        if key not in fields and as_given and (key, value) != ("response_format", "b64_json"):
            values[key] = value  # base64 is what a model without the field answers: never worth a refusal
            continue
        if key not in fields:
            notes.append(f"{name} has no {key.replace('_', ' ')} field: {flag} not sent")
            continue
        _check_enum(info, key, value)
        values[key] = value
    if info and info.response_formats and options.response_format is None:
        values["response_format"] = "b64_json"  # saves a download that expires after an hour
    return values


def _check_enum(info: ModelInfo | None, key: str, value: Any) -> None:
    allowed = (
        {"quality": info.qualities, "style": info.styles, "response_format": info.response_formats}.get(key, ())
        if info
        else ()
    )
    if allowed and value not in allowed:
        raise param_error("{model} does not take {given}", param=key, value=value, model=info.id if info else "",
                          hint="Allowed: {allowed}.", allowed=", ".join(allowed))  # fmt: skip


def _fan_out(template: ImageRequest, indices: list[int], info: ModelInfo | None) -> list[ImageRequest]:
    """Requests for the given 1-based image indices: runs of consecutive indices, each split into
    requests of at most the model's per-request limit. With a seed, image k is asked for alone with
    seed + k - 1: one seed in a request of several images would draw them all alike."""
    if template.seed is not None:
        return [replace(template, n=1, first_index=i, seed=template.seed + i - 1) for i in sorted(indices)]
    per_request = max(1, info.max_n) if info else max(1, len(indices))
    requests: list[ImageRequest] = []
    for run in _runs(indices):
        for start in range(0, len(run), per_request):
            chunk = run[start : start + per_request]
            requests.append(replace(template, n=len(chunk), first_index=chunk[0]))
    return requests


def _runs(indices: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for index in sorted(indices):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def skip_done(plan: Plan, done: set[int]) -> int:
    """Drop the images `--resume` found already saved; returns how many were skipped."""
    if not done or plan.template is None:
        return 0
    wanted = [i for i in range(1, plan.n + 1) if i not in done]
    plan.requests = _fan_out(plan.template, wanted, plan.settings.model.info)
    return plan.n - len(wanted)


# Hosts of an api_base that are still a provider's own endpoint (Azure's resources).
OWN_HOSTS = {name: spec.own_hosts for name, spec in PROVIDERS.items() if spec.own_hosts}


def on_own_endpoint(settings: Resolved) -> bool:
    """The request goes to the provider's own endpoint: no api_base was set (flag, profile, environment),
    or, for Azure, the api_base is an Azure resource's."""
    if not settings.given("api_base"):
        return True
    hosts = OWN_HOSTS.get(settings.model.provider)
    if hosts is None:
        return False
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(str(settings.get("api_base"))).hostname or "").lower()
    except ValueError:
        return False
    return host.endswith(hosts)


def compatible_server(settings: Resolved) -> bool:
    """The request goes to a server of the user's that speaks the provider's format (an api_base that is
    neither the provider's own endpoint nor one of its hosts): such a server may take fields and uploads
    imggen does not know, so it decides about them (ProviderSpec.compatible_servers)."""
    spec = PROVIDERS[settings.model.provider]
    if not spec.compatible_servers or on_own_endpoint(settings):
        return False
    if not spec.api_hosts:
        return True
    import re
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(str(settings.get("api_base"))).hostname or "").lower()
    except ValueError:
        return False
    return not re.search(spec.api_hosts, host)


def _lifecycle(plan: Plan, allow_retired: bool) -> None:
    """What the catalog knows of the model's life, said before anything is sent: a family's rules
    used for an unknown id (a note), an unknown id (a warning), a deprecated model (a warning), a
    retired one (refused on the provider's own endpoint unless allowed; a note elsewhere)."""
    settings = plan.settings
    info, own = settings.model.info, on_own_endpoint(settings)
    family = family_note(info)
    if family:
        plan.notes.append(family)
    if info is None:
        unknown = unknown_id_warning(settings.model) if own else None
        plan.warnings += [unknown] if unknown else []
        return
    status = info.status()
    if status == "deprecated" and own:
        plan.warnings.append(deprecated_text(info))
    elif status == "retired" and not own:
        from .secrets import shown_url

        where = shown_url(str(settings.get("api_base")))
        plan.notes.append(f"{retired_text(info)} by its provider; sending it to the api_base you set, {where}")
    elif status == "retired" and allow_retired:
        replacement = _instead(info, " (replacement: {})")
        plan.warnings.append(f"{retired_text(info)}; sending it anyway, as allowed{replacement}")
    elif status == "retired":
        plan.refusal = retired_error(info)


def _instead(info: ModelInfo, template: str = "; use {} instead") -> str:
    replacement = info.lifecycle.get("replacement")
    return template.format(replacement) if replacement else ""


def retired_text(info: ModelInfo) -> str:
    """`openai/dall-e-3 was retired on 2026-05-12`."""
    day = info.lifecycle.get("retired")
    return f"{info.id} was retired on {day}" if day else f"{info.id} is retired"


def deprecated_text(info: ModelInfo) -> str:
    """The warning for a deprecated model: when it shuts down (or since when it is deprecated) and
    what replaces it."""
    life = info.lifecycle
    if life.get("retired"):
        when = f" and shuts down on {life['retired']}"
    elif life.get("deprecated"):
        when = f" (since {life['deprecated']})"
    else:
        when = ""
    return f"{info.id} is deprecated{when}{_instead(info)}"


def retired_error(info: ModelInfo) -> UsageError:
    """The refusal of a retired model on its provider's own endpoint, worded for each caller."""
    message = retired_text(info) + _instead(info)
    unless = "Nothing was sent. If your provider still serves it, "
    error = UsageError(message, hint=unless + "pass allow_retired=True.", param="model")
    error.wordings = {
        "python": (message, unless + "pass allow_retired=True."),
        "cli": (message, unless + "add --allow-retired."),
        "proxy": (message, "Nothing was sent. If the provider still serves it, set allow_retired: true in "
                  "this deployment's litellm_params."),
    }  # fmt: skip
    return error


def with_prompt(plan: Plan, prompt: str, *, check: bool = True) -> Plan:
    """The same plan for another prompt. A batch makes one plan per distinct model and options and
    only places each line's prompt in it: what does not depend on the prompt is not redone per line."""
    if check:
        check_prompt(plan, prompt)
    template = replace(plan.template, prompt=prompt) if plan.template is not None else None
    requests = [replace(request, prompt=prompt) for request in plan.requests]
    return replace(plan, prompt=prompt, requests=requests, template=template)


def check_prompt(plan: Plan, prompt: str) -> None:
    """What make_plan checks of a prompt, for another prompt with the same plan."""
    _check_prompt(prompt, plan.settings.model.info)
