"""`imggen models check`: ask each provider which image models this account can use, without generating
anything, and compare the answer with the catalog.

Each provider has a request builder (pure, also used by --dry-run) and a parser of its answer into
`Listed` entries (pure); `fetch` sends the requests through imggen's transport; `compare` turns the
catalog and the listings into rows, one per model, each with its disagreements.

Sources of the wire facts:
- OpenAI `GET {api_base}/models` -> `{"data": [{"id", "created", "owned_by", "shutdown_date"?}]}`:
  openai 3.57.0 `resources/models.py`, `types/model.py`.
- Azure OpenAI `GET {endpoint}/openai/models?api-version=2024-10-21` with `api-key` -> `{"data": [{"id",
  "lifecycle_status", "deprecation": {"inference": unix seconds}}]}`:
  https://learn.microsoft.com/rest/api/azureopenai/models/list
- Gemini API `GET {api_base}/models?pageSize=&pageToken=` with `x-goog-api-key` -> `{"models": [{"name":
  "models/ID"}], "nextPageToken"}`: google-genai 3.6.1 `models.py` (_ListModelsParameters, _ListModelsResponse).
- Bedrock `GET /foundation-models?byOutputModality=IMAGE` (ListFoundationModels), SigV4 for service
  `bedrock` -> `{"modelSummaries": [{"modelId", "modelLifecycle": {"status": ACTIVE|LEGACY, "legacyTime",
  "endOfLifeTime", ...}}]}` (ISO 8601 times): botocore 1.44.8 `data/bedrock/2023-04-20/service-2.json`.
- Vertex AI `GET {host}/v1beta1/publishers/google/models/{id}` -> PublisherModel `{"name", "versionId",
  "launchStage", "versionState", ...}`; 404 when the model does not exist: Vertex AI REST reference
  (PublisherModel, publishers.models.get). The resource carries no deprecation or shutdown date.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .catalog import ModelInfo, all_models
from .errors import AuthError, ConfigError, GenerationError, ImggenError
from .types import SENT_LATER, HttpRequest

if TYPE_CHECKING:
    import httpx

    from .settings import Config, Resolved
    from .transport import Transport

LABELS = {"openai": "OpenAI", "azure": "Azure", "bedrock": "Bedrock", "vertex_ai": "Vertex AI", "gemini": "Gemini API"}
CHECKABLE = tuple(LABELS)
# Listings hold chat, audio and embedding models too: only these count as image models.
IMAGE_FAMILIES = ("gpt-image-*", "dall-e-*", "chatgpt-image-*")
AZURE_MODELS_VERSION = "2024-10-21"  # the GA version that documents Models - List
GEMINI_PAGE_SIZE = 1000
MAX_PAGES = 50
GEO_PREFIXES = ("us.", "eu.", "apac.", "global.")  # Bedrock inference profiles: checked as their model
KEY_HINTS = {
    "openai": "Set OPENAI_API_KEY, or run: imggen config set openai api_key",
    "azure": "Set AZURE_API_KEY and AZURE_API_BASE, or run: imggen config set azure api_key",
    "bedrock": "Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run aws configure.",
    "vertex_ai": "Run: gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS.",
    "gemini": "Set GEMINI_API_KEY, or run: imggen config set gemini api_key",
}


@dataclass(frozen=True)
class Listed:
    """One model as the provider lists it. `lifecycle` is the provider's own words; `state` is
    "active" or "legacy" when the provider says, None when it says nothing about lifecycle."""

    model_id: str
    lifecycle: str = "listed"
    state: str | None = None
    ends: dt.date | None = None  # the shutdown / end-of-life date the provider gives


@dataclass
class Listing:
    provider: str
    models: dict[str, Listed] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckRow:
    model: str
    provider: str
    in_catalog: bool
    available: bool
    provider_lifecycle: str | None
    catalog_status: str | None
    disagreements: tuple[str, ...] = ()
    catalog_said: str | None = None  # the status with its date, for the table: "retires 2026-12-01"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "provider": self.provider, "in_catalog": self.in_catalog,
            "available": self.available, "provider_lifecycle": self.provider_lifecycle,
            "catalog_status": self.catalog_status, "disagreements": list(self.disagreements),
        }  # fmt: skip


@dataclass
class Report:
    rows: list[CheckRow]
    failures: dict[str, ImggenError]

    @property
    def exit_code(self) -> int:
        if any(e.exit_code == 3 for e in self.failures.values()):
            return 3
        if self.failures:
            return max(1, *(e.exit_code for e in self.failures.values()))
        return 1 if any(r.disagreements for r in self.rows) else 0


# --- the catalog side ---------------------------------------------------------------------------


def catalog_words(info: ModelInfo, today: dt.date) -> str:
    """The catalog's status with its date: "active", "deprecated 2026-10-23", "retires 2026-12-01",
    "retired 2026-05-12"."""
    status = info.status(today)
    retired, deprecated = info.lifecycle.get("retired"), info.lifecycle.get("deprecated")
    if status == "retired":
        return f"retired {retired}" if retired else "retired"
    if status == "deprecated":
        return f"retires {retired}" if retired else f"deprecated {deprecated}" if deprecated else "deprecated"
    return status


def catalog_models(provider: str) -> list[ModelInfo]:
    return [m for m in all_models() if m.provider == provider]


def base_id(model_id: str) -> str:
    """A Bedrock inference profile (`us.amazon.nova-canvas-v1:0`) is listed as its model."""
    for prefix in GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def is_image_model(provider: str, model_id: str, known: Iterable[str]) -> bool:
    if model_id in known:
        return True
    if provider in ("openai", "azure"):
        return any(fnmatch.fnmatchcase(model_id, pattern) for pattern in IMAGE_FAMILIES)
    if provider == "gemini":
        return "image" in model_id  # gemini-*-image*, imagen-*
    return True  # Bedrock filters by output modality; Vertex is asked per catalog id


# --- comparing ----------------------------------------------------------------------------------


def compare(catalog: Iterable[ModelInfo], listings: Iterable[Listing], today: dt.date) -> list[CheckRow]:
    """One row per catalog model of each listed provider, then one per listed model the catalog lacks."""
    rows: list[CheckRow] = []
    catalog = list(catalog)
    for listing in listings:
        known = [m for m in catalog if m.provider == listing.provider]
        rows += [_catalog_row(m, listing, today) for m in known]
        covered = {base_id(m.model_id) for m in known} | {m.model_id for m in known}
        label = LABELS[listing.provider]
        for model_id, listed in sorted(listing.models.items()):
            if model_id not in covered:
                rows.append(CheckRow(f"{listing.provider}/{model_id}", listing.provider, False, True,
                                     listed.lifecycle, None, (f"listed by {label}, not in the catalog",)))  # fmt: skip
    return rows


def _catalog_row(info: ModelInfo, listing: Listing, today: dt.date) -> CheckRow:
    listed = listing.models.get(info.model_id) or listing.models.get(base_id(info.model_id))
    disagreements = disagreements_of(info, listed, LABELS[info.provider], today)
    lifecycle = listed.lifecycle if listed else None
    said = catalog_words(info, today)
    return CheckRow(
        info.id, info.provider, True, listed is not None, lifecycle, info.status(today), disagreements, said
    )


def disagreements_of(info: ModelInfo, listed: Listed | None, label: str, today: dt.date) -> tuple[str, ...]:
    status, said = info.status(today), catalog_words(info, today)
    if listed is None:
        return () if status == "retired" else (f"in catalog, not listed by {label}",)
    theirs = f"catalog: {said}; {label}: {listed.lifecycle}"
    if status == "retired":
        return (theirs,)
    retired = info.lifecycle.get("retired")
    if listed.ends is not None and (retired is None or dt.date.fromisoformat(retired) != listed.ends):
        return (theirs,)
    if listed.state == "legacy" and status == "active":
        return (theirs,)
    if listed.state == "active" and status == "deprecated" and listed.ends is None:
        return (theirs,)
    return ()


# --- parsing answers (pure) -----------------------------------------------------------------------


def _date(value: Any) -> dt.date | None:
    """A date from ISO 8601 text (`2026-06-30`, `2026-06-30T00:00:00Z`) or unix seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _items(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def parse_openai(provider: str, payload: Any) -> dict[str, Listed]:
    """OpenAI's (and Azure's) `data[]`: image models only."""
    known = {m.model_id for m in catalog_models(provider)}
    found: dict[str, Listed] = {}
    for item in _items(payload, "data"):
        model_id = item.get("id")
        if isinstance(model_id, str) and is_image_model(provider, model_id, known):
            found[model_id] = _openai_entry(provider, model_id, item)
    return found


def _openai_entry(provider: str, model_id: str, item: dict[str, Any]) -> Listed:
    if provider == "azure":
        deprecation = item.get("deprecation")
        ends = _date(deprecation.get("inference")) if isinstance(deprecation, dict) else None
        status = str(item.get("lifecycle_status") or "listed")
        words = status + (f", inference retires {ends}" if ends else "")
        legacy = status.lower().startswith("deprecat") or status.lower() == "legacy"
        return Listed(model_id, words, "legacy" if legacy else None, ends)
    ends = _date(item.get("shutdown_date"))
    return Listed(model_id, f"shuts down {ends}" if ends else "listed", "legacy" if ends else None, ends)


def parse_gemini(payload: Any) -> tuple[dict[str, Listed], str | None]:
    """One page of the Gemini API's model list (image models only) and the next page's token."""
    known = {m.model_id for m in catalog_models("gemini")}
    found: dict[str, Listed] = {}
    for item in _items(payload, "models"):
        name = item.get("name")
        model_id = name.removeprefix("models/") if isinstance(name, str) else None
        if model_id and is_image_model("gemini", model_id, known):
            found[model_id] = Listed(model_id)
    token = payload.get("nextPageToken") if isinstance(payload, dict) else None
    return found, token if isinstance(token, str) and token else None


def parse_bedrock(payload: Any) -> dict[str, Listed]:
    found: dict[str, Listed] = {}
    for item in _items(payload, "modelSummaries"):
        model_id = item.get("modelId")
        if isinstance(model_id, str):
            found[model_id] = _bedrock_entry(model_id, item.get("modelLifecycle"))
    return found


def _bedrock_entry(model_id: str, lifecycle: Any) -> Listed:
    lifecycle = lifecycle if isinstance(lifecycle, dict) else {}
    status = str(lifecycle.get("status") or "listed")
    ends = _date(lifecycle.get("endOfLifeTime"))
    legacy = _date(lifecycle.get("legacyTime"))
    words = status + (f", legacy since {legacy}" if legacy and status == "LEGACY" else "")
    words += f", end of life {ends}" if ends else ""
    state = {"ACTIVE": "active", "LEGACY": "legacy"}.get(status)
    return Listed(model_id, words, state, ends)


def parse_vertex(model_id: str, payload: Any) -> Listed:
    payload = payload if isinstance(payload, dict) else {}
    stage = str(payload.get("launchStage") or "listed")
    version = str(payload.get("versionState") or "").removeprefix("VERSION_STATE_").lower()
    return Listed(model_id, stage + (f", {version}" if version and version != "unspecified" else ""))


# --- building requests (pure; also what --dry-run shows) -----------------------------------------


def _settings(provider: str, model_id: str | None = None) -> Resolved:
    from .settings import resolve

    models = catalog_models(provider)
    name = model_id or (models[0].model_id if models else "check")
    return resolve(model=f"{provider}/{name}")


def configured_for_check(provider: str, config: Config) -> bool:
    """Credentials configured, or an OpenAI-compatible server (a custom api_base may need no key)."""
    from .settings import credentials_configured

    if credentials_configured(provider, config):
        return True
    return provider == "openai" and _custom_base(_settings("openai"))


def _custom_base(settings: Resolved) -> bool:
    setting = settings.values.get("api_base")
    return setting is not None and setting.value is not None and setting.source != "default"


def openai_request(settings: Resolved, dry_run: bool) -> HttpRequest:
    from .providers.openai_wire import bearer, join

    key = settings.get("api_key")
    if not key and not dry_run and not _custom_base(settings):
        raise ConfigError("no OpenAI API key", hint=KEY_HINTS["openai"])
    return HttpRequest("GET", join(str(settings.get("api_base")), "models"), bearer(key))


def azure_request(settings: Resolved, dry_run: bool) -> HttpRequest:
    from .providers.azure import DRY_RUN_BASE
    from .providers.openai_wire import bearer, join

    base, key, token = settings.get("api_base"), settings.get("api_key"), settings.get("azure_ad_token")
    if not dry_run and not base:
        raise ConfigError("no Azure endpoint (AZURE_API_BASE)", hint=KEY_HINTS["azure"])
    base = str(base).split("/openai/", 1)[0] if base else None  # a deployment URL given as the base
    if not dry_run and not (key or token):
        raise ConfigError("no Azure API key", hint=KEY_HINTS["azure"])
    url = join(str(base or DRY_RUN_BASE), "openai/models") + f"?api-version={AZURE_MODELS_VERSION}"
    return HttpRequest("GET", url, {"api-key": str(key)} if key else bearer(token))


def gemini_request(settings: Resolved, dry_run: bool, page_token: str | None = None) -> HttpRequest:
    key = settings.get("api_key")
    if not key and not dry_run:
        raise ConfigError("no Gemini API key", hint=KEY_HINTS["gemini"])
    query = {"pageSize": GEMINI_PAGE_SIZE, **({"pageToken": page_token} if page_token else {})}
    url = f"{str(settings.get('api_base')).rstrip('/')}/models?{urlencode(query)}"
    return HttpRequest("GET", url, {"x-goog-api-key": str(key)} if key else {})


def bedrock_endpoint(region: str) -> str:
    """The control plane (not bedrock-runtime): boto3's AWS_ENDPOINT_URL_BEDROCK, then AWS_ENDPOINT_URL."""
    override = os.environ.get("AWS_ENDPOINT_URL_BEDROCK") or os.environ.get("AWS_ENDPOINT_URL")
    return override.rstrip("/") if override else f"https://bedrock.{region}.amazonaws.com"


def bedrock_regions() -> dict[str, Resolved]:
    """One settings per region the catalog's Bedrock models would be sent to (region rules as for
    generation: a region the user set wins, else each model's catalog region)."""
    regions: dict[str, Resolved] = {}
    ids: list[str | None] = [m.model_id for m in catalog_models("bedrock")]
    for model_id in ids or [None]:
        settings = _settings("bedrock", model_id)
        regions.setdefault(str(settings.get("aws_region_name")), settings)
    return regions


def bedrock_request(region: str, settings: Resolved, dry_run: bool) -> HttpRequest:
    from .providers.bedrock import _bearer

    url = f"{bedrock_endpoint(region)}/foundation-models?byOutputModality=IMAGE"
    headers = {"Accept": "application/json", **_bearer(settings, url, dry_run)}
    if dry_run and "Authorization" not in headers:
        headers["Authorization"] = f"AWS4-HMAC-SHA256 {SENT_LATER}"
    return HttpRequest("GET", url, headers)


def vertex_requests(settings: Resolved) -> dict[str, HttpRequest]:
    """One publisher-model lookup per catalog id, at the location its requests would go to."""
    from .providers.vertex import location_host

    located = settings.values.get("vertex_location")
    user_location = located.value if located is not None and located.source != "default" else None
    requests = {}
    for info in catalog_models("vertex_ai"):
        location = user_location or getattr(info, "location", None) or settings.get("vertex_location")
        root = location_host(settings.get("api_base"), str(location))
        url = f"{root}/v1beta1/publishers/google/models/{quote(info.model_id, safe='@')}"
        requests[info.model_id] = HttpRequest("GET", url, {"Authorization": f"Bearer {SENT_LATER}"})
    return requests


def dry_run_requests(provider: str) -> list[HttpRequest]:
    """The requests `check` would send first for `provider` (later Gemini pages are not known yet)."""
    if provider == "bedrock":
        return [bedrock_request(region, s, True) for region, s in bedrock_regions().items()]
    if provider == "vertex_ai":
        return list(vertex_requests(_settings(provider)).values())
    build = {"openai": openai_request, "azure": azure_request, "gemini": gemini_request}[provider]
    return [build(_settings(provider), True)]


# --- sending ------------------------------------------------------------------------------------


async def fetch(provider: str) -> Listing:
    """Ask one provider; raises the provider's error (credentials: exit 3; network: exit 1)."""
    from .providers import PROVIDERS
    from .transport import Transport

    settings = _settings(provider)
    async with Transport(timeout=float(settings.get("timeout", 600)), ca_env=PROVIDERS[provider].ca_env) as transport:
        fetcher = _FETCHERS[provider]
        return Listing(provider, await fetcher(settings, transport))


async def _fetch_openai(settings: Resolved, transport: Transport) -> dict[str, Listed]:
    from .providers import response_json
    from .providers.openai_wire import map_error

    provider = settings.model.provider
    build = openai_request if provider == "openai" else azure_request
    response = await transport.send(build(settings, False), map_error)
    return parse_openai(provider, response_json(response, None, LABELS[provider]))


async def _fetch_gemini(settings: Resolved, transport: Transport) -> dict[str, Listed]:
    from .providers import response_json

    found: dict[str, Listed] = {}
    token: str | None = None
    for _ in range(MAX_PAGES):
        response = await transport.send(gemini_request(settings, False, token), _gemini_error)
        page, token = parse_gemini(response_json(response, None, "the Gemini API"))
        found.update(page)
        if token is None:
            break
    return found


def _gemini_error(response: httpx.Response) -> GenerationError:
    """Google's error mapping, with a rejected key (400 API_KEY_INVALID) as a credentials error."""
    from .providers.google_wire import map_error

    hint = "Check the Gemini API key (imggen config explain -m gemini/… shows which one was used)."
    error = map_error(response, hint)
    if response.status_code == 400 and ("API_KEY_INVALID" in response.text or "API key not valid" in response.text):
        return AuthError(error.message, hint=hint, status=error.status, request_id=error.request_id, code=error.code)
    return error


async def _fetch_bedrock(_settings_unused: Resolved, transport: Transport) -> dict[str, Listed]:
    from .providers import response_json
    from .providers.bedrock import map_error, sign

    found: dict[str, Listed] = {}
    for region, settings in bedrock_regions().items():
        http = bedrock_request(region, settings, False)
        if "Authorization" not in http.headers:
            await asyncio.to_thread(sign, http, settings)

        def mapped(response: httpx.Response, settings: Resolved = settings) -> GenerationError:
            error = map_error(response, settings)
            if isinstance(error, AuthError) and error.code == "AccessDeniedException":
                error.hint = "Check that the IAM policy allows bedrock:ListFoundationModels."
            return error

        response = await transport.send(http, mapped)
        found.update(parse_bedrock(response_json(response, response.headers.get("x-amzn-requestid"), "Bedrock")))
    return found


async def _fetch_vertex(settings: Resolved, transport: Transport) -> dict[str, Listed]:
    from .providers.google_auth import token_source
    from .settings import remember_secret

    token = await asyncio.to_thread(token_source(settings.get("vertex_credentials")).token)
    remember_secret(token)
    lookups = vertex_requests(settings)
    for http in lookups.values():
        http.headers["Authorization"] = f"Bearer {token}"
    answers = await asyncio.gather(*(_vertex_lookup(i, h, settings, transport) for i, h in lookups.items()))
    return {listed.model_id: listed for listed in answers if listed is not None}


async def _vertex_lookup(model_id: str, http: HttpRequest, settings: Resolved, transport: Transport) -> Listed | None:
    from .providers import response_json
    from .providers.google_wire import map_error
    from .providers.vertex import auth_hint

    hint = auth_hint(settings)
    try:
        response = await transport.send(http, lambda r: map_error(r, hint))
    except GenerationError as exc:
        if exc.status == 404:
            return None  # no such publisher model (any more)
        raise
    return parse_vertex(model_id, response_json(response, response.headers.get("x-request-id"), "Vertex AI"))


_FETCHERS: dict[str, Callable[[Resolved, Transport], Awaitable[dict[str, Listed]]]] = {
    "openai": _fetch_openai, "azure": _fetch_openai, "gemini": _fetch_gemini,
    "bedrock": _fetch_bedrock, "vertex_ai": _fetch_vertex,
}  # fmt: skip


async def check(providers: Iterable[str], today: dt.date) -> Report:
    """Ask every provider at once; one provider's failure is recorded and the others still report."""
    providers = list(providers)
    answers = await asyncio.gather(*(fetch(p) for p in providers), return_exceptions=True)
    listings: list[Listing] = []
    failures: dict[str, ImggenError] = {}
    for provider, answer in zip(providers, answers, strict=True):
        if isinstance(answer, ImggenError):
            answer.locate(LABELS[provider])
            failures[provider] = answer
        elif isinstance(answer, BaseException):
            raise answer
        else:
            listings.append(answer)
    return Report(compare(all_models(), listings, today), failures)
