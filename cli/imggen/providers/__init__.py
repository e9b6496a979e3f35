"""The provider interface and the registry: a plain dict keyed by model prefix, modules loaded on use.

The registry holds each provider's declaration (`<provider>_spec.py`, see spec.py and README.md);
everything at this module's top level is cheap and imports nothing else of imggen, for secrets.py and
types.py derive their lists from it while imggen itself is still loading.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .spec import ProviderSpec
from .vertex_spec import GOOGLE_CA_ENV as GOOGLE_CA_ENV

if TYPE_CHECKING:
    import httpx

    from ..types import ImageData, ImageRequest
    from .contract import Provider
    from .contract import ProviderResult as ProviderResult


def __getattr__(name: str) -> Any:
    """`Provider` and `ProviderResult` live in contract.py, loaded when first asked for: this module's
    top level stays cheap (see the docstring)."""
    if name in ("Provider", "ProviderResult"):
        from . import contract

        return getattr(contract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _declarations() -> tuple[ProviderSpec, ...]:
    """Every `<name>_spec.py` in this directory, in the order they declare: a provider is registered by
    declaring it (a directory listing, no import machinery beyond the declarations themselves)."""
    import os

    names = sorted(entry[: -len("_spec.py")] for entry in os.listdir(__path__[0]) if entry.endswith("_spec.py"))
    specs = [importlib.import_module(f"{__name__}.{name}_spec").SPEC for name in names]
    return tuple(sorted(specs, key=lambda spec: (spec.order, spec.name)))


# The registry: every provider's declaration, in the order imggen lists them.
SPECS: tuple[ProviderSpec, ...] = _declarations()
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


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON value that should be an object, or {} when an answer gave something else there."""
    return value if isinstance(value, dict) else {}


def with_common(body: dict[str, Any], request: ImageRequest) -> dict[str, Any]:
    """`body` with the fields most image APIs spell alike — the seed and negative prompt where asked —
    and the provider parameters (-p) over everything."""
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    return {**body, **request.params}


def same_origin(url: str, other: str) -> bool:
    """Same scheme, host and port: where a job's poll URLs may take the key the job was submitted with."""
    from urllib.parse import urlsplit

    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def sent_authorization(response: httpx.Response) -> dict[str, str]:
    """The Authorization header the request of `response` went with, for the job's polls to go with."""
    value = response.request.headers.get("authorization")
    return {"Authorization": value} if value else {}


def image_at(url: str, **fields: Any) -> ImageData:
    """An image a result names by URL (downloaded when saved: no key goes there), or carries as a `data:`
    URI (decoded)."""
    from ..types import ImageData

    if url.startswith("data:"):
        return ImageData.from_b64(url.partition(",")[2], **fields)
    return ImageData(url=url, **fields)


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
