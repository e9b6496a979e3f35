"""fal's declaration (its implementation: fal.py): the queue API at queue.fal.run, any fal model id
(`fal/fal-ai/flux/dev`) with the catalog's rules for the ones it lists."""

from __future__ import annotations

from .spec import ProviderSpec, SettingSpec

KEY_HINT = "Set FAL_KEY, or run: imggen config set fal api_key"

SPEC = ProviderSpec(
    "fal",
    "fal",
    "imggen.providers.fal",
    order=70,
    settings=(
        # FAL_KEY is fal-client's (fal_client/auth.py); FAL_AI_API_KEY is LiteLLM's name for the same key.
        SettingSpec("api_key", ("FAL_KEY", "FAL_AI_API_KEY"), secret=True),
        SettingSpec("api_base", (), default="https://queue.fal.run"),
    ),
    credential_env=("FAL_KEY", "FAL_AI_API_KEY"),
    secret_headers=("authorization",),
    key_hint=KEY_HINT,
    # What an id the catalog lacks may take: fal's common image arguments (fal docs, "Common Model
    # Arguments"): num_images, image_size, seed; -p passes any other input field.
    fields=("n", "size", "seed"),
    api_hosts=r"^(queue\.)?fal\.run$",
    extra_fields="provider-params",
    environment=(
        ("FAL_KEY", "API key (fal-client's name)."),
        ("FAL_AI_API_KEY", "The same, LiteLLM's name."),
    ),
)
