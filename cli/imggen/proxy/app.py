"""The ASGI app: routes, the master key, OpenAI's error envelope, LiteLLM's response headers and one
log line per request on stderr (model, deployment, status, latency, cost; never a key)."""

from __future__ import annotations

import hmac
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..batch import Session
from ..errors import ImggenError
from ..plan import Options
from ..providers import get_provider
from ..settings import redact
from ..types import ImageRequest, ImageResponse
from .config import Deployment, ProxyConfig
from .forms import edit_options, read_form, variation_fields
from .keys import Hold, Key
from .router import Outcome, ProxyError, Router, Streamed, default_model, options_from
from .state import MemoryState, RedisState, SharedState, State
from .teams import MANAGEMENT_ROUTES, Teams

KEY_HEADERS = ("authorization", "x-litellm-api-key", "api-key")
MAX_DEPTH = 64  # JSON nesting a request may have; OpenAI's image requests need 3
DEFAULT_PORTS = {"http": 80, "https": 443}
SIZE = re.compile(r"[1-9][0-9]{0,5}x[1-9][0-9]{0,5}")
EXPOSED_HEADERS = "x-litellm-call-id, x-litellm-model-id, x-litellm-response-cost, retry-after"


@dataclass
class Seen:
    """What a request named, for its log line whatever happens after."""

    model: str = "-"
    key: Key | None = None  # the virtual key that sent it; None for the master key
    hold: Hold | None = None  # what it reserved of that key's budget


