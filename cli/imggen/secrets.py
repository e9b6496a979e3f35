"""The one owner of what is secret and how it is hidden: the registry of secret settings and
headers, and `redact()`, which finds a remembered secret in every form a message may carry it.

Every place that shows a value (dry-run, `config show/get/explain`, errors, --json, sidecars, the
manifest, `imggen serve`'s answers) asks here; nothing else keeps its own list. The providers' secret
settings and headers come from their declarations, read on first use (the registry imports nothing
else of imggen); no other imggen imports: errors.py and types.py depend on this module.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

# `imggen serve`'s own secrets (its config's); the providers' come from their declarations.
SERVE_SECRETS = frozenset({"master_key", "redis_password"})
SERVE_HEADER_SETTINGS = frozenset({"master_key"})
# Query parameters that carry a credential (Google's `key=`, pre-signed URLs' signatures).
# `upload_id` names a resumable upload session (Gemini Files API, Cloud Storage): whoever holds it can
# write to the upload without a key, so it is shown masked like one.
SECRET_QUERY = frozenset(
    {"key", "api-key", "api_key", "sig", "signature", "x-amz-signature", "x-amz-security-token", "upload_id"}
)
# Fields of a service-account or ADC JSON that are secret (the rest, like client_email, are not).
JSON_SECRET_FIELDS = ("private_key", "private_key_id", "client_secret", "refresh_token")
FRAGMENT = 8  # a run of this many characters of a secret is masked wherever it appears
HIDDEN = "****"

_seen: set[str] = set()
_compiled: _Matcher | None = None


@cache
def _derived() -> dict[str, frozenset[str]]:
    """The lists read from the providers' declarations, on first use (`import imggen` reads none)."""
    from .providers import SPECS

    settings = [s for spec in SPECS for s in spec.settings]
    return {
        # Settings whose value is a secret wherever it comes from (flags, profiles, environment, proxy config).
        "SECRET_SETTINGS": frozenset({k for s in settings if s.secret for k in (s.key, *s.proxy_aliases)})
        | SERVE_SECRETS,
        # A secret only when it is the JSON itself rather than a path to a file (the proxy's spellings too).
        "INLINE_JSON_SETTINGS": frozenset({k for s in settings if s.secret_if_json for k in (s.key, *s.proxy_aliases)}),
        # Settings that end up in an HTTP header or a signature: a line break in one is a config error.
        "HEADER_SETTINGS": frozenset({s.key for s in settings if s.in_header}) | SERVE_HEADER_SETTINGS,
        # Request headers that carry a credential.
        "SECRET_HEADERS": frozenset(h for spec in SPECS for h in spec.secret_headers),
    }


DERIVED = ("SECRET_SETTINGS", "INLINE_JSON_SETTINGS", "HEADER_SETTINGS", "SECRET_HEADERS")
if TYPE_CHECKING:
    SECRET_SETTINGS: frozenset[str]
    INLINE_JSON_SETTINGS: frozenset[str]
    HEADER_SETTINGS: frozenset[str]
    SECRET_HEADERS: frozenset[str]


def __getattr__(name: str) -> frozenset[str]:
    """The DERIVED lists, as module attributes (see `_derived`)."""
    if name not in DERIVED:  # the import system asks for `__path__` and the like
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _derived()[name]


def is_secret(key: str, value: Any) -> bool:
    """Keys, tokens, passwords, and credentials given as JSON rather than as a path to a file."""
    lists = _derived()
    return key in lists["SECRET_SETTINGS"] or (key in lists["INLINE_JSON_SETTINGS"] and is_inline_json(value))


