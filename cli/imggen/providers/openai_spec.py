"""The OpenAI provider's declaration (its implementation: openai.py)."""

from __future__ import annotations

from .spec import ModelCheckSpec, ProviderSpec, SettingSpec

# What `imggen models check` says of it (the listing: list_models in openai.py).
CHECK = ModelCheckSpec("OpenAI", "Set OPENAI_API_KEY, or run: imggen config set openai api_key", keyless_base=True)

SPEC = ProviderSpec(
    "openai",
    "OpenAI",
    "imggen.providers.openai",
    order=10,
    settings=(
        SettingSpec("api_key", ("OPENAI_API_KEY",), secret=True),
        SettingSpec("api_base", ("OPENAI_BASE_URL", "OPENAI_API_BASE"), default="https://api.openai.com/v1"),
    ),
    credential_env=("OPENAI_API_KEY",),
    secret_headers=("authorization",),
    key_hint="Set OPENAI_API_KEY, or run: imggen config set openai api_key",
    fields=("n", "size", "quality", "style", "response_format", "user"),
    bare_ids=r"^(dall-e-\d|gpt-image-|chatgpt-image-)",
    api_hosts=r"^api\.openai\.com$",
    extra_fields="openai-format",
    compatible_servers=True,
    streams=True,
    check=CHECK,
    environment=(
        ("OPENAI_API_KEY", "API key."),
        ("OPENAI_BASE_URL", "Endpoint root (default https://api.openai.com/v1)."),
        ("OPENAI_API_BASE", "The same, the older name."),
    ),
    tasks=("generate", "edit"),
)
