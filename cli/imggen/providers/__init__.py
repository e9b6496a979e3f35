"""The provider interface and the registry: a plain dict keyed by model prefix, modules loaded on use.

The registry holds each provider's declaration (`<provider>_spec.py`, see spec.py and README.md);
everything at this module's top level is cheap and imports nothing else of imggen, for secrets.py and
types.py derive their lists from it while imggen itself is still loading.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import azure_spec, bedrock_spec, gemini_spec, openai_spec, placeholder_spec, vertex_spec
from .spec import ProviderSpec
from .vertex_spec import GOOGLE_CA_ENV as GOOGLE_CA_ENV

if TYPE_CHECKING:
    import httpx

    from ..errors import GenerationError
    from ..modelcheck import Listed
    from ..settings import Resolved
    from ..transport import Transport
    from ..types import HttpRequest, ImageData, ImageRequest, Usage


@dataclass
class ProviderResult:
    images: list[ImageData]
    usage: Usage | None = None
    request_id: str | None = None
    errors: list[GenerationError] = field(default_factory=list)  # images asked for but not returned


class Provider(Protocol):
    """A provider module's `PROVIDER: Provider`: a pure request builder, a pure response parser and an
    async `generate`, and what a provider may add around them (no-ops unless it subclasses and overrides).
    mypy checks each module's `PROVIDER` against this."""

    def build_request(self, request: ImageRequest, settings: Resolved, *, dry_run: bool = False) -> HttpRequest:
        """The HTTP request for `request`; with dry_run, missing credentials are shown, not raised."""
        ...

    def parse_response(self, request: ImageRequest, response: httpx.Response) -> ProviderResult:
        """Images out of a 2xx response; raises GenerationError when there are none."""
        ...

    async def generate(self, request: ImageRequest, settings: Resolved, transport: Transport) -> ProviderResult: ...

    def complete_settings(self, settings: Resolved) -> None:
        """Fill settings only the provider can derive (Bedrock's region from the AWS config)."""
        return None

    def plan_notes(self, request: ImageRequest) -> list[str]:
        """Notes a plan shows before sending (what the provider will do with the options)."""
        return []

    def check_credentials(self, settings: Resolved) -> None:
        """Load what building a request does not (`imggen serve`'s /health): raise when it cannot."""
        return None

    # `imggen models check` (asked only of a provider whose declaration has `check`; others list nothing):
    def model_list_requests(self, settings: Resolved) -> list[HttpRequest]:
        """The requests that list its models (the first ones, for a listing in pages), as --dry-run shows them."""
        return []

    async def list_models(self, settings: Resolved, transport: Transport) -> dict[str, Listed]:
        """The image models the account can use, by id; raises the provider's error."""
        return {}


# The registry: every provider's declaration, in the order imggen lists them.
SPECS: tuple[ProviderSpec, ...] = (
    openai_spec.SPEC, azure_spec.SPEC, bedrock_spec.SPEC, vertex_spec.SPEC, gemini_spec.SPEC, placeholder_spec.SPEC,
)  # fmt: skip
PROVIDERS: dict[str, ProviderSpec] = {spec.name: spec for spec in SPECS}
NAMES = tuple(PROVIDERS)


def response_json(response: httpx.Response, request_id: str | None, who: str) -> Any:
    """A 2xx body as JSON, or the BadResponseError that says it is not."""
    try:
        return response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "unknown type")
        from ..errors import BadResponseError

        raise BadResponseError(f"{who}'s response is not JSON ({kind})", request_id=request_id) from exc


# What reading an unexpected shape of JSON can raise (`.get` on a list, `int()` of a dict, …).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError)


@contextmanager
def shape_guard(who: str, request_id: str | None) -> Iterator[None]:
    """A 2xx answer whose fields have types no parser foresaw fails that request alone, as a bad
    response, instead of stopping the batch (the parsers check types; this is the net under them)."""
    try:
        yield
    except SHAPE_ERRORS as exc:
        from ..errors import BadResponseError

        raise BadResponseError(
            f"{who}'s response has an unexpected shape ({type(exc).__name__})", request_id=request_id
        ) from exc


def get_provider(name: str) -> Provider:
    spec = PROVIDERS[name]
    if spec.module is None:
        from ..errors import UsageError

        raise UsageError(
            f"{name}/ models are not supported by this version of imggen yet",
            hint="Pick a model from: imggen models.",
        )
    module: Any = importlib.import_module(spec.module)
    provider: Provider = module.PROVIDER
    return provider
