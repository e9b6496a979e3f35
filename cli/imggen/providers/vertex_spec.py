"""The Google Vertex AI provider's declaration (its implementation: vertex.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .spec import ModelCheckSpec, ProviderSpec, SettingSpec

GOOGLE_CA_ENV = ("REQUESTS_CA_BUNDLE",)  # what google-auth and gcloud's Python tools read first


def google_source(found: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Application Default Credentials as google-auth finds them, never asking the GCE metadata server:
    the profile's credentials (a file or inline JSON), GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file."""
    import json

    gcloud = Path(env.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    choices = [
        ("vertex_credentials", found.get("vertex_credentials")),
        ("env:GOOGLE_APPLICATION_CREDENTIALS", env.get("GOOGLE_APPLICATION_CREDENTIALS")),
        ("gcloud ADC", gcloud / "application_default_credentials.json"),
    ]
    for source, where in choices:
        if not where:
            continue
        text = str(where)
        try:
            if not text.lstrip().startswith("{"):
                text = Path(text).expanduser().read_text(encoding="utf-8")
            if isinstance(json.loads(text), dict):
                return source
        except (OSError, ValueError):
            continue
    return None


# What `imggen models check` says of it (the listing: list_models in vertex.py).
CHECK = ModelCheckSpec(
    "Vertex AI",
    "Run: gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS.",
    what="one lookup per catalog model",
)

SPEC = ProviderSpec(
    "vertex_ai",
    "Google Vertex AI",
    "imggen.providers.vertex",
    order=40,
    settings=(
        # LiteLLM's proxy config also spells them vertex_ai_project, vertex_ai_location, vertex_ai_credentials.
        SettingSpec("vertex_project", ("VERTEXAI_PROJECT",), param=True, proxy_aliases=("vertex_ai_project",)),
        SettingSpec(
            "vertex_location",
            ("VERTEXAI_LOCATION",),
            default="us-central1",
            param=True,
            proxy_aliases=("vertex_ai_location",),
        ),
        SettingSpec(
            "vertex_credentials",
            ("GOOGLE_APPLICATION_CREDENTIALS",),
            secret_if_json=True,
            param=True,
            identity=True,
            proxy_aliases=("vertex_ai_credentials",),
        ),
    ),
    credential_env=("GOOGLE_APPLICATION_CREDENTIALS",),
    credential_files=(".config/gcloud/application_default_credentials.json",),
    chain_env=("GOOGLE_APPLICATION_CREDENTIALS",),
    credential_chain=google_source,
    ca_env=GOOGLE_CA_ENV,
    secret_headers=("authorization",),
    fields=("n", "size", "seed", "negative_prompt"),
    bare_ids=r"^(imagen-|imagegeneration@)",
    api_hosts=r"^([a-z0-9-]+-)?aiplatform(\.[a-z0-9-]+\.rep)?\.googleapis\.com$",
    extra_fields="provider-params",
    check=CHECK,
    tasks=("generate", "edit"),
    environment=(
        ("GOOGLE_APPLICATION_CREDENTIALS", "A service-account or ADC JSON file."),
        ("CLOUDSDK_CONFIG", "gcloud's directory, where its ADC file lives (default ~/.config/gcloud)."),
        ("VERTEXAI_PROJECT", "The Google Cloud project."),
        (
            "VERTEXAI_LOCATION",
            "The region (default us-central1, or the catalog's location for a model served from one, e.g. global).",
        ),
        ("NO_GCE_CHECK", "true: google-auth never asks the GCE metadata server."),
    ),
    # Google's list of batch prediction models names Gemini Nano Banana 2.1 (docs.cloud.google.com/
    # gemini-enterprise-agent-platform/reference/models/batch-prediction-api), but imggen does not drive
    # Vertex batch prediction jobs (Cloud Storage input and output) yet.
    batch_note="imggen does not drive Vertex AI batch prediction yet; the Gemini API's batch mode runs the same models",
)
