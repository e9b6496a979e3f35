"""The Together AI provider's declaration (its implementation: together.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

KEY_ENV = ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY")  # LiteLLM 1.110.2's order

SPEC = ProviderSpec(
    "together",
    "Together AI",
    "imggen.providers.together",
    order=74,
    settings=(
        SettingSpec("api_key", KEY_ENV, secret=True),
        # LiteLLM 1.110.2 get_llm_provider_logic: TOGETHER_AI_API_BASE, default https://api.together.ai/v1.
        SettingSpec("api_base", ("TOGETHER_AI_API_BASE",), default="https://api.together.ai/v1"),
    ),
    credential_env=KEY_ENV,
    secret_headers=("authorization",),
    key_hint="Set TOGETHER_API_KEY, or run: imggen config set together api_key",
    fields=("n", "size", "response_format", "seed", "negative_prompt"),
    api_hosts=r"^api\.together\.(ai|xyz)$",
    extra_fields="provider-params",
    tasks=("generate", "edit"),
    environment=(
        ("TOGETHER_API_KEY", "Together AI API key (the together SDK's name)."),
        ("TOGETHER_AI_API_KEY", "The same, read when TOGETHER_API_KEY is unset (LiteLLM reads both)."),
        ("TOGETHERAI_API_KEY", "The same, LiteLLM's third name."),
        ("TOGETHER_AI_API_BASE", "Endpoint root (default https://api.together.ai/v1)."),
    ),
)
