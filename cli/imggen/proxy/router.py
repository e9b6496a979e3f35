"""Which deployment answers a request: lookup by name, id, alias or model string; load balancing
(shuffle, usage, measured latency); per-deployment rpm and max_parallel_requests; cooldowns; one retry
layer (`num_retries`, or `retry_policy` by kind of failure), then `fallbacks` (or `default_fallbacks`),
and `content_policy_fallbacks` for a refused prompt.

imggen's own transport retries are off here: every upstream call is one the router chose, so a
failing request costs exactly `1 + num_retries` calls per model group, never retries × retries.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ..api import execute
from ..batch import Session
from ..engine import open_stream
from ..errors import AuthError, ContentFilterError, GenerationError, ImggenError, NetworkError, UsageError
from ..plan import (
    MAX_N,
    OPTION_FLAGS,
    REQUEST_OPTIONS,
    Options,
    Plan,
    compatible_server,
    make_plan,
    model_fields,
    model_tasks,
)
from ..providers import PROVIDERS, SPECS, get_provider
from ..providers.openai_wire import is_gpt_image
from ..secrets import redact
from ..transport import backoff, retryable_status
from ..types import ImageResponse, InputImage
from . import variations
from .config import Deployment, ProxyConfig
from .state import State


@dataclass
class Streamed:
    """An upstream answer being streamed (server-sent events), its body not yet read. Its cost is the plan's
    estimate (the catalog's price for the size and quality asked): the headers that carry it
    (x-litellm-response-cost) and the spend log's row are written before the upstream's usage arrives."""

    upstream: httpx.Response
    cost_usd: float | None = None


# One upstream call on the deployment the router picked.
Call = Callable[[Deployment], Awaitable["ImageResponse | Streamed"]]

MAX_QUEUE_WAIT = 10.0  # a request over every deployment's rpm waits at most this long for a place …
MAX_QUEUED = 256  # … and at most this many wait at once; beyond either, 429 with Retry-After
RETRY_WAIT_CAP = 8.0  # a retry on the same deployment waits its backoff or Retry-After, up to this
# The request fields imggen plans itself (the Options), with the type OpenAI's format gives them.
OPTION_TYPES: dict[str, type] = REQUEST_OPTIONS
# The other fields of OpenAI's images.generate (openai SDK 2.x-3.x): OpenAI and Azure get them as they
# are; no other provider has them.
OPENAI_FIELDS: dict[str, type] = {
    "background": str, "moderation": str, "output_compression": int, "output_format": str,
    "partial_images": int, "input_fidelity": str, "safety_identifier": str, "complexity": str,
    "frame_count": int, "frame_duration_ms": int, "svg": dict,
}  # fmt: skip
OPENAI_PROVIDERS = tuple(spec.name for spec in SPECS if spec.extra_fields == "openai-format")
# As LiteLLM does, a field OpenAI's format does not have reaches these providers as a provider parameter
# (Bedrock's body, Vertex AI's parameters, Gemini's generationConfig: cfgScale, addWatermark, …).
PROVIDER_PARAM_PROVIDERS = tuple(spec.name for spec in SPECS if spec.extra_fields == "provider-params")
STREAMING = " or ".join(spec.label for spec in SPECS if spec.streams)  # who `stream: true` may go to
# The model a request without `model` gets, as OpenAI's API chose it (the openai SDK's docstrings up to
# 2026-05: generations and variations "Defaults to `dall-e-2` unless a parameter specific to the GPT image
# models is used"; edits "Defaults to `gpt-image-1.5`"; openai 3.57.0 documents no default).
DEFAULT_MODEL = "dall-e-2"
DEFAULT_GPT_IMAGE_MODEL = "gpt-image-1.5"
GPT_IMAGE_ONLY = frozenset(
    {"stream", "partial_images", "background", "moderation", "output_compression", "output_format", "input_fidelity"}
)


class ProxyError(Exception):
    """An answer to the client in OpenAI's error envelope."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
        param: str | None = None, retry_after: float | None = None, deployment: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.retry_after = retry_after
        self.deployment = deployment


@dataclass
class Outcome:
    response: ImageResponse
    deployment: Deployment
    stream: Streamed | None = None  # a streamed answer: `response` is then empty (no images; the estimated cost)


@dataclass
class Attempt:
    """One request's way through the router: what it tried and the last failure."""

    tried: set[str] = field(default_factory=set)
    error: ProxyError | None = None
    refused: bool = False  # a content policy refusal that content_policy_fallbacks may answer


LATENCY_WEIGHT = 0.3  # latency-based-routing: each measured call's share of a deployment's average
PARALLEL_POLL = 0.05  # seconds between looks for a free place under max_parallel_requests


class Router:
    def __init__(self, config: ProxyConfig, state: State, session: Session) -> None:
        self.config = config
        self.state = state
        self.session = session
        self.groups = config.groups()
        self.by_id = {d.id: d for d in config.deployments}
        self.by_model: dict[str, list[Deployment]] = {}
        for deployment in config.deployments:
            self.by_model.setdefault(deployment.model, []).append(deployment)
        self.disabled = config.disabled_groups()
        self.queued = 0
        self.in_flight: dict[str, int] = {}  # calls in flight per deployment (max_parallel_requests)
        self.latency: dict[str, float] = {}  # seconds per call, a moving average (latency-based-routing)

    def knows(self, name: str) -> bool:
        try:
            self.group_for(name)
        except ProxyError:
            return False
        return True

    def group_for(self, name: str) -> str:
        """model_name, then model_info.id, then an alias, then a deployment's model string."""
        if name in self.groups:
            return name
        if name in self.by_id:
            return self.by_id[name].group
        if name in self.config.router.aliases:
            return self.config.router.aliases[name]
        if name in self.by_model:
            return self.by_model[name][0].group
        for off in self.config.disabled:
            if name in (off.group, off.id, off.model) or self.config.router.aliases.get(name) == off.group:
                raise self._unavailable(off.group)
        raise ProxyError(
            400, f"Invalid model name passed in model={name}. Call `/v1/models` to view available models.",
            code="model_not_found", param="model",
        )  # fmt: skip

    async def generate(self, name: str, prompt: str, options: Options) -> Outcome:
        """A generation, or an edit when the options hold input images."""
        return await self.route(name, lambda deployment: self.call_once(deployment, prompt, options))

    async def stream(self, name: str, prompt: str, options: Options) -> Outcome:
        """`stream: true`: the upstream's server-sent events, from a deployment that streams (a GPT image
        model on a provider that streams, one upstream request); any other is a 400 before sending."""

        async def call(deployment: Deployment) -> Streamed:
            plan = self._plan(deployment, prompt, options)
            request = plan.requests[0]
            if not PROVIDERS[deployment.settings.model.provider].streams or not is_gpt_image(request):
                raise ProxyError(
                    400, f"'{deployment.group}' ({deployment.settings.model.name}) cannot stream images; leave "
                    f"'stream' out, or use a GPT image model on {STREAMING}.",
                    code="unsupported_parameter", param="stream", deployment=deployment.id,
                )  # fmt: skip
            if len(plan.requests) != 1:
                raise ProxyError(
                    400, f"a streamed request must fit one upstream request: lower 'n' (it takes "
                    f"{len(plan.requests)} here)", param="n", deployment=deployment.id,
                )  # fmt: skip
            request = replace(request, params={**request.params, "stream": True})
            settings = plan.settings
            transport = self.session.transport(PROVIDERS[settings.model.provider].ca_env,
                                               float(settings.get("timeout", 600)))  # fmt: skip
            try:
                upstream = await open_stream(get_provider(settings.model.provider), request, settings, transport)
            except UsageError as exc:
                raise bad_request(exc, deployment, code="unsupported_parameter") from exc
            return Streamed(upstream, plan.cost_usd)

        return await self.route(name, call)

    async def variation(self, name: str, image: InputImage, filename: str, fields: dict[str, str]) -> Outcome:
        """Variations of an image, from a deployment on an OpenAI-compatible server (variations.py)."""

        async def call(deployment: Deployment) -> ImageResponse:
            try:
                return await variations.send(deployment, image, filename, fields, self.session)
            except variations.CannotVary as exc:
                raise ProxyError(400, exc.message, code=exc.code, param="model", deployment=deployment.id) from exc

        return await self.route(name, call)

    def _unavailable(self, group: str) -> ProxyError:
        """503: every deployment of the model is disabled, with why (an unset os.environ/ reference)."""
        reasons = "; ".join(sorted({off.reason for off in self.disabled.get(group, [])})) or "no deployment"
        return ProxyError(
            503, f"No deployment of '{group}' can serve: {reasons}. Set the variable and restart imggen serve.",
            type="api_error", code="deployment_disabled", param="model",
        )  # fmt: skip

    def _pinned(self, name: str) -> list[Deployment] | None:
        """A model_info.id names one deployment, and a litellm_params.model string the deployments with
        that string, not their whole group."""
        if name in self.groups or name in self.config.router.aliases:
            return None
        if name in self.by_id:
            return [self.by_id[name]]
        return self.by_model.get(name)

    async def route(self, name: str, call: Call) -> Outcome:
        """`call` on a deployment of the named group: the retries, cooldowns and fallbacks of every request."""
        group = self.group_for(name)
        pinned = self._pinned(name)
        router = self.config.router
        attempt = Attempt()
        fallbacks = router.fallbacks.get(group)
        if fallbacks is None:
            fallbacks = [f for f in router.default_fallbacks if f != group]
        for target in [group, *fallbacks]:
            named, only = (group, pinned) if target == group else self._fallback(target)
            outcome = await self._group(named, call, attempt, only, group)
            if outcome is not None:
                return outcome
            if attempt.refused:  # a refused prompt: only the content policy fallbacks may answer it
                break
        if attempt.refused:
            for target in router.content_policy_fallbacks.get(group, []):
                attempt.refused = False
                named, only = self._fallback(target)
                outcome = await self._group(named, call, attempt, only, group)
                if outcome is not None:
                    return outcome
        assert attempt.error is not None
        raise attempt.error

    def _fallback(self, target: str) -> tuple[str, list[Deployment] | None]:
        """A fallback names a model group, an alias of one, or (as LiteLLM allows) one deployment's id."""
        if target in self.groups:
            return target, None
        if target in self.config.router.aliases:
            return self.config.router.aliases[target], None
        if target in self.by_id:
            return self.by_id[target].group, [self.by_id[target]]
        return target, None

    async def _group(
        self, group: str, call: Call, attempt: Attempt, pinned: list[Deployment] | None, asked: str
    ) -> Outcome | None:
        """1 + num_retries calls in this group (retry_policy: as many as the kind of failure allows);
        None when they all failed in a way a fallback may fix."""
        if group not in self.groups:  # a fallback whose deployments are all disabled
            attempt.error = attempt.error or self._unavailable(group)
            return None
        router = self.config.router
        tries = 0
        while True:
            deployment = await self._pick(group, attempt, tries > 0, pinned)
            if deployment is None:
                return None
            self.in_flight[deployment.id] = self.in_flight.get(deployment.id, 0) + 1
            started = time.monotonic()
            try:
                if tries and deployment.id in attempt.tried:
                    await asyncio.sleep(self._retry_wait(tries, attempt.error))
                    started = time.monotonic()
                attempt.tried.add(deployment.id)
                answer = await call(deployment)
                self._measured(deployment, time.monotonic() - started)  # a stream: the time to its first bytes
                if isinstance(answer, Streamed):
                    empty = ImageResponse(created=int(time.time()), data=[], model=deployment.settings.model.name,
                                          prompt="", cost_usd=answer.cost_usd)  # fmt: skip
                    return Outcome(empty, deployment, answer)
                return Outcome(answer, deployment)
            except GenerationError as exc:
                if isinstance(exc, NetworkError):  # a timeout is as slow as it was
                    self._measured(deployment, time.monotonic() - started)
                attempt.error = await self._failed(deployment, exc)
                kind = failure_kind(exc)
                if kind == "content_policy" and router.content_policy_fallbacks.get(asked) and group == asked:
                    attempt.refused = True
                    return None
                worth = _worth_retrying(exc)
                tries += 1
                if tries > router.retry_policy.get(kind, router.num_retries if worth else 0):
                    if worth:
                        return None
                    raise attempt.error from exc
            finally:
                self.in_flight[deployment.id] -= 1

    def _measured(self, deployment: Deployment, seconds: float) -> None:
        before = self.latency.get(deployment.id)
        self.latency[deployment.id] = seconds if before is None else before + LATENCY_WEIGHT * (seconds - before)

    async def _pick(
        self, group: str, attempt: Attempt, retrying: bool, pinned: list[Deployment] | None = None
    ) -> Deployment | None:
        """A deployment with room under its rpm and max_parallel_requests: untried and not cooling
        first. Waits in the bounded queue while every one is at its limit."""
        deadline = time.monotonic() + MAX_QUEUE_WAIT
        while True:
            candidates, cooling_left = await self._candidates(group, attempt, retrying, pinned)
            free = [d for d in candidates if not d.max_parallel or self.in_flight.get(d.id, 0) < d.max_parallel]
            if candidates and not free:
                await self._queue(group, PARALLEL_POLL, deadline, "max_parallel_requests")
                continue
            candidates = free
            if not candidates:
                if retrying or attempt.error is not None:
                    return None
                attempt.error = ProxyError(
                    429, f"No deployment of '{group}' is available: all are cooling down after failures.",
                    type="rate_limit_error", code="rate_limit_exceeded", retry_after=min(cooling_left or [1.0]),
                )  # fmt: skip
                return None
            waits = []
            for deployment in candidates:
                wait = await self.state.take(deployment.id, deployment.rpm) if deployment.rpm else 0.0
                if wait <= 0:
                    return deployment
                waits.append(wait)
            await self._queue(group, min(waits), deadline)

    async def _candidates(
        self, group: str, attempt: Attempt, retrying: bool, pinned: list[Deployment] | None
    ) -> tuple[list[Deployment], list[float]]:
        deployments = pinned or self.groups[group]  # an id or a model string names some deployments: only them
        cooling = await self.state.cooling([d.id for d in deployments])
        healthy = [d for d in deployments if d.id not in cooling]
        untried = [d for d in healthy if d.id not in attempt.tried]
        # A retry goes elsewhere when it can; a group of one retries its only deployment.
        pool = untried or (healthy if retrying or not attempt.tried else [])
        return await self._order(pool), list(cooling.values())

    async def _order(self, deployments: list[Deployment]) -> list[Deployment]:
        if len(deployments) < 2:
            return deployments
        if self.config.router.strategy == "usage-based":
            usage = await self.state.usage([d.id for d in deployments])
            load = {d.id: u / d.rpm if d.rpm else float(u) for d, u in zip(deployments, usage, strict=True)}
            return sorted(deployments, key=lambda d: (load[d.id], random.random()))
        if self.config.router.strategy == "latency-based-routing":  # unmeasured ones first, to measure them
            return sorted(deployments, key=lambda d: (self.latency.get(d.id, 0.0), random.random()))
        return _weighted_shuffle(deployments)

    async def _queue(self, group: str, wait: float, deadline: float, limit: str = "rpm") -> None:
        if self.queued >= MAX_QUEUED or time.monotonic() + wait > deadline:
            raise ProxyError(
                429, f"Rate limit reached for every deployment of '{group}' (their {limit}); retry after "
                f"{max(wait, 1):.0f} s.",
                type="rate_limit_error", code="rate_limit_exceeded", retry_after=wait,
            )  # fmt: skip
        self.queued += 1
        try:
            await asyncio.sleep(wait)
        finally:
            self.queued -= 1

    async def call_once(self, deployment: Deployment, prompt: str, options: Options) -> ImageResponse:
        """One upstream call (more only where the model makes fewer images per request than asked)."""
        plan = self._plan(deployment, prompt, options)
        try:
            response = await execute(plan, session=self.session)
        except UsageError as exc:  # found while building the request: a parameter this model does not have
            raise bad_request(exc, deployment, code="unsupported_parameter") from exc
        if response.errors and not response.data:
            first = response.errors[0]
            if isinstance(first, UsageError):  # found while building: nothing was sent
                raise bad_request(first, deployment, code="unsupported_parameter") from first
            raise first
        return response

    def _plan(self, deployment: Deployment, prompt: str, options: Options) -> Plan:
        if options.task == "edit" and "edit" not in model_tasks(deployment.settings):
            raise self._cannot_edit(deployment)
        drop = self.config.drop_params if deployment.drop_params is None else bool(deployment.drop_params)
        # An OpenAI-compatible server of the user's decides about the fields its model takes (LiteLLM forwards
        # them there); drop_params leaves out what the catalog says the model lacks; elsewhere that is a 400.
        compatible = compatible_server(deployment.settings)
        as_given = not drop and compatible
        if not drop and not as_given:
            _refuse_unsupported(deployment, options)
        options = _provider_params(deployment, options, drop)
        if deployment.allow_retired:
            options = replace(options, allow_retired=True)
        try:
            plan = make_plan(prompt, options, deployment.settings, any_size=compatible, as_given=as_given)
        except ImggenError as exc:
            raise bad_request(exc, deployment) from exc
        if plan.refusal is not None:  # a retired model on its provider's own endpoint: nothing is sent
            raise bad_request(plan.refusal, deployment, code="model_retired")
        return plan

    def _cannot_edit(self, deployment: Deployment) -> ProxyError:
        """The model groups of this server that can edit, rather than the catalog's models."""
        can = [g for g, members in self.groups.items() if any("edit" in model_tasks(d.settings) for d in members)]
        shown = f"model groups here that can: {', '.join(can[:8])}" if can else "no model group here can"
        return ProxyError(
            400, f"'{deployment.group}' ({deployment.settings.model.name}) cannot edit images; {shown}.",
            code="model_cannot_edit", param="model", deployment=deployment.id,
        )  # fmt: skip

    async def _failed(self, deployment: Deployment, exc: GenerationError) -> ProxyError:
        """Cool the deployment down when it is rate limited or misconfigured, or after too many failures."""
        router = self.config.router
        status = exc.status or 0
        error = upstream_error(exc, deployment)
        if status == 429 or isinstance(exc, AuthError) or status == 404:
            wait = max(router.cooldown_time, exc.retry_after or 0.0)
            await self.state.cool_down(deployment.id, wait)
            error.retry_after = wait if status == 429 else None  # a 429 always says when to come back
        elif _worth_retrying(exc) and len(self.groups[deployment.group]) > 1:  # never cool a group's only one
            await self._count_failure(deployment)
        return error

    async def _count_failure(self, deployment: Deployment) -> None:
        if await self.state.failed(deployment.id) > self.config.router.allowed_fails:
            await self.state.cool_down(deployment.id, self.config.router.cooldown_time)

    def _retry_wait(self, retry: int, error: ProxyError | None) -> float:
        asked = error.retry_after if error is not None else None
        return min(RETRY_WAIT_CAP, asked if asked is not None else backoff(retry - 1))


def _weighted_shuffle(deployments: list[Deployment]) -> list[Deployment]:
    """simple-shuffle: the first pick is weighted by rpm (or `weight`), as LiteLLM weights it."""
    weights = [float(d.rpm) if d.rpm else d.weight for d in deployments]
    order: list[Deployment] = []
    pool = list(zip(deployments, weights, strict=True))
    while pool:
        chosen = random.choices(range(len(pool)), weights=[w for _, w in pool])[0]
        order.append(pool.pop(chosen)[0])
    return order


def _refuse_unsupported(deployment: Deployment, options: Options) -> None:
    fields = model_fields(deployment.settings, options.task)
    for key in OPTION_FLAGS:
        if getattr(options, key) is not None and key not in fields:
            if key == "response_format" and options.response_format == "b64_json":
                continue  # the proxy always has the bytes: base64 is what it answers without the field
            raise _unsupported(deployment, key)


def _provider_params(deployment: Deployment, options: Options, drop: bool) -> Options:
    """The body's other fields that this deployment's provider takes; the rest are dropped
    (drop_params) or refused, never sent where they are unknown."""
    settings = deployment.settings
    provider = settings.model.provider
    # An OpenAI-compatible server (the user's api_base) may take any field: forwarded unless the config
    # asks to drop what the model does not document (drop_params).
    compatible = not drop and compatible_server(settings)
    kept: dict[str, Any] = {}
    for key, value in options.params.items():
        takes = compatible or provider in (OPENAI_PROVIDERS if key in OPENAI_FIELDS else PROVIDER_PARAM_PROVIDERS)
        if takes:
            kept[key] = value
        elif not drop:
            raise _unsupported(deployment, key)
    return options if len(kept) == len(options.params) else replace(options, params=kept)


def _unsupported(deployment: Deployment, key: str) -> ProxyError:
    return ProxyError(
        400, f"{deployment.settings.model.name} does not support parameter '{key}'. "
        "To drop it from the call, set `litellm_settings.drop_params: true` in the config.",
        code="unsupported_parameter", param=key, deployment=deployment.id,
    )  # fmt: skip


def bad_request(exc: ImggenError, deployment: Deployment, code: str | None = None) -> ProxyError:
    """A request imggen refused before sending it, worded in the request's fields ('n', 'size'), not
    in the command line's flags or the Python API's keywords."""
    param = exc.param if exc.param != "params" else None  # a provider parameter is a field of its own
    param = "image" if param == "images" else param  # the edit's input images are its `image` parts
    return ProxyError(400, exc.text("proxy"), code=code, param=param, deployment=deployment.id)


def failure_kind(exc: GenerationError) -> str:
    """The kind of failure, as LiteLLM's retry_policy counts them (config.RETRY_POLICY)."""
    status = exc.status or 0
    if isinstance(exc, ContentFilterError):
        return "content_policy"
    if isinstance(exc, AuthError) or status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if isinstance(exc, NetworkError):
        return "timeout" if "within" in str(exc) or "timed out" in str(exc) else "server"
    if status == 408:
        return "timeout"
    if 400 <= status < 500 or isinstance(exc, UsageError):
        return "bad_request"
    return "server"


def _worth_retrying(exc: GenerationError) -> bool:
    """Another try (here or on another deployment) may succeed; a bad request or a refusal will not."""
    if isinstance(exc, ContentFilterError | UsageError):
        return False
    status = exc.status or 0
    return isinstance(exc, NetworkError | AuthError) or not status or status == 404 or retryable_status(status)


def upstream_error(exc: GenerationError, deployment: Deployment) -> ProxyError:
    """The client's view of an upstream failure: its own fault (400), a rate limit to wait out (429),
    or the gateway's (502/504), never the upstream's 401, which would blame the client's key."""
    status = exc.status or 0
    message = redact(str(exc))  # the client must never see an upstream key the provider quoted back
    if isinstance(exc, ContentFilterError):
        return ProxyError(400, message, code="content_policy_violation", deployment=deployment.id)
    if status == 429:
        return ProxyError(429, message, type="rate_limit_error", code="rate_limit_exceeded",
                          retry_after=exc.retry_after, deployment=deployment.id)  # fmt: skip
    if 400 <= status < 500 and status not in (401, 403, 404, 408, 409) and not isinstance(exc, AuthError):
        return ProxyError(status, message, code=exc.code, deployment=deployment.id)
    if isinstance(exc, NetworkError):
        timed_out = "within" in message or "timed out" in message
        return ProxyError(504 if timed_out else 502, message, type="api_error", code="upstream_unreachable",
                          deployment=deployment.id)  # fmt: skip
    return ProxyError(502, message, type="api_error", code="upstream_error", deployment=deployment.id)


def default_model(fields: Any, edit: bool = False) -> str:
    """The model OpenAI's API uses for a request without one (see DEFAULT_MODEL)."""
    if edit or any(fields.get(key) not in (None, False) for key in GPT_IMAGE_ONLY):
        return DEFAULT_GPT_IMAGE_MODEL
    return DEFAULT_MODEL


def options_from(body: dict[str, Any]) -> Options:
    """The OpenAI request body as imggen options, each field of the type OpenAI gives it; the other
    fields are kept as params, for the deployments whose provider takes them (`_provider_params`)."""
    named = set(REQUEST_OPTIONS)  # n is checked here; params and allow_retired are the config's, not a client's
    n = body.get("n", 1) if body.get("n") is not None else 1
    if not _is(n, int) or not 1 <= n <= MAX_N:
        raise ProxyError(400, f"'n' must be an integer from 1 to {MAX_N}, not {_shown(n)}", param="n")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise ProxyError(400, f"'stream' must be a boolean, not {_shown(body['stream'])}", param="stream")
    for key, kind in (OPTION_TYPES | OPENAI_FIELDS).items():
        if body.get(key) is not None and not _is(body[key], kind):
            raise ProxyError(400, f"'{key}' must be {_KINDS[kind]}, not {_shown(body[key])}", param=key)
    params = {k: v for k, v in body.items() if k not in named | {"prompt", "model", "n", "stream"}}
    return Options(n=n, params=params, **{k: body[k] for k in named if body.get(k) is not None})


_KINDS = {str: "a string", int: "an integer", dict: "an object"}


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A wrong value as the message quotes it: JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
