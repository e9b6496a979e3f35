"""Secrets kept in the operating system's keyring: a profile holds `keyring:imggen/<profile>/<key>`
in place of the key. The `keyring` library is an optional extra (`pip install 'imggen[keyring]'`),
imported only when such a reference is stored or read, so imggen starts as fast without it."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .secrets import remember

KEYRING_REF = "keyring:"
SERVICE = "imggen"
INSTALL_HINT = "Install it: pip install 'imggen[keyring]'"


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(KEYRING_REF)


def reference(profile: str, key: str) -> str:
    return f"{KEYRING_REF}{SERVICE}/{profile}/{key}"


def _parts(ref: str) -> tuple[str, str]:
    """`keyring:imggen/openai/api_key` → the keyring's (service, username): ("imggen", "openai/api_key")."""
    service, _, username = ref[len(KEYRING_REF) :].partition("/")
    if not service or not username:
        raise ConfigError(f"'{ref}' is not a keyring reference", hint="Write it as keyring:SERVICE/NAME.")
    return service, username


def _keyring() -> Any:
    """The keyring library with a usable backend, or a ConfigError saying what is missing."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError as exc:
        raise ConfigError("the keyring library is not installed", hint=INSTALL_HINT + ".") from exc
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a backend named in the environment that cannot load
        raise ConfigError(f"the keyring cannot be used: {type(exc).__name__}") from exc
    if isinstance(backend, fail.Keyring):
        raise ConfigError(
            "no usable keyring on this system (no Secret Service, Keychain or Windows Credential Locker found)",
            hint="Keep the key in the profile, or in an environment variable (os.environ/NAME).",
        )
    return keyring


def store(ref: str, secret: str) -> str:
    """Put `secret` in the keyring under `ref`; returns the backend's name (for the note)."""
    remember(secret)  # masked in whatever a backend's error says
    keyring = _keyring()
    service, username = _parts(ref)
    try:
        keyring.set_password(service, username, secret)
    except Exception as exc:  # locked, refused, no D-Bus session: said, and nothing written
        raise ConfigError(f"the keyring did not store the key: {_problem(exc)}") from exc
    return type(keyring.get_keyring()).__name__


def fetch(ref: str, where: str) -> str:
    """The secret `ref` names; `where` says which setting refers to it, for the error."""
    keyring = _keyring()
    service, username = _parts(ref)
    try:
        secret = keyring.get_password(service, username)
    except Exception as exc:
        raise ConfigError(f"{where} is in the keyring, which cannot be read: {_problem(exc)}") from exc
    if not secret:
        raise ConfigError(f"{where} refers to {ref}, which the keyring does not hold",
                          hint="Store it again with imggen config set PROFILE KEY --keyring.")  # fmt: skip
    remember(secret)
    return str(secret)


def delete(ref: str) -> None:
    """Remove the secret `ref` names, when the keyring can (unset and remove leave no key behind)."""
    try:
        keyring = _keyring()
        keyring.delete_password(*_parts(ref))
    except Exception:  # already gone, or no keyring: the profile no longer names it either way
        return


def _problem(exc: Exception) -> str:
    from .secrets import redact

    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
