"""The xAI provider's declaration (its implementation: xai.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

SPEC = ProviderSpec(
    "xai",
    "xAI",
    "imggen.providers.xai",
    order=70,
    settings=(
        SettingSpec("api_key", ("XAI_API_KEY",), secret=True),
        # LiteLLM 1.110.2 constants.XAI_API_BASE: the endpoint root with its /v1.
        SettingSpec("api_base", ("XAI_API_BASE",), default="https://api.x.ai/v1"),
    ),
    credential_env=("XAI_API_KEY",),
    secret_headers=("authorization",),
    key_hint="Set XAI_API_KEY, or run: imggen config set xai api_key",
    fields=("n", "size", "quality", "response_format", "user"),
    bare_ids=r"^grok-(imagine-image|\d+(-\d+)?-image)",
    api_hosts=r"^api\.x\.ai$",
    extra_fields="provider-params",
    tasks=("generate", "edit"),
    environment=(
        ("XAI_API_KEY", "xAI API key."),
        ("XAI_API_BASE", "Endpoint root (default https://api.x.ai/v1)."),
    ),
)
