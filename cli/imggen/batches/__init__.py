"""Provider batch jobs (`imggen batch`): the ledger, the service protocol and one module per batch
service, named like the provider whose models it runs (`service_for` finds it). Imported only by
`imggen batch`, never at start-up."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .service import BatchService


def service_for(provider: str) -> BatchService:
    """The batch service of a provider's models, or a UsageError saying none is supported (yet)."""
    try:
        module = importlib.import_module(f"{__name__}.{provider}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{provider}":
            raise
        raise UsageError(f"{provider} models have no batch service in imggen",
                         hint="See: imggen models --batch.") from None  # fmt: skip
    service: BatchService = module.SERVICE
    return service
