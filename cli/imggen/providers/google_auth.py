"""Google credentials through google-auth: ADC or a credentials file, one token per run, refreshed
when it nears expiry. google-auth is imported only here, and only when a Google model is used.

google-auth talks HTTP through a small adapter on httpx, so its token exchange honours the same
proxy and CA-bundle variables as every other request (and needs no `requests`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from ..errors import ConfigError
from ..transport import ca_verify
from .vertex_spec import GOOGLE_CA_ENV

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
ADC_HINT = "Run: gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS or vertex_credentials."


def _http_request() -> Any:
    import google.auth.exceptions
    import google.auth.transport

    class Response(google.auth.transport.Response):
        def __init__(self, response: httpx.Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Any:
            return dict(self._response.headers)

        @property
        def data(self) -> bytes:
            return self._response.content

    class Request(google.auth.transport.Request):
        def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                     timeout: float | None = None, **_: Any) -> Response:  # fmt: skip
            try:
                with httpx.Client(verify=ca_verify(GOOGLE_CA_ENV), trust_env=True, timeout=timeout or 60) as client:
                    return Response(client.request(method, url, content=body, headers=headers))
            except httpx.HTTPError as exc:
                raise google.auth.exceptions.TransportError(str(exc)) from exc  # type: ignore[no-untyped-call]

    return Request()


def load(credentials_file: str | None) -> tuple[Any, str | None]:
    """(credentials, project) from the file if given, else Application Default Credentials."""
    import google.auth
    import google.auth.exceptions

    inline = bool(credentials_file) and str(credentials_file).lstrip().startswith("{")  # the JSON itself
    try:
        if inline:
            info = _json_object(str(credentials_file))
            loaded = google.auth.load_credentials_from_dict(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
        elif credentials_file:
            loaded = google.auth.load_credentials_from_file(credentials_file, scopes=SCOPES)  # type: ignore[no-untyped-call]
        else:
            loaded = google.auth.default(scopes=SCOPES, request=_http_request())
        _remember_secrets(loaded[0], None if inline else credentials_file)
        return loaded[0], loaded[1]
    except google.auth.exceptions.DefaultCredentialsError as exc:
        where = " from the inline JSON" if inline else f" from {credentials_file}" if credentials_file else ""
        raise ConfigError(f"Google credentials could not be loaded{where}: {_first_line(exc)}", hint=ADC_HINT) from exc


def _remember_secrets(credentials: Any, path: str | None) -> None:
    """A credentials file's private key or refresh token is masked like a key from the settings."""
    from ..secrets import remember, remember_json_file

    for name in ("refresh_token", "client_secret"):
        if isinstance(value := getattr(credentials, name, None), str):
            remember(value)
    if path:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            remember_json_file(Path(path).read_text(encoding="utf-8"))


def _json_object(text: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"vertex_credentials looks like JSON but does not parse: {exc}") from exc
    if not isinstance(info, dict):
        raise ConfigError("vertex_credentials JSON must be an object (a service-account or ADC file's content)")
    return info


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class TokenSource:
    """One credentials object for a run; a token is fetched once and refreshed only when it expires."""

    def __init__(self, credentials_file: str | None) -> None:
        self.credentials_file = credentials_file
        self.credentials: Any = None
        self.project: str | None = None  # the project the credentials belong to, if they say
        self.lock = threading.Lock()

    def token(self) -> str:
        import google.auth.exceptions

        with self.lock:
            if self.credentials is None:
                self.credentials, self.project = load(self.credentials_file)
            if not self.credentials.valid:
                try:
                    self.credentials.refresh(_http_request())
                except google.auth.exceptions.RefreshError as exc:
                    raise ConfigError(f"Google rejected the credentials: {_first_line(exc)}", hint=ADC_HINT) from exc
                except google.auth.exceptions.TransportError as exc:
                    raise ConfigError(f"cannot reach Google's token endpoint: {_first_line(exc)}") from exc
            return str(self.credentials.token)


_SOURCES: dict[str | None, TokenSource] = {}


def token_source(credentials_file: str | None) -> TokenSource:
    return _SOURCES.setdefault(credentials_file, TokenSource(credentials_file))
