"""Google Vertex AI: Imagen `:predict` and Gemini image models `:generateContent` (a prompt, or a prompt
and input images: an edit, google_wire.image_parts), OAuth via google-auth."""

from __future__ import annotations

import asyncio
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..settings import Setting, remember_secret
from ..types import SENT_LATER, HttpRequest, ImageRequest
from . import google_wire, response_json
from .contract import Provider
from .google_auth import ADC_HINT, load, token_source
from .vertex_spec import SPEC

if TYPE_CHECKING:
    from ..catalog import ModelInfo
    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport

PROJECT_HINT = "Set VERTEXAI_PROJECT, or run: imggen config set vertex_ai vertex_project <project-id>"


def complete_settings(settings: Resolved) -> None:
    """Location: flag/profile > VERTEXAI_LOCATION > the catalog's (Gemini 3 image models are served
    only from `global`) > us-central1. Project: flag/profile > VERTEXAI_PROJECT > the credentials'."""
    _catalog_location(settings)
    if settings.get("vertex_project") or not _credentials_on_disk(settings):
        return  # without a file, finding the project would mean asking the metadata server: leave it to the run
    project = _credentials_project(settings.get("vertex_credentials"))
    if project:
        settings.values["vertex_project"] = Setting(project, "credentials")


def _catalog_location(settings: Resolved) -> None:
    info = settings.model.info
    if info is not None and info.location and not settings.given("vertex_location"):
        settings.values["vertex_location"] = Setting(info.location, "catalog")


def location_for(info: ModelInfo, settings: Resolved) -> str:
    """Where a model's requests go: the user's location (flag, profile, VERTEXAI_LOCATION), else the
    catalog's for the model, else the default."""
    if info.location and not settings.given("vertex_location"):
        return info.location
    return str(settings.get("vertex_location"))


@cache
def _credentials_project(credentials_file: str | None) -> str | None:
    """Read once per process: a batch resolves settings once per prompt."""
    try:
        return load(credentials_file)[1]
    except ConfigError:
        return None  # a dry run needs no credentials; a real run says what is missing when it signs in


def _credentials_on_disk(settings: Resolved) -> bool:
    if settings.get("vertex_credentials"):
        return True
    gcloud = os.environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    return (Path(gcloud) / "application_default_credentials.json").is_file()


def host(settings: Resolved) -> str:
    return location_host(settings.get("api_base"), str(settings.get("vertex_location")))


def location_host(api_base: str | None, location: str) -> str:
    """The endpoint root for `location`: the api_base when one is set, else Google's host for it."""
    if api_base:
        return str(api_base).rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def project_of(settings: Resolved) -> str:
    """The Google Cloud project requests go to (after `oauth_token`, which may learn it)."""
    project = settings.get("vertex_project")
    if not project:
        raise ConfigError(f"no Google Cloud project for {settings.model.name}", hint=PROJECT_HINT)
    return str(project)


async def oauth_token(settings: Resolved) -> str:
    """A token for the settings' credentials; the project those name fills a vertex_project not set."""
    source = token_source(settings.get("vertex_credentials"))
    token: str = await asyncio.to_thread(source.token)
    if not settings.get("vertex_project") and source.project:  # e.g. ADC from the metadata server
        settings.values["vertex_project"] = Setting(source.project, "credentials")
    return token


def url(request: ImageRequest, settings: Resolved, dry_run: bool) -> str:
    project = "{project}" if dry_run and not settings.get("vertex_project") else project_of(settings)
    location = settings.get("vertex_location")
    path = f"v1/projects/{project}/locations/{location}/publishers/google/models/{request.model.model_id}"
    return f"{host(settings)}/{path}:{google_wire.method_of(request)}"


def auth_hint(settings: Resolved) -> str:
    project = settings.get("vertex_project")
    return f"Check that the credentials may use Vertex AI in project {project}. {ADC_HINT}"


def check_credentials(settings: Resolved) -> None:
    """Load the credentials without a token exchange (what `imggen serve`'s /health checks)."""
    load(settings.get("vertex_credentials"))


class VertexProvider(google_wire.GoogleWire):
    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        headers = {"Content-Type": "application/json"}
        if dry_run:
            headers["Authorization"] = f"Bearer {SENT_LATER}"
        return google_wire.build_http(url(request, settings, dry_run), headers, request)

    async def prepare(self, request: ImageRequest, settings: Resolved) -> str:
        """An OAuth token, before building: the credentials may name the project the URL needs."""
        return await oauth_token(settings)

    async def authorize(self, http: HttpRequest, settings: Resolved, credentials: str) -> None:
        remember_secret(credentials)
        http.headers["Authorization"] = f"Bearer {credentials}"

    def auth_hint(self, settings: Resolved) -> str:
        return auth_hint(settings)

    def complete_settings(self, settings: Resolved) -> None:
        complete_settings(settings)

    def plan_notes(self, request: ImageRequest) -> list[str]:
        """Vertex AI limits each inline image (7 MB, the catalog's edit rules) and no total an edit's
        14 images could reach (e.g. 500 MB per request on the Gemini model cards): no total check."""
        return google_wire.plan_notes(request)

    def check_credentials(self, settings: Resolved) -> None:
        check_credentials(settings)

    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        return list(model_lookups(settings).values())

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """One lookup per catalog id: `GET {host}/v1beta1/publishers/google/models/{id}` -> PublisherModel
        `{"name", "versionId", "launchStage", "versionState", ...}`; 404 when the model does not exist:
        Vertex AI REST reference (PublisherModel, publishers.models.get). It carries no deprecation or
        shutdown date."""
        token = await asyncio.to_thread(token_source(settings.get("vertex_credentials")).token)
        remember_secret(token)
        lookups = model_lookups(settings)
        for http in lookups.values():
            http.headers["Authorization"] = f"Bearer {token}"
        answers = await asyncio.gather(*(_lookup(i, h, settings, transport) for i, h in lookups.items()))
        return {listed.model_id: listed for listed in answers if listed is not None}


def model_lookups(settings: Resolved) -> dict[str, HttpRequest]:
    """One publisher-model lookup per catalog id, at the location its requests would go to."""
    from urllib.parse import quote

    from ..modelcheck import catalog_models

    requests = {}
    for info in catalog_models(SPEC.name):
        root = location_host(settings.get("api_base"), location_for(info, settings))
        url = f"{root}/v1beta1/publishers/google/models/{quote(info.model_id, safe='@')}"
        requests[info.model_id] = HttpRequest("GET", url, {"Authorization": f"Bearer {SENT_LATER}"})
    return requests


async def _lookup(model_id: str, http: HttpRequest, settings: Resolved, transport: Transport) -> Listed | None:
    from ..errors import GenerationError
    from .contract import error_mapper

    try:
        response = await transport.send(http, error_mapper(PROVIDER, settings))
    except GenerationError as exc:
        if exc.status == 404:
            return None  # no such publisher model (any more)
        raise
    return parse_model(model_id, response_json(response, response.headers.get("x-request-id"), "Vertex AI"))


def parse_model(model_id: str, payload: Any) -> Listed:
    from ..modelcheck import Listed

    payload = payload if isinstance(payload, dict) else {}
    stage = str(payload.get("launchStage") or "listed")
    version = str(payload.get("versionState") or "").removeprefix("VERSION_STATE_").lower()
    return Listed(model_id, stage + (f", {version}" if version and version != "unspecified" else ""))


PROVIDER: Provider = VertexProvider()
