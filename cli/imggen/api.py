"""`generate()`: resolve settings → plan → provider calls → ImageResponse. The only orchestration."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, ParamSpec

from .batch import Session
from .catalog import estimate_cost, input_cost, usage_cost
from .errors import GenerationError, ImggenError, NotSentError, UsageError
from .plan import EDIT_OPTIONS, OPTIONS, Options, Plan, make_plan
from .providers import PROVIDERS, ProviderResult, get_provider
from .settings import PROVIDER_SETTINGS, Config, Resolved, resolve
from .sync import run_sync
from .transport import current_retry_hook
from .types import ImageData, ImageRequest, ImageResponse, Usage

P = ParamSpec("P")
EventHook = Callable[[str, dict[str, Any]], None]
ResultHook = Callable[[list[ImageData]], Awaitable[None]]


def plan_generation(
    prompt: str,
    model: str | None = None,
    *,
    profile: str | None = None,
    options: Options | None = None,
    flags: dict[str, Any] | None = None,
    config: Config | None = None,
    resolved: dict[str, Resolved] | None = None,
) -> Plan:
    """Resolve the settings and validate everything; sends nothing. Provider settings given as
    parameters (`-p aws_region_name=…`, `aws_region_name=` in Python) are settings, not body fields.
    `resolved` keeps the settings between calls with the same flags (a batch): each distinct model,
    profile and provider settings is resolved once, and its plans share that one Resolved."""
    options = options or Options()
    moved = {k: v for k, v in options.params.items() if k in PROVIDER_SETTINGS}
    if moved:
        options = replace(options, params={k: v for k, v in options.params.items() if k not in moved})
    key = json.dumps([model, profile, moved], sort_keys=True, default=str) if resolved is not None else ""
    settings = resolved.get(key) if resolved is not None else None
    if settings is None:
        settings = resolve(model=model, profile=profile, flags={**moved, **(flags or {})}, config=config)
        if resolved is not None:
            resolved[key] = settings
    return make_plan(prompt, options, settings)


async def execute(
    plan: Plan,
    *,
    retries: int = 2,
    concurrency: int = 4,
    on_event: EventHook | None = None,
    on_images: ResultHook | None = None,
    session: Session | None = None,
    jobs: dict[int, tuple[int, str]] | None = None,
) -> ImageResponse:
    """Send the plan's requests through the session's scheduler and gather the images and failures.
    `on_images` is awaited with each request's images as soon as they arrive (the CLI saves them).
    Without a session, one is made for this plan alone, and a 401/403 stops the plan's requests not
    yet sent (their errors are NotSentError). A shared session does that only with stop_on_auth.
    `jobs` (--resume) are the jobs an earlier run submitted, by first image index: (images, job id);
    a request they match is collected from its job instead of being sent again.
    A job API's requests are told to `on_event` as "job" events: {index, n, job_id, status,
    submitted} (submitted: the id is new, before the first poll)."""
    if plan.refusal is not None:  # a retired model on its provider's own endpoint: nothing is sent
        raise plan.refusal
    if session is None:
        rpm = plan.settings.get("rpm")
        async with Session(retries=retries, concurrency=concurrency, rpm=rpm, stop_on_auth=True) as own:
            return await execute(plan, on_event=on_event, on_images=on_images, session=own, jobs=jobs)
    emit = on_event or (lambda _kind, _data: None)
    outcomes = await asyncio.gather(
        *(_one(plan, r, session, emit, on_images, _job_of(r, jobs)) for r in plan.requests), return_exceptions=True
    )
    return _response(plan, outcomes)


def _job_of(request: ImageRequest, jobs: dict[int, tuple[int, str]] | None) -> str | None:
    """The id of the job an earlier run submitted for exactly this request's images, if any."""
    found = jobs.get(request.first_index) if jobs else None
    return found[1] if found is not None and found[0] == request.n else None


