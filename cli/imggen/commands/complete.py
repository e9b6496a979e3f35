"""Shell completion: model ids, profile names, config keys. Each runs at every <TAB>, so it reads only
the catalog and config.toml (both cheap) and never raises: a broken config completes nothing."""

from __future__ import annotations


def complete_model(incomplete: str) -> list[str]:
    """Catalog ids, full (`openai/gpt-image-2`) and bare (`gpt-image-2`), retired ones left out."""
    from ..catalog import all_models
    from ..errors import ImggenError
    from ..providers import SPECS

    try:
        models = [m for m in all_models() if m.status() != "retired"]
    except ImggenError:  # a broken overlay (models.json in the config directory)
        return []
    names = [m.id for m in models] + [m.model_id for m in models if m.bare] + [s.name for s in SPECS if s.alone]
    return [name for name in dict.fromkeys(names) if name.startswith(incomplete)]


def complete_profile(incomplete: str) -> list[str]:
    from ..errors import ImggenError
    from ..settings import load_config

    try:
        names = list(load_config().profiles)
    except ImggenError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_key(incomplete: str) -> list[str]:
    from ..settings import PROFILE_KEYS

    return [key for key in PROFILE_KEYS if key.startswith(incomplete)]


def complete_provider(incomplete: str) -> list[str]:
    from ..catalog import PROVIDERS

    return [name for name in PROVIDERS if name.startswith(incomplete)]


def complete_topic(incomplete: str) -> list[str]:
    from .helptext import TOPICS

    return [name for name in TOPICS if name.startswith(incomplete)]