def is_inline_json(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip().startswith("{")


def mask(value: Any) -> str:
    """A secret as it may be shown: never more than its last four characters."""
    text = str(value)
    if is_inline_json(text):
        return HIDDEN + " (inline JSON)"
    return HIDDEN + text[-4:] if len(text) >= 12 else HIDDEN


def shown(key: str, value: Any, reveal: bool = False) -> str:
    """A setting's value as printed: secrets masked unless revealed, a password in a URL hidden;
    an `os.environ/NAME` reference names a variable and is not itself secret."""
    text = str(value)
    if reveal or text.startswith("os.environ/"):
        return text
    if is_secret(key, text):
        return mask(text)
    return mask_url(text) if "@" in text and "://" in text else text


def mask_url(url: str) -> str:
    """`https://user:pw@host/` → `https://user:****@host/`."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{HIDDEN}@{host}").geturl()


def shown_header(value: str) -> str:
    """A credential header's value as shown (--dry-run, -v): `Bearer ****6789`, else masked whole."""
    scheme, _, token = value.partition(" ")
    return f"{scheme} {mask(token)}" if token and scheme.lower() == "bearer" else mask(value)


def shown_fields(value: Any) -> Any:
    """A request body as shown: a secret setting given as a field (`-p api_key=…`) masked, at any depth."""
    if isinstance(value, dict):
        return {k: mask(v) if is_secret(str(k), v) else shown_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown_fields(v) for v in value]
    return value


def shown_url(url: str) -> str:
    """A URL as shown: a password and secret query parameters (`?key=`, signatures) masked, then
    every remembered secret."""
    from urllib.parse import parse_qsl, urlencode

    url = mask_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.query:
        query = parse_qsl(parts.query, keep_blank_values=True)
        pairs = [(k, mask(v) if k.lower() in SECRET_QUERY else v) for k, v in query]
        url = parts._replace(query=urlencode(pairs, safe="*")).geturl()
    return redact(url)


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def remember(value: str) -> None:
    """Mask `value` wherever imggen prints from now on (keys from settings, tokens fetched at run time)."""
    global _compiled
    value = value.strip()
    if not value or value in _seen:
        return
    _seen.add(value)
    if is_inline_json(value):
        for secret in _json_secrets(value):
            _seen.add(secret)
    _compiled = None


def remember_setting(key: str, value: Any) -> None:
    """Remember what a setting holds that must not be shown (its value, or a password in its URL)."""
    if not isinstance(value, str):
        return
    if is_secret(key, value):
        remember(value)
    elif "@" in value and "://" in value and (password := url_password(value)):
        remember(password)
        remember(unquote(password))


def _json_secrets(text: str) -> list[str]:
    """The secret fields of a credentials JSON, and each line of a PEM private key on its own: a message
    may quote one line, or the key with its line breaks escaped differently."""
    try:
        info = json.loads(text)
    except ValueError:
        return []
    if not isinstance(info, dict):
        return []
    found = []
    for name in JSON_SECRET_FIELDS:
        value = info.get(name)
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
            found += [line for line in value.splitlines() if len(line) >= FRAGMENT and not line.startswith("-----")]
    return found


def remember_json_file(text: str) -> None:
    """The secret fields of a credentials file imggen read (the file's path is not itself secret)."""
    for secret in _json_secrets(text):
        remember(secret)


def redact(text: str) -> str:
    """Every remembered secret masked: raw, repr- or JSON-escaped, URL-encoded, and any run of
    FRAGMENT or more of its characters (what is left when a message was cut through it)."""
    if not _seen or not text:
        return text
    return _matcher().sub(text)


UPSTREAM_FIELDS = ("revised_prompt", "text", "url")  # what a provider wrote, in an image's --json line or sidecar


def redact_upstream(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with the provider's text redacted. The user's own prompt and the file's path are left
    as they are: a short key would otherwise mask a word of them and point --json at no file."""
    parameters = record.get("parameters")
    if isinstance(parameters, dict):  # `-p api_key=…` is still a key
        record = {**record, "parameters": {k: mask(v) if is_secret(k, v) else v for k, v in parameters.items()}}
    if not _seen:
        return record
    return {k: redact(v) if k in UPSTREAM_FIELDS and isinstance(v, str) else v for k, v in record.items()}


def cut(text: str, limit: int) -> str:
    """Mask, then cut: a cut can then never leave part of a secret behind."""
    return redact(text)[:limit]


def forms(secret: str) -> set[str]:
    """The ways a message may spell `secret`: raw, Python repr, JSON, URL-encoded."""
    found = {secret, repr(secret)[1:-1], secret.encode("unicode_escape").decode("ascii")}
    found |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    found |= {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    found |= {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in list(found) if "%" in f}
    return {f for f in found if f}


class _Matcher:
    """Whole forms first (longest first), then a sweep for runs of a long secret's FRAGMENT-grams."""

    def __init__(self, secrets: set[str]) -> None:
        whole = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
        self.masks = {f: mask(s) for s in secrets for f in forms(s)}
        long = [re.escape(f) for f in whole if len(f) >= FRAGMENT]
        # A short secret is masked where it stands alone, not inside every word that contains it.
        short = [rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])" for f in whole if len(f) < FRAGMENT]
        self.pattern = re.compile("|".join(long + short))
        # Runs are looked for in plain secrets only: an inline JSON's or a PEM key's structure is common
        # text ("service_account", "BEGIN PRIVATE KEY"); their secret fields and lines are remembered alone.
        plain = [f for s in secrets if not is_inline_json(s) and "-----BEGIN" not in s for f in forms(s)]
        self.grams = {f[i : i + FRAGMENT] for f in plain for i in range(len(f) - FRAGMENT + 1)}

    def sub(self, text: str) -> str:
        text = self.pattern.sub(lambda m: self.masks.get(m.group(), HIDDEN), text)
        return self._fragments(text) if len(text) >= FRAGMENT else text

    def _fragments(self, text: str) -> str:
        grams, size = self.grams, FRAGMENT
        hits = [i for i in range(len(text) - size + 1) if text[i : i + size] in grams]
        return _join_runs(text, hits, size) if hits else text


def _join_runs(text: str, hits: list[int], size: int) -> str:
    out: list[str] = []
    position = 0
    run_start, run_end = hits[0], hits[0] + size
    for start in hits[1:]:
        if start <= run_end:
            run_end = start + size
            continue
        out += [text[position:run_start], HIDDEN]
        position, run_start, run_end = run_end, start, start + size
    out += [text[position:run_start], HIDDEN, text[run_end:]]
    return "".join(out)


def _matcher() -> _Matcher:
    global _compiled
    if _compiled is None:
        _compiled = _Matcher(_seen)
    return _compiled
