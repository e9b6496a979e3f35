"""Black Forest Labs' API (FLUX models): the declaration (its implementation: bfl.py)."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

KEY_HINT = "Set BFL_API_KEY, or run: imggen config set bfl api_key"

SPEC = ProviderSpec(
    "bfl",
    "Black Forest Labs",
    "imggen.providers.bfl",
    order=60,
    settings=(
        SettingSpec("api_key", ("BFL_API_KEY",), secret=True),
        SettingSpec("api_base", ("BFL_API_BASE",), default="https://api.bfl.ai/v1"),
    ),
    credential_env=("BFL_API_KEY",),
    secret_headers=("x-key",),
    key_hint=KEY_HINT,
    fields=("n", "size", "seed"),
    api_hosts=r"^api(\.[a-z0-9]+)?\.bfl\.(ai|ml)$",
    extra_fields="provider-params",
    tasks=("generate", "edit"),
    environment=(
        ("BFL_API_KEY", "Black Forest Labs API key (sent as x-key)."),
        (
            "BFL_API_BASE",
            "Endpoint root (default https://api.bfl.ai/v1; regional: https://api.eu.bfl.ai/v1, "
            "https://api.us.bfl.ai/v1).",
        ),
    ),
)
