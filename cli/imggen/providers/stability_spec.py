"""The Stability AI platform provider's declaration (its implementation: stability.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

SPEC = ProviderSpec(
    "stability",
    "Stability AI",
    "imggen.providers.stability",
    order=64,
    settings=(
        # LiteLLM 1.110.2 llms/stability/image_generation/transformation.py reads the same two variables.
        SettingSpec("api_key", ("STABILITY_API_KEY",), secret=True),
        SettingSpec("api_base", ("STABILITY_API_BASE",), default="https://api.stability.ai"),
    ),
    credential_env=("STABILITY_API_KEY",),
    secret_headers=("authorization",),
    key_hint="Set STABILITY_API_KEY, or run: imggen config set stability api_key",
    fields=("n", "size", "seed", "negative_prompt"),
    api_hosts=r"^api\.stability\.ai$",
    extra_fields="provider-params",
    tasks=("generate", "edit"),
    environment=(
        ("STABILITY_API_KEY", "Stability AI platform API key (sk-...)."),
        ("STABILITY_API_BASE", "Endpoint root (default https://api.stability.ai)."),
    ),
)
