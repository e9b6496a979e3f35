"""`imggen models check`: ask each provider which image models this account can use, without generating
anything, and compare the answer with the catalog.

Each provider that can be checked declares it (`check` in its declaration) and lists its own models:
`model_list_requests` (pure, also what --dry-run shows) and `list_models` (sends through imggen's
transport, parses the answer into `Listed` entries) on its `PROVIDER`, whose docstrings cite the wire
facts. Here: the settings to ask with, `fetch`, and `compare`, which turns the catalog and the listings
into rows, one per model, each with its disagreements.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import ModelInfo, all_models
from .errors import ImggenError
from .providers import PROVIDERS, SPECS, get_provider

if TYPE_CHECKING:
    from .settings import Config, Resolved
    from .types import HttpRequest

# The providers `check` can ask, each with its short name and what to do without credentials.
CHECKS = {spec.name: spec.check for spec in SPECS if spec.check is not None}
LABELS = {name: check.label for name, check in CHECKS.items()}
CHECKABLE = tuple(LABELS)
KEY_HINTS = {name: check.hint for name, check in CHECKS.items()}


@dataclass(frozen=True)
class Listed:
    """One model as the provider lists it. `lifecycle` is the provider's own words; `state` is
    "active" or "legacy" when the provider says, None when it says nothing about lifecycle."""

    model_id: str
    lifecycle: str = "listed"
    state: str | None = None
    ends: dt.date | None = None  # the shutdown / end-of-life date the provider gives


@dataclass
class Listing:
    provider: str
    models: dict[str, Listed] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckRow:
    model: str
    provider: str
    in_catalog: bool
    available: bool
    provider_lifecycle: str | None
    catalog_status: str | None
    disagreements: tuple[str, ...] = ()
    catalog_said: str | None = None  # the status with its date, for the table: "retires 2026-12-01"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "provider": self.provider, "in_catalog": self.in_catalog,
            "available": self.available, "provider_lifecycle": self.provider_lifecycle,
            "catalog_status": self.catalog_status, "disagreements": list(self.disagreements),
        }  # fmt: skip


@dataclass
class Report:
    rows: list[CheckRow]
    failures: dict[str, ImggenError]

    @property
    def exit_code(self) -> int:
        if any(e.exit_code == 3 for e in self.failures.values()):
            return 3
        if self.failures:
            return max(1, *(e.exit_code for e in self.failures.values()))
        return 1 if any(r.disagreements for r in self.rows) else 0


# --- the catalog side ---------------------------------------------------------------------------


def catalog_words(info: ModelInfo, today: dt.date) -> str:
    """The catalog's status with its date: "active", "deprecated 2026-10-23", "retires 2026-12-01",
    "retired 2026-05-12" (the table of `imggen models` leaves a deprecation's own date out)."""
    words, deprecated = info.status_words(today), info.lifecycle.get("deprecated")
    return f"deprecated {deprecated}" if words == "deprecated" and deprecated else words


def catalog_models(provider: str) -> list[ModelInfo]:
    return [m for m in all_models() if m.provider == provider]


def known_ids(provider: str) -> set[str]:
    return {m.model_id for m in catalog_models(provider)}


def base_id(model_id: str, provider: str) -> str:
    """An inference profile (Bedrock's `us.amazon.nova-canvas-v1:0`) is listed as its model."""
    check = CHECKS.get(provider)
    for prefix in check.profile_prefixes if check else ():
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


# --- comparing ----------------------------------------------------------------------------------


def compare(catalog: Iterable[ModelInfo], listings: Iterable[Listing], today: dt.date) -> list[CheckRow]:
    """One row per catalog model of each listed provider, then one per listed model the catalog lacks."""
    rows: list[CheckRow] = []
    catalog = list(catalog)
    for listing in listings:
        known = [m for m in catalog if m.provider == listing.provider]
        rows += [_catalog_row(m, listing, today) for m in known]
        covered = {base_id(m.model_id, m.provider) for m in known} | {m.model_id for m in known}
        label = LABELS[listing.provider]
        for model_id, listed in sorted(listing.models.items()):
            if model_id not in covered:
                rows.append(CheckRow(f"{listing.provider}/{model_id}", listing.provider, False, True,
                                     listed.lifecycle, None, (f"listed by {label}, not in the catalog",)))  # fmt: skip
    return rows


def _catalog_row(info: ModelInfo, listing: Listing, today: dt.date) -> CheckRow:
    listed = listing.models.get(info.model_id) or listing.models.get(base_id(info.model_id, info.provider))
    disagreements = disagreements_of(info, listed, LABELS[info.provider], today)
    lifecycle = listed.lifecycle if listed else None
    said = catalog_words(info, today)
    return CheckRow(
        info.id, info.provider, True, listed is not None, lifecycle, info.status(today), disagreements, said
    )


def disagreements_of(info: ModelInfo, listed: Listed | None, label: str, today: dt.date) -> tuple[str, ...]:
    status, said = info.status(today), catalog_words(info, today)
    if listed is None:
        return () if status == "retired" else (f"in catalog, not listed by {label}",)
    theirs = f"catalog: {said}; {label}: {listed.lifecycle}"
    if status == "retired":
        return (theirs,)
    retired = info.lifecycle.get("retired")
    if listed.ends is not None and (retired is None or dt.date.fromisoformat(retired) != listed.ends):
        return (theirs,)
    if listed.state == "legacy" and status == "active":
        return (theirs,)
    if listed.state == "active" and status == "deprecated" and listed.ends is None:
        return (theirs,)
    return ()


# --- helpers for the providers' parsers (pure) -----------------------------------------------------------------------


def date_of(value: Any) -> dt.date | None:
    """A date from ISO 8601 text (`2026-06-30`, `2026-06-30T00:00:00Z`) or unix seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def items(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


# --- building requests (pure; also what --dry-run shows) -----------------------------------------


def settings_for(provider: str, model_id: str | None = None) -> Resolved:
    """The settings a provider is asked with: those of its first catalog model (or of `model_id`)."""
    from .settings import resolve

    models = catalog_models(provider)
    name = model_id or (models[0].model_id if models else "check")
    return resolve(model=f"{provider}/{name}")


def configured_for_check(provider: str, config: Config) -> bool:
    """Credentials configured, or an OpenAI-compatible server (a custom api_base may need no key)."""
    from .settings import credentials_configured

    if credentials_configured(provider, config):
        return True
    return CHECKS[provider].keyless_base and settings_for(provider).given("api_base")


def dry_run_requests(provider: str) -> list[HttpRequest]:
    """The requests `check` would send first for `provider` (later Gemini pages are not known yet)."""
    return get_provider(provider).model_list_requests(settings_for(provider))


# --- sending ------------------------------------------------------------------------------------


async def fetch(provider: str) -> Listing:
    """Ask one provider; raises the provider's error (credentials: exit 3; network: exit 1)."""
    from .transport import Transport

    settings = settings_for(provider)
    async with Transport(timeout=float(settings.get("timeout", 600)), ca_env=PROVIDERS[provider].ca_env) as transport:
        return Listing(provider, await get_provider(provider).list_models(settings, transport))


async def check(providers: Iterable[str], today: dt.date) -> Report:
    """Ask every provider at once; one provider's failure is recorded and the others still report."""
    providers = list(providers)
    answers = await asyncio.gather(*(fetch(p) for p in providers), return_exceptions=True)
    listings: list[Listing] = []
    failures: dict[str, ImggenError] = {}
    for provider, answer in zip(providers, answers, strict=True):
        if isinstance(answer, ImggenError):
            answer.locate(LABELS[provider])
            failures[provider] = answer
        elif isinstance(answer, BaseException):
            raise answer
        else:
            listings.append(answer)
    return Report(compare(all_models(), listings, today), failures)