class Proxy:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.router: Router | None = None
        self.state: State | None = None
        self.teams: Teams | None = None  # virtual keys and the spend log (teams.py)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.state = await _state(self.config)
        # No transport retries: the router's num_retries is the one retry layer.
        async with Session(retries=0, concurrency=4096) as session:
            self.router = Router(self.config, self.state, session)
            self.teams = await Teams.open(self.config, self.state, self.router)
            try:
                yield
            finally:
                await self.teams.aclose()
                await self.state.aclose()

    def check_key(self, request: Request) -> None:
        """The master key, or 401."""
        given = self._given(request)
        if given is None or given.startswith("\0"):
            raise _unauthorized()

    def _given(self, request: Request) -> str | None:
        """The master key's match: "" when none is configured, the key sent when it is the master key,
        the first key sent otherwise with None when there is none."""
        expected = self.config.master_key
        if not expected:
            return ""
        first = None
        for name in KEY_HEADERS:
            given = request.headers.get(name, "")
            given = given[7:] if given[:7].lower() == "bearer " else given
            if given and hmac.compare_digest(given.encode(), expected.encode()):
                return given
            first = first or given or None
        return None if first is None else f"\0{first}"

    async def caller(self, request: Request) -> Key | None:
        """The master key (None), or a valid virtual key within its expiry; else 401."""
        given = self._given(request)
        if given is not None and not given.startswith("\0"):
            return None
        if given is not None and self.teams is not None:
            key = await self.teams.keys.lookup(given[1:])
            if key is not None:
                self.teams.keys.check(key, given[1:])
                return key
        raise _unauthorized()

    async def manage(self, request: Request) -> Response:
        """/key/* and /spend/* (teams.py): the master key only."""
        if not self.config.master_key:
            raise ProxyError(403, "virtual keys and spend need a master key: set general_settings.master_key",
                             type="auth_error", code="no_master_key")  # fmt: skip
        self.check_key(request)
        assert self.teams is not None
        return _json(200, await self.teams.manage(request))

    async def images(self, request: Request) -> Response:
        async def work(seen: Seen) -> Outcome:
            body = await _body(request, self.config.max_request_bytes)
            seen.model = model = self._model(request, body.get("model"), default_model(body))
            prompt = _prompt(body.get("prompt"))
            options = options_from(body)
            await self._admit(seen, body.get("n"), body.get("size"), body.get("quality"))
            assert self.router is not None
            if body.get("stream") is True:
                return await self.router.stream(model, prompt, options)
            return await self.router.generate(model, prompt, options)

        return await self._answer(request, work)

    async def edits(self, request: Request) -> Response:
        """OpenAI's images.edit: multipart with `image` or `image[]`, `mask` and text fields (forms.py),
        routed as generations are; the model's edit rules are checked before anything is sent."""

        async def work(seen: Seen) -> Outcome:
            form = await read_form(request, self.config.max_upload_bytes)
            seen.model = model = self._model(request, form.text("model"), default_model(form.body, edit=True))
            prompt = _prompt(form.text("prompt"))
            options = edit_options(form)
            await self._admit(seen, form.text("n"), form.text("size"), form.text("quality"))
            assert self.router is not None
            if form.body.get("stream") is True:
                return await self.router.stream(model, prompt, options)
            return await self.router.generate(model, prompt, options)

        return await self._answer(request, work)

    async def variations(self, request: Request) -> Response:
        """OpenAI's images.create_variation, forwarded to a deployment on an OpenAI-compatible server."""

        async def work(seen: Seen) -> Outcome:
            form = await read_form(request, self.config.max_upload_bytes)
            seen.model = model = self._model(request, form.text("model"), default_model({}))
            image, filename, fields = variation_fields(form)
            await self._admit(seen, form.text("n"), form.text("size"), None)
            assert self.router is not None
            return await self.router.variation(model, image, filename, fields)

        return await self._answer(request, work)

    async def _answer(self, request: Request, work: Callable[[Seen], Awaitable[Outcome]]) -> Response:
        """The answer to an images request in OpenAI's shape, or its error in OpenAI's envelope, with
        LiteLLM's headers and one log line."""
        started = time.perf_counter()
        call_id = str(uuid.uuid4())
        seen = Seen()
        deployment, cost, images = "-", None, 0
        try:
            seen.key = await self.caller(request)  # before reading the body: no one without a key makes it buffer one
            outcome = await work(seen)
            deployment, cost = outcome.deployment.id, outcome.response.cost_usd
            headers = _litellm_headers(call_id, deployment, cost)
            images = len(outcome.response.data)
            if outcome.stream is not None:
                response = _relay(outcome.stream, headers)
            else:
                response = _json(200, _images_payload(outcome.response), headers)
        except ProxyError as exc:
            deployment = exc.deployment or deployment
            response = error_response(exc, _litellm_headers(call_id, deployment, None))
        except Exception as exc:  # a bug must still answer in the envelope, and never echo a key
            response = error_response(ProxyError(500, redact(f"internal error: {exc}"), type="api_error"), {})
        _log(request, seen.model, deployment, response.status_code, started, cost)
        if self.teams is not None:
            self.teams.record(call_id, request, seen, deployment, images, cost, response.status_code, started)
        return response

    def _model(self, request: Request, given: Any, default: str) -> str:
        """The model a request names: the Azure-style route's deployment, else the body's `model`, else
        the model OpenAI's API would use (router.default_model) when this config has that name."""
        model = request.path_params.get("model") or given or ""
        if not isinstance(model, str):
            raise ProxyError(400, "'model' must be a string", param="model")
        if not model:
            if self.router is None or not self.router.knows(default):
                raise ProxyError(400, "'model' is required", param="model")
            return default
        return model

    async def _admit(self, seen: Seen, n: Any, size: Any, quality: Any) -> None:
        """A virtual key's models, rpm_limit and budget, checked once the request's model is known."""
        if seen.key is not None and self.teams is not None:
            seen.hold = await self.teams.admit(seen.key, seen.model, n, size, quality)

    async def models(self, request: Request) -> Response:
        await self.caller(request)
        router = self.config.router
        groups = [*self.config.groups(), *self.config.disabled_groups()]  # a disabled one answers 503 saying why
        names = groups + [a for a in router.aliases if a not in groups and a not in router.hidden]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "imggen"} for n in names]
        return _json(200, {"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        """Configuration and credentials of every deployment, without a billed call unless ?probe=1."""
        self.check_key(request)
        probe = request.query_params.get("probe") in ("1", "true")
        healthy: list[dict[str, str]] = []
        unhealthy: list[dict[str, str]] = []
        for deployment in self.config.deployments:
            entry = {"model": deployment.model, "model_name": deployment.group, "model_id": deployment.id}
            error = await (self._probe(deployment) if probe else _check(deployment))
            (unhealthy if error else healthy).append({**entry, "error": error} if error else entry)
        for off in self.config.disabled:  # an unset os.environ/ reference: never probed
            unhealthy.append({"model": off.model, "model_name": off.group, "model_id": off.id, "error": off.reason})
        payload = {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                   "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}  # fmt: skip
        return _json(200, payload)

    async def _probe(self, deployment: Deployment) -> str | None:
        assert self.router is not None
        try:
            await self.router.call_once(deployment, "a small test image: one blue dot", Options())
        except (ImggenError, ProxyError) as exc:
            return redact(str(exc))
        return None

    async def readiness(self, request: Request) -> Response:
        """healthy; `degraded` (200: it serves) while Redis cannot be reached and limits are this
        instance's own; unhealthy (503) only when a store it depends on fails."""
        assert self.state is not None
        status, cache = "healthy", "redis" if self.config.router.redis else None
        body: dict[str, Any] = {}
        try:
            await self.state.ping()
        except Exception:  # any failure to reach the store means not ready
            status = "unhealthy"
        if isinstance(self.state, SharedState) and self.state.degraded is not None:
            status, body["cache_error"] = "degraded", self.state.degraded
        body = {"status": status, "cache": cache, **body, "imggen_version": __version__}
        return _json(503 if status == "unhealthy" else 200, body)


def create_app(config: ProxyConfig, allow_origins: Iterable[str] = ()) -> Starlette:
    """The app; `allow_origins` are the browser origins besides its own that may call it (--allow-origin)."""
    proxy = Proxy(config)

    async def liveliness(request: Request) -> Response:
        return _json(200, "I'm alive!")

    routes = [
        Route("/v1/images/generations", proxy.images, methods=["POST"]),
        Route("/images/generations", proxy.images, methods=["POST"]),
        Route("/openai/deployments/{model:path}/images/generations", proxy.images, methods=["POST"]),
        Route("/v1/images/edits", proxy.edits, methods=["POST"]),
        Route("/images/edits", proxy.edits, methods=["POST"]),
        Route("/openai/deployments/{model:path}/images/edits", proxy.edits, methods=["POST"]),
        Route("/v1/images/variations", proxy.variations, methods=["POST"]),
        Route("/images/variations", proxy.variations, methods=["POST"]),
        Route("/openai/deployments/{model:path}/images/variations", proxy.variations, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/models", proxy.models, methods=["GET"]),
        Route("/health/liveliness", liveliness, methods=["GET"]),
        Route("/health/liveness", liveliness, methods=["GET"]),
        Route("/health/readiness", proxy.readiness, methods=["GET"]),
        Route("/health", proxy.health, methods=["GET"]),
        *[Route(path, proxy.manage, methods=[method]) for path, method in MANAGEMENT_ROUTES],
    ]
    handlers: dict[Any, Any] = {HTTPException: _http_error, ProxyError: _proxy_error}
    guard = Middleware(OriginGuard, allowed={k for o in allow_origins if (k := origin_key(o))})
    return Starlette(routes=routes, lifespan=proxy.lifespan, exception_handlers=handlers, middleware=[guard])


class OriginGuard:
    """Cross-site requests cannot spend money: a browser request from another origin is refused (403)
    unless that origin was allowed with --allow-origin; allowed ones get CORS headers and preflights.

    Browsers send `Origin` with every cross-origin fetch and every POST; `Sec-Fetch-Site` covers the
    requests without it (an <img> or a link pointing at /health?probe=1). Clients that are not browsers
    send neither and pass as before."""

    def __init__(self, app: ASGIApp, allowed: set[tuple[str, str, int]]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                await _refuse_origin(scope, send, "a cross-site request without an Origin header")
                return
            await self.app(scope, receive, send)
            return
        key = origin_key(origin)
        if key is not None and key == _own_origin(scope, headers):
            await self.app(scope, receive, send)
        elif key is None or key not in self.allowed:
            await _refuse_origin(scope, send, f"a request from origin {origin[:100]}")
        elif scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(scope, origin, headers, send)
        else:
            await self.app(scope, receive, _with_cors(origin, send))


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as http://localhost:3000; None when it is not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _own_origin(scope: Scope, headers: Headers) -> tuple[str, str, int] | None:
    """The origin a browser on this server's own pages sends: the scheme and the Host it was sent to."""
    host = headers.get("host")
    return origin_key(f"{scope.get('scheme', 'http')}://{host}") if host else None


async def _refuse_origin(scope: Scope, send: Send, what: str) -> None:
    message = (
        f"{what} was refused: cross-site requests are not allowed. To allow a web app's origin, start "
        "imggen serve with --allow-origin ORIGIN."
    )
    response = error_response(ProxyError(403, message, type="permission_error", code="origin_not_allowed"), {})
    sys.stderr.write(redact(f"{scope['method']} {scope['path']} status=403 (origin not allowed)\n"))
    await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _preflight(scope: Scope, origin: str, headers: Headers, send: Send) -> None:
    allow = {
        "access-control-allow-origin": origin, "vary": "Origin", "access-control-allow-methods": "GET, POST",
        "access-control-max-age": "600",
    }  # fmt: skip
    asked = headers.get("access-control-request-headers")
    if asked:  # the origin is trusted: whatever headers its client sends (the openai SDK sends several)
        allow["access-control-allow-headers"] = asked
    await Response(status_code=204, headers=allow)(scope, _nothing, send)


def _with_cors(origin: str, send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                     (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]  # fmt: skip
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


async def _state(config: ProxyConfig) -> State:
    """Memory, or Redis with this instance's memory as its fallback (state.SharedState). (--strict checks
    Redis before the server starts: commands/serve.py.)"""
    redis = config.router.redis
    if not redis:
        return MemoryState()
    shared = SharedState(RedisState(redis["host"], redis["port"], redis["password"]))
    await shared.start()
    return shared


def _unauthorized() -> ProxyError:
    return ProxyError(
        401, "Authentication Error: invalid or missing key. Send the master key or a virtual key as "
        "'Authorization: Bearer <key>'.", type="auth_error", code="invalid_api_key",
    )  # fmt: skip


def _prompt(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProxyError(400, "'prompt' is required and must be a non-empty string", param="prompt")
    return value


async def _check(deployment: Deployment) -> str | None:
    """Build (not send) a request and load credentials: keys resolved, Bedrock signed, Google files read."""
    settings = deployment.settings
    request = ImageRequest(prompt="health check", model=settings.model)
    try:
        provider = get_provider(settings.model.provider)
        provider.build_request(request, settings)
        provider.check_credentials(settings)  # what building does not load
    except ImggenError as exc:
        return redact(str(exc))
    return None


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object a request sends, read no further than `limit` bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":  # a form a web page posts across sites cannot send JSON
        raise ProxyError(
            415, f"the request body must be JSON sent with 'Content-Type: application/json', not "
            f"'{media_type[:60] or 'none'}'", code="unsupported_media_type",
        )  # fmt: skip
    return parse_body(await _read(request, limit))


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be over the limit: by its Content-Length
    before reading anything, or by counting a chunked one as it arrives."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ProxyError:
    return ProxyError(
        413, f"the request body is larger than {limit / 1024 / 1024:.4g} MiB (general_settings.max_request_size_mb)",
        code="request_too_large",
    )  # fmt: skip


def parse_body(raw: bytes) -> dict[str, Any]:
    """A JSON object with finite numbers, valid Unicode and at most MAX_DEPTH levels; else a 400."""
    try:
        body = json.loads(raw or b"{}", parse_constant=_no_constant)
    except RecursionError as exc:
        raise ProxyError(400, f"the request body is nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        raise ProxyError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProxyError(400, "the request body must be a JSON object")
    _check_values(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_values(body: dict[str, Any]) -> None:
    """Nesting depth and lone surrogates ("\\ud800" decodes, but cannot be encoded or sent on)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise ProxyError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise ProxyError(400, "the request body has a string with a lone surrogate (\\ud800-\\udfff); "
                         "send valid Unicode") from exc  # fmt: skip


def _relay(streamed: Streamed, headers: dict[str, str]) -> Response:
    """The upstream's server-sent events as they arrive, byte for byte, with LiteLLM's headers."""
    upstream = streamed.upstream

    async def events() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    kind = upstream.headers.get("content-type", "text/event-stream")
    headers = {**headers, "cache-control": "no-cache"}
    return StreamingResponse(events(), media_type=kind, headers=headers, background=BackgroundTask(upstream.aclose))


# OpenAI's ImagesResponse fields an answer synthesised for another provider may carry, and their values.
OUTPUT_FORMATS = {"iVBOR": "png", "/9j/": "jpeg", "UklGR": "webp", "R0lGOD": "gif"}  # base64 of each magic


def _images_payload(response: ImageResponse) -> dict[str, Any]:
    """OpenAI's ImagesResponse: an OpenAI-shaped upstream's own fields unchanged (usage with every
    detail, background, output_format, quality, size, created) around the images; for another provider,
    the same fields synthesised from what is known (usage from its token counts, the images' format)."""
    data = []
    for image in response.data:
        # Text from upstream is redacted against every secret of the config before a client sees it.
        revised = redact_text(image.revised_prompt)
        item = {"b64_json": image.b64_json, "url": redact_text(image.url), "revised_prompt": revised}
        data.append({k: v for k, v in item.items() if v is not None})
    if response.upstream:
        payload = {k: _redacted(v) for k, v in response.upstream.items() if k != "data"}
        if not _is_int(payload.get("created")):
            payload["created"] = response.created
        if "usage" in payload and not _usage_shaped(payload["usage"]):
            payload.pop("usage")  # an OpenAI-compatible server's own counts: OpenAI's clients cannot read them
        payload["data"] = data
        if "usage" not in payload and response.usage.total_tokens:
            payload["usage"] = _usage(response)
        return payload
    payload = {"created": response.created, "data": data}
    if response.usage.total_tokens:
        payload["usage"] = _usage(response)
    formats = {_format(image.b64_json) for image in response.data}
    if len(formats) == 1 and None not in formats:
        payload["output_format"] = formats.pop()
    sizes = {image.size for image in response.data}
    if len(sizes) == 1 and isinstance(size := sizes.pop(), str) and SIZE.fullmatch(size):
        payload["size"] = size
    return payload


def _usage(response: ImageResponse) -> dict[str, Any]:
    usage = response.usage
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "input_tokens_details": {"text_tokens": usage.input_text_tokens,
                                     "image_tokens": usage.input_image_tokens}}  # fmt: skip


def _usage_shaped(usage: Any) -> bool:
    """OpenAI's Usage: the three counts and input_tokens_details' two (openai 3.57.0 images_response.py)."""
    if not isinstance(usage, dict) or not all(_is_int(usage.get(k)) for k in COUNTS):
        return False
    details = usage.get("input_tokens_details")
    return isinstance(details, dict) and all(_is_int(details.get(k)) for k in DETAIL_COUNTS)


COUNTS = ("input_tokens", "output_tokens", "total_tokens")
DETAIL_COUNTS = ("image_tokens", "text_tokens")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format(b64: str | None) -> str | None:
    if not b64:
        return None
    return next((kind for magic, kind in OUTPUT_FORMATS.items() if b64.startswith(magic)), None)


def _redacted(value: Any) -> Any:
    """An upstream value with every string redacted against the config's secrets."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def redact_text(text: str | None) -> str | None:
    return None if text is None else redact(str(text))


def _litellm_headers(call_id: str, deployment: str, cost: float | None) -> dict[str, str]:
    headers = {"x-litellm-call-id": call_id, "x-litellm-model-id": deployment}
    if cost is not None:
        headers["x-litellm-response-cost"] = f"{cost:.6g}"
    return headers


def error_response(exc: ProxyError, headers: dict[str, str]) -> Response:
    message = redact(exc.message)  # every error answer, whatever raised it: upstream text may quote a key
    envelope = {"error": {"message": message, "type": exc.type, "param": exc.param, "code": redact_text(exc.code)}}
    if exc.retry_after is not None:
        headers = {**headers, "retry-after": str(max(1, round(exc.retry_after + 0.49)))}
    return _json(exc.status, envelope, headers)


async def _proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    return error_response(exc, {})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(ProxyError(exc.status_code, message, code=code), {})


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _log(request: Request, model: str, deployment: str, status: int, started: float, cost: float | None) -> None:
    took = (time.perf_counter() - started) * 1000
    shown_cost = f"${cost:.4f}" if cost is not None else "-"
    line = f"{request.method} {request.url.path} model={model} deployment={deployment[:16]} status={status} "
    sys.stderr.write(redact(f"{line}{took:.0f}ms cost={shown_cost}\n"))
