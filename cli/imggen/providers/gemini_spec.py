"""The Gemini API provider's declaration (its implementation: gemini.py)."""

from __future__ import annotations

from .spec import ModelCheckSpec, ProviderSpec, SettingSpec
from .vertex_spec import GOOGLE_CA_ENV

# What `imggen models check` says of it (the listing: list_models in gemini.py).
CHECK = ModelCheckSpec("Gemini API", "Set GEMINI_API_KEY, or run: imggen config set gemini api_key")

SPEC = ProviderSpec(
    "gemini",
    "Gemini API",
    "imggen.providers.gemini",
    order=50,
    settings=(
        SettingSpec("api_key", ("GEMINI_API_KEY",), secret=True),
        SettingSpec("api_base", ("GEMINI_API_BASE",), default="https://generativelanguage.googleapis.com/v1beta"),
    ),
    credential_env=("GEMINI_API_KEY",),
    ca_env=GOOGLE_CA_ENV,
    secret_headers=("x-goog-api-key",),
    key_hint="Set GEMINI_API_KEY, or run: imggen config set gemini api_key",
    fields=("n", "size", "seed"),
    api_hosts=r"^generativelanguage\.googleapis\.com$",
    extra_fields="provider-params",
    check=CHECK,
    tasks=("generate", "edit"),
    environment=(
        ("GEMINI_API_KEY", "Gemini API key."),
        ("GEMINI_API_BASE", "Gemini endpoint root (default https://generativelanguage.googleapis.com/v1beta)."),
    ),
)
