"""The Recraft provider's declaration (its implementation: recraft.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

SPEC = ProviderSpec(
    "recraft",
    "Recraft",
    "imggen.providers.recraft",
    order=72,
    settings=(
        # RECRAFT_API_KEY is LiteLLM's name (llms/recraft/image_generation/transformation.py), read
        # first; RECRAFT_API_TOKEN is Recraft's own (https://www.recraft.ai/docs/api-reference/agents.md).
        SettingSpec("api_key", ("RECRAFT_API_KEY", "RECRAFT_API_TOKEN"), secret=True),
        # The host root, as LiteLLM's RECRAFT_API_BASE: paths are /v1/images/...
        SettingSpec("api_base", ("RECRAFT_API_BASE",), default="https://external.api.recraft.ai"),
    ),
    credential_env=("RECRAFT_API_KEY", "RECRAFT_API_TOKEN"),
    secret_headers=("authorization",),
    key_hint="Set RECRAFT_API_KEY (or RECRAFT_API_TOKEN), or run: imggen config set recraft api_key",
    fields=("n", "size", "style", "response_format", "seed", "negative_prompt"),
    bare_ids=r"^recraft(v\d|-?\d)",
    api_hosts=r"^external\.api\.recraft\.ai$",
    extra_fields="provider-params",
    tasks=("generate", "edit"),
    environment=(
        ("RECRAFT_API_KEY", "Recraft API token (LiteLLM's name)."),
        ("RECRAFT_API_TOKEN", "Recraft API token (Recraft's name), read when RECRAFT_API_KEY is unset."),
        ("RECRAFT_API_BASE", "Endpoint root (default https://external.api.recraft.ai)."),
    ),
)
