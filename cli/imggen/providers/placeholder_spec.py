"""The offline placeholder provider's declaration (its implementation: placeholder.py)."""

from __future__ import annotations

from .spec import ProviderSpec

SPEC = ProviderSpec(
    "placeholder",
    "Placeholder (offline)",
    "imggen.providers.placeholder",
    order=90,
    needs_credentials=False,
    fields=("n", "size", "seed"),
    tasks=("generate", "edit"),
    alone="default",
    catalog_ids=False,  # it takes any id
)