async def _one(
    plan: Plan, request: ImageRequest, session: Session, emit: EventHook, on_images: ResultHook | None,
    job_id: str | None = None,
) -> ProviderResult:  # fmt: skip
    from . import engine
    from .providers.contract import Pending

    def on_job(job: Pending, submitted: bool) -> None:
        emit("job", {"index": request.first_index, "n": request.n, "job_id": job.job_id, "status": job.status,
                     "submitted": submitted})  # fmt: skip

    settings = plan.settings
    provider = get_provider(settings.model.provider)
    transport = session.transport(PROVIDERS[settings.model.provider].ca_env, float(settings.get("timeout", 600)))

    def on_retry(attempt: int, wait: float, error: GenerationError) -> None:
        if error.status == 429:
            session.scheduler.back_off(wait)
        emit("retry", {"attempt": attempt, "wait": wait, "reason": error.message})

    current_retry_hook.set(on_retry)  # this task's own context: a shared transport reports here
    async with session.scheduler.slot():
        session.check_sendable(request.n, settings)
        emit("start", {"index": request.first_index, "n": request.n})
        try:
            result = await engine.run(provider, request, settings, transport, on_job=on_job, job_id=job_id)
        except GenerationError as exc:
            session.note_refusal(exc, settings)
            emit("failed", {"index": request.first_index, "n": request.n})
            raise
        for error in result.errors:
            session.note_refusal(error, settings)
        _price(plan, result, request)
        emit("done", {"index": request.first_index, "n": len(result.images)})
    if on_images:
        # Let the request that takes this slot go out first: saving is local work that can overlap
        # with its wait, while sending it late delays the whole batch.
        await asyncio.sleep(0)
        await on_images(result.images)
    return result


def _response(plan: Plan, outcomes: list[ProviderResult | BaseException]) -> ImageResponse:
    response = ImageResponse(
        created=int(time.time()), data=[], model=plan.settings.model.name, prompt=plan.prompt,
        notes=list(plan.notes), parameters=plan_parameters(plan),
    )  # fmt: skip
    for outcome in outcomes:
        if isinstance(outcome, GenerationError):
            response.errors.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome  # configuration errors and real bugs stop the run
        else:
            response.data.extend(outcome.images)
            response.errors.extend(outcome.errors)
            if outcome.usage:
                response.usage.add(outcome.usage)
            response.upstream = merge_upstream(response.upstream, outcome.fields)
    response.data.sort(key=lambda image: image.index)
    costs = [image.cost_usd for image in response.data]
    response.cost_usd = None if not costs or None in costs else sum(c for c in costs if c is not None)
    return response


