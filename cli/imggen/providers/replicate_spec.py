"""Replicate's declaration (its implementation: replicate.py): predictions on api.replicate.com, any
`owner/model` or `owner/model:version`, with the catalog's rules for the ones it lists."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

KEY_HINT = "Set REPLICATE_API_TOKEN, or run: imggen config set replicate api_key"

SPEC = ProviderSpec(
    "replicate",
    "Replicate",
    "imggen.providers.replicate",
    order=75,
    settings=(
        # REPLICATE_API_TOKEN and REPLICATE_BASE_URL are replicate-python's (client.py, 1.0.7);
        # REPLICATE_API_KEY is LiteLLM's other name for the token.
        SettingSpec("api_key", ("REPLICATE_API_TOKEN", "REPLICATE_API_KEY"), secret=True),
        SettingSpec("api_base", ("REPLICATE_BASE_URL",), default="https://api.replicate.com"),
    ),
    credential_env=("REPLICATE_API_TOKEN", "REPLICATE_API_KEY"),
    secret_headers=("authorization",),
    key_hint=KEY_HINT,
    # An id the catalog lacks: the inputs most image models on Replicate share (num_outputs, aspect_ratio
    # or width/height, seed); -p passes any other input field.
    fields=("n", "size", "seed"),
    api_hosts=r"^api\.replicate\.com$",
    extra_fields="provider-params",
    environment=(
        ("REPLICATE_API_TOKEN", "API token (replicate-python's name)."),
        ("REPLICATE_API_KEY", "The same, LiteLLM's name."),
        ("REPLICATE_BASE_URL", "Endpoint root (default https://api.replicate.com)."),
    ),
)
