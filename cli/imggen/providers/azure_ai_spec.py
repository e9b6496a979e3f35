"""Azure AI Foundry's image models (FLUX, MAI) as LiteLLM names them, `azure_ai/<deployment>`: the
declaration (its implementation: azure_ai.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

KEY_HINT = "Set AZURE_AI_API_KEY (or AZURE_AD_TOKEN for Entra ID), or run: imggen config set azure_ai api_key"

SPEC = ProviderSpec(
    "azure_ai",
    "Azure AI Foundry",
    "imggen.providers.azure_ai",
    order=25,
    settings=(
        # LiteLLM 1.110.2 litellm/llms/azure_ai/common_utils.py AzureFoundryModelInfo.get_api_key/get_api_base.
        SettingSpec("api_key", ("AZURE_AI_API_KEY",), secret=True),
        SettingSpec("azure_ad_token", ("AZURE_AD_TOKEN",), secret=True, profile=False, identity=True),
        SettingSpec("api_base", ("AZURE_AI_API_BASE",)),
        # The version Microsoft's FLUX page sends on the Image API and the BFL route alike; not read
        # from AZURE_API_VERSION (which an `azure` deployment may pin to a dated version).
        SettingSpec("api_version", (), default="preview"),
    ),
    credential_env=("AZURE_AI_API_KEY", "AZURE_AD_TOKEN"),
    secret_headers=("api-key", "authorization"),
    key_hint=KEY_HINT,
    fields=("n", "size"),
    catalog_ids=False,  # ids are deployment names a user chose (by default the model's name)
    api_hosts=r"(^|\.)services\.ai\.azure\.com$|(^|\.)api\.cognitive\.microsoft\.com$",
    own_hosts=(".services.ai.azure.com", ".api.cognitive.microsoft.com", ".cognitiveservices.azure.com"),
    extra_fields="provider-params",
    environment=(
        ("AZURE_AI_API_KEY", "API key of the Foundry resource."),
        ("AZURE_AD_TOKEN", "A Microsoft Entra ID token, instead of a key."),
        ("AZURE_AI_API_BASE", "The resource's endpoint, https://NAME.services.ai.azure.com."),
    ),
    tasks=("generate", "edit"),
)