def merge_upstream(kept: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """The provider's own answer fields over several requests of one plan: the first request's, with
    the token counts of `usage` (and its details) summed."""
    if not kept:
        return dict(more)
    merged = dict(kept)
    if isinstance(kept.get("usage"), dict) and isinstance(more.get("usage"), dict):
        merged["usage"] = _summed(kept["usage"], more["usage"])
    return merged


def _summed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        mine = out.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            out[key] = _summed(mine, value)
        elif isinstance(mine, int) and isinstance(value, int) and not isinstance(mine, bool):
            out[key] = mine + value
        elif key not in out:
            out[key] = value
    return out


def _price(plan: Plan, result: ProviderResult, request: ImageRequest) -> None:
    """Each image's cost: from the tokens the provider reported, else the catalog estimate (with an
    edit's share of what its input images cost)."""
    info = plan.settings.model.info
    actual = usage_cost(info, result.usage) if result.usage else None
    each = actual / len(result.images) if actual is not None and result.images else None
    inputs: float | None = 0.0
    if each is None and request.images and result.images:
        added = input_cost(info, request, 1)
        inputs = None if added is None else added / len(result.images)
    for image in result.images:
        if each is not None:
            image.cost_usd = each
            continue
        made = estimate_cost(info, 1, image.size or plan.size, plan.quality)
        image.cost_usd = None if made is None or inputs is None else made + inputs


def plan_parameters(plan: Plan) -> dict[str, Any]:
    first = plan.template or plan.requests[0]
    values = {
        "n": plan.n, "size": first.size, "aspect_ratio": first.aspect_ratio, "image_size": first.image_size,
        "quality": first.quality, "style": first.style, "response_format": first.response_format,
        "user": first.user, "seed": first.seed, "negative_prompt": first.negative_prompt, **first.params,
    }  # fmt: skip
    if first.images:  # an edit: its inputs by hash, so --resume and --metadata tell edits apart
        values.update(
            images=[image.described() for image in first.images],
            mask_prompt=first.mask_prompt,
            mask=first.mask.described() if first.mask else None,
            input_fidelity=first.input_fidelity,
        )
    return {k: v for k, v in values.items() if v is not None}


def _flags(api_key: str | None, api_base: str | None, api_version: str | None, timeout: float | None) -> dict[str, Any]:
    return {"api_key": api_key, "api_base": api_base, "api_version": api_version, "timeout": timeout}


async def agenerate(
    prompt: str,
    model: str | None = None,
    n: int | None = None,
    quality: str | None = None,
    response_format: str | None = None,
    size: str | None = None,
    style: str | None = None,
    user: str | None = None,
    timeout: float | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    profile: str | None = None,
    *,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
    retries: int = 2,
    concurrency: int = 4,
    params: dict[str, Any] | None = None,
    allow_retired: bool = False,
    **provider_params: Any,
) -> ImageResponse:
    """Generate images for one prompt. Raises the first error when no image was made; when only some
    failed, the response's `errors` lists the failures. `timeout` defaults to 600 s (or the profile's).
    Provider parameters go in `params={...}` or as further keywords (`background="transparent"`).
    A model the catalog says is retired is refused (UsageError) before anything is sent when it would go
    to its provider's own endpoint, unless `allow_retired=True` (or an `api_base` is given)."""
    check_keywords("agenerate", provider_params)
    check_run_numbers(retries=retries, concurrency=concurrency)
    _check_text(model=model, profile=profile, api_key=api_key, api_base=api_base, api_version=api_version)
    options = Options(
        n=1 if n is None else n, size=size, aspect_ratio=aspect_ratio, quality=quality, style=style,
        response_format=response_format, user=user, seed=seed, negative_prompt=negative_prompt,
        params=_merged(params, provider_params), allow_retired=allow_retired,
    )  # fmt: skip
    flags = _flags(api_key, api_base, api_version, timeout)
    return await _one_prompt(prompt, model, profile, options, flags, retries, concurrency)


async def _one_prompt(
    prompt: str, model: str | None, profile: str | None, options: Options, flags: dict[str, Any], retries: int,
    concurrency: int,
) -> ImageResponse:  # fmt: skip
    """Plan and send one prompt's requests; the first error when no image was made."""
    plan = plan_generation(prompt, model, profile=profile, options=options, flags=flags)
    response = await execute(plan, retries=retries, concurrency=concurrency)
    if not response.data and response.errors:
        raise next((e for e in response.errors if not isinstance(e, NotSentError)), response.errors[0])
    return response


async def aedit(
    prompt: str,
    images: Any,
    mask: Any = None,
    model: str | None = None,
    n: int | None = None,
    size: str | None = None,
    quality: str | None = None,
    *,
    mask_prompt: str | None = None,
    input_fidelity: str | None = None,
    response_format: str | None = None,
    user: str | None = None,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
    timeout: float | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    profile: str | None = None,
    retries: int = 2,
    concurrency: int = 4,
    params: dict[str, Any] | None = None,
    allow_retired: bool = False,
    **provider_params: Any,
) -> ImageResponse:
    """Edit images with a prompt: `images` is one image or a list of them, each a path, bytes or a
    binary file object (the first is the one a `mask` applies to); `mask` a PNG with an alpha channel
    the size of the first image (transparent where to change), or `mask_prompt` a text naming what to
    change, for models that take one. Returns an ImageResponse as `agenerate` does; everything is
    checked (formats, count, sizes, the mask) before anything is sent."""
    check_keywords("aedit", provider_params, EDIT_KEYWORDS)
    check_run_numbers(retries=retries, concurrency=concurrency)
    _check_text(model=model, profile=profile, api_key=api_key, api_base=api_base, api_version=api_version)
    options = Options(
        n=1 if n is None else n, size=size, aspect_ratio=aspect_ratio, quality=quality,
        response_format=response_format, user=user, seed=seed, negative_prompt=negative_prompt,
        params=_merged(params, provider_params), allow_retired=allow_retired, mask_prompt=mask_prompt,
        input_fidelity=input_fidelity, **edit_inputs(images, mask),
    )  # fmt: skip
    flags = _flags(api_key, api_base, api_version, timeout)
    return await _one_prompt(prompt, model, profile, options, flags, retries, concurrency)


def _waited(function: Callable[P, Coroutine[Any, Any, ImageResponse]]) -> Callable[P, ImageResponse]:
    """A coroutine function for synchronous code: its parameters and their types, its result waited
    for (run_sync: also inside a running event loop). A keyword close to one of its own is a TypeError
    naming the function as called."""
    import functools
    import inspect

    name = function.__name__[1:]
    own = tuple(inspect.signature(function).parameters)

    @functools.wraps(function)
    def waited(*args: P.args, **kwargs: P.kwargs) -> ImageResponse:
        check_keywords(name, {k: v for k, v in kwargs.items() if k not in own}, own)
        return run_sync(function(*args, **kwargs))

    waited.__name__ = waited.__qualname__ = name
    return waited


edit = _waited(aedit)
edit.__doc__ = """`aedit`, waited for: the same parameters and result. Works inside a running event loop too
(Jupyter, IPython, an asyncio program), where it runs on a private loop in a worker thread."""


def edit_inputs(images: Any, mask: Any) -> dict[str, Any]:
    """`images=` (one or a list) and `mask=` of a Python call, loaded and recognised (inputs.load)."""
    from .inputs import load

    if images is None:
        raise UsageError("images= is required: a path, bytes or a file object, or a list of them")
    many = isinstance(images, list | tuple)
    given = list(images) if many else [images]
    loaded = tuple(load(item, f"images[{i}]" if many else "images") for i, item in enumerate(given))
    return {"images": loaded, "mask": None if mask is None else load(mask, "mask")}


def generate(
    prompt: str,
    model: str | None = None,
    n: int | None = None,
    quality: str | None = None,
    response_format: str | None = None,
    size: str | None = None,
    style: str | None = None,
    user: str | None = None,
    timeout: float | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    profile: str | None = None,
    *,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
    retries: int = 2,
    concurrency: int = 4,
    params: dict[str, Any] | None = None,
    allow_retired: bool = False,
    **provider_params: Any,
) -> ImageResponse:
    """`agenerate`, waited for: the same parameters and result. Works inside a running event loop too
    (Jupyter, IPython, an asyncio program), where it runs on a private loop in a worker thread."""
    check_keywords("generate", provider_params)
    return run_sync(
        agenerate(
            prompt, model, n, quality, response_format, size, style, user, timeout, api_key, api_base,
            api_version, profile, aspect_ratio=aspect_ratio, seed=seed, negative_prompt=negative_prompt,
            retries=retries, concurrency=concurrency, params=params, allow_retired=allow_retired, **provider_params,
        )
    )  # fmt: skip


# The keywords of generate() and agenerate() themselves: a provider parameter spelled close to one of
# them is far more likely a typo (sizee=, qualty=) than a parameter the provider happens to have.
KEYWORDS = (
    "model", *(k for k in OPTIONS if k not in EDIT_OPTIONS), "timeout", "api_key", "api_base", "api_version",
    "profile", "retries", "concurrency",
)  # fmt: skip
EDIT_KEYWORDS = (*KEYWORDS, *EDIT_OPTIONS)  # edit() and aedit()
NEAR_MISS_CUTOFF = 0.8  # difflib's ratio: one letter wrong, missing or doubled in a name of 5+ letters


def check_keywords(function: str, provider_params: dict[str, Any], keywords: tuple[str, ...] = KEYWORDS) -> None:
    """A keyword within NEAR_MISS_CUTOFF of one of ours, and not a provider setting, is a TypeError
    naming the right one, as Python's own would be for a function without **kwargs."""
    if not provider_params:
        return
    import difflib

    for key in provider_params:
        if key in PROVIDER_SETTINGS:
            continue
        close = difflib.get_close_matches(key, keywords, n=1, cutoff=NEAR_MISS_CUTOFF)
        if close:
            raise TypeError(f"{function}() got an unexpected keyword argument {key!r}; did you mean {close[0]!r}?")


def _merged(params: dict[str, Any] | None, keywords: dict[str, Any]) -> dict[str, Any]:
    if params is None:
        return keywords
    if not isinstance(params, dict):
        from .checks import quoted

        raise UsageError(f"params= must be a dict of provider parameters, not {quoted(params)}")
    return {**params, **keywords}


def check_run_numbers(**values: Any) -> None:
    """`retries=`, `concurrency=` (and `run()`'s `rpm=`, `max_cost=`, `timeout=`) of a Python call: the
    same ranges as the flags."""
    from .checks import RANGES, number_problem, param_error

    for key, value in values.items():
        problem = number_problem(value, RANGES[key])
        if problem:
            raise param_error("{given} {problem}", param=key, value=value, problem=problem)


def _check_text(**values: Any) -> None:
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{key}= must be text, not {type(value).__name__}")


__all__ = [
    "ImageData", "ImageResponse", "ImggenError", "Resolved", "Usage", "aedit", "agenerate", "edit", "execute",
    "generate",
]  # fmt: skip
