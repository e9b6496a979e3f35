"""The provider interface and the registry: a plain dict keyed by model prefix, modules loaded on use."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BadResponseError, UsageError
from .contract import Provider, ProviderResult

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class ProviderSpec:
    """What imggen knows about a provider without importing its module."""

    name: str
    label: str
    module: str | None  # None: not available in this version yet
    env: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    # Any of these variables or files (under ~) means credentials are configured, for `imggen models`.
    credential_env: tuple[str, ...] = ()
    credential_files: tuple[str, ...] = ()
    ca_env: tuple[str, ...] = ()  # the provider's own CA-bundle variable, honoured as its SDK does


GOOGLE_CA_ENV = ("REQUESTS_CA_BUNDLE",)  # what google-auth and gcloud's Python tools read first

PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec(
        "openai",
        "OpenAI",
        "imggen.providers.openai",
        env={"api_key": ("OPENAI_API_KEY",), "api_base": ("OPENAI_BASE_URL", "OPENAI_API_BASE")},
        defaults={"api_base": "https://api.openai.com/v1"},
        credential_env=("OPENAI_API_KEY",),
    ),
    "azure": ProviderSpec(
        "azure",
        "Azure OpenAI",
        "imggen.providers.azure",
        env={
            "api_key": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
            "azure_ad_token": ("AZURE_AD_TOKEN",),
            "api_base": ("AZURE_API_BASE",),
            "api_version": ("AZURE_API_VERSION",),
        },
        # The first GA-era version that serves gpt-image models on the deployment route.
        defaults={"api_version": "2025-04-01-preview"},
        credential_env=("AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN"),
    ),
    "bedrock": ProviderSpec(
        "bedrock",
        "AWS Bedrock",
        "imggen.providers.bedrock",
        env={
            "api_key": ("AWS_BEARER_TOKEN_BEDROCK",),
            "api_base": ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"),
            "aws_region_name": ("AWS_REGION", "AWS_DEFAULT_REGION"),
            "aws_profile_name": ("AWS_PROFILE",),
            # Explicit keys (a profile's or the proxy config's); the environment's go through boto3's chain.
            "aws_access_key_id": (),
            "aws_secret_access_key": (),
            "aws_session_token": (),
        },
        credential_env=("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_WEB_IDENTITY_TOKEN_FILE"),
        credential_files=(".aws/credentials", ".aws/config"),
        ca_env=("AWS_CA_BUNDLE",),
    ),
    "vertex_ai": ProviderSpec(
        "vertex_ai",
        "Google Vertex AI",
        "imggen.providers.vertex",
        env={
            "vertex_project": ("VERTEXAI_PROJECT",),
            "vertex_location": ("VERTEXAI_LOCATION",),
            "vertex_credentials": ("GOOGLE_APPLICATION_CREDENTIALS",),
        },
        defaults={"vertex_location": "us-central1"},
        credential_env=("GOOGLE_APPLICATION_CREDENTIALS",),
        credential_files=(".config/gcloud/application_default_credentials.json",),
        ca_env=GOOGLE_CA_ENV,
    ),
    "gemini": ProviderSpec(
        "gemini",
        "Gemini API",
        "imggen.providers.gemini",
        env={"api_key": ("GEMINI_API_KEY",), "api_base": ("GEMINI_API_BASE",)},
        defaults={"api_base": "https://generativelanguage.googleapis.com/v1beta"},
        credential_env=("GEMINI_API_KEY",),
        ca_env=GOOGLE_CA_ENV,
    ),
    "placeholder": ProviderSpec("placeholder", "Placeholder (offline)", "imggen.providers.placeholder"),
}


def response_json(response: httpx.Response, request_id: str | None, who: str) -> Any:
    """A 2xx body as JSON, or the BadResponseError that says it is not."""
    try:
        return response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "unknown type")
        raise BadResponseError(f"{who}'s response is not JSON ({kind})", request_id=request_id) from exc


# What reading an unexpected shape of JSON can raise (`.get` on a list, `int()` of a dict, …).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError)


@contextmanager
def shape_guard(who: str, request_id: str | None) -> Iterator[None]:
    """A 2xx answer whose fields have types no parser foresaw fails that request alone, as a bad
    response, instead of stopping the batch (the parsers check types; this is the net under them)."""
    try:
        yield
    except SHAPE_ERRORS as exc:
        raise BadResponseError(
            f"{who}'s response has an unexpected shape ({type(exc).__name__})", request_id=request_id
        ) from exc


def hook(name: str, function: str) -> Any:
    """A provider module's optional function (`complete_settings`, `plan_notes`), or None."""
    module_name = PROVIDERS[name].module
    return getattr(importlib.import_module(module_name), function, None) if module_name else None


def get_provider(name: str) -> Provider:
    spec = PROVIDERS[name]
    if spec.module is None:
        raise UsageError(
            f"{name}/ models are not supported by this version of imggen yet",
            hint="Pick a model from: imggen models.",
        )
    module: Any = importlib.import_module(spec.module)
    provider: Provider = module.PROVIDER
    return provider


__all__ = ["Provider", "ProviderResult", "ProviderSpec", "get_provider", "hook", "response_json", "shape_guard"]
