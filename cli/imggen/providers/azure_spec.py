"""The Azure OpenAI provider's declaration (its implementation: azure.py)."""

from __future__ import annotations

from .spec import ModelCheckSpec, ProviderSpec, SettingSpec

# What `imggen models check` says of it (the listing: list_models in azure.py).
CHECK = ModelCheckSpec("Azure", "Set AZURE_API_KEY and AZURE_API_BASE, or run: imggen config set azure api_key")

SPEC = ProviderSpec(
    "azure",
    "Azure OpenAI",
    "imggen.providers.azure",
    order=20,
    settings=(
        SettingSpec("api_key", ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"), secret=True),
        SettingSpec("azure_ad_token", ("AZURE_AD_TOKEN",), secret=True, profile=False, identity=True),
        SettingSpec("api_base", ("AZURE_API_BASE",)),
        # The first GA-era version that serves gpt-image models on the deployment route.
        SettingSpec("api_version", ("AZURE_API_VERSION",), default="2025-04-01-preview"),
    ),
    credential_env=("AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN"),
    secret_headers=("api-key", "authorization"),
    key_hint="Set AZURE_API_KEY (or AZURE_AD_TOKEN for Entra ID), or run: imggen config set azure api_key",
    fields=("n", "size", "quality", "style", "response_format", "user"),
    catalog_ids=False,  # ids are deployment names a user chose
    api_hosts=r"(^|\.)(openai|cognitiveservices)\.azure\.com$",
    # Azure's endpoints are always set by the user, and are Microsoft's own on these hosts (a resource's).
    own_hosts=(".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"),
    extra_fields="openai-format",
    streams=True,
    check=CHECK,
    environment=(
        ("AZURE_API_KEY", "API key (AZURE_OPENAI_API_KEY is read too)."),
        ("AZURE_OPENAI_API_KEY", "API key, the Azure SDK's name."),
        ("AZURE_AD_TOKEN", "A Microsoft Entra ID token, instead of a key."),
        ("AZURE_API_BASE", "The resource's endpoint, https://NAME.openai.azure.com."),
        ("AZURE_API_VERSION", "The API version (default 2025-04-01-preview)."),
    ),
    tasks=("generate", "edit"),
)
