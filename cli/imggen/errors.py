"""imggen's error hierarchy: each error knows its exit code and its one-line message."""

from __future__ import annotations

from .secrets import redact


class ImggenError(Exception):
    """Base of every error imggen raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        message = redact(message)  # a provider may quote the key back: no error ever holds a secret
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else redact(hint)
        self.param = param  # the parameter the error is about, when it is about one
        # (message, hint) as the CLI ("cli": flags) and the proxy ("proxy": body fields) word them;
        # message and hint are the Python API's wording (checks.param_error makes all three)
        self.wordings: dict[str, tuple[str, str | None]] = {}

    def __str__(self) -> str:
        return self.text()

    def worded(self, style: str) -> tuple[str, str | None]:
        """(message, hint) for `style`: "python", "cli" or "proxy"."""
        return self.wordings.get(style, (self.message, self.hint))

    def text(self, style: str = "python") -> str:
        """The message and its hint as one line, in `style`'s wording."""
        message, hint = self.worded(style)
        if not hint:
            return message
        stop = "" if message.endswith((".", "!", "?", ":")) else "."
        return f"{message}{stop} {hint}"

    def locate(self, where: str) -> None:
        """Say where the error was found (`prompts.jsonl line 3`), in every wording."""
        self.message = f"{where}: {self.message}"
        self.wordings = {style: (f"{where}: {message}", hint) for style, (message, hint) in self.wordings.items()}


class UsageError(ImggenError):
    """Bad flag, parameter or value, found before any request is sent."""

    exit_code = 2
    kind = "usage_error"


class ConfigError(ImggenError):
    """Missing or unreadable configuration or credentials."""

    exit_code = 3
    kind = "config_error"


class GenerationError(ImggenError):
    """A request failed: provider error, network, content filter or a bad response."""

    kind = "generation_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.request_id = request_id
        self.code = code
        self.retry_after: float | None = None  # seconds the provider asked to wait, when it said


class ProviderError(GenerationError):
    """The provider answered with an error status."""

    kind = "provider_error"


class AuthError(ProviderError):
    """The provider rejected the credentials (401/403)."""

    exit_code = 3
    kind = "auth_error"


class ContentFilterError(ProviderError):
    """The provider's safety system refused the prompt or the image."""

    kind = "content_filter"


class NetworkError(GenerationError):
    """Connection failure or timeout."""

    kind = "network_error"


class BadResponseError(GenerationError):
    """The provider answered 2xx with something that is not a usable image."""

    kind = "bad_response"


class OutputError(ImggenError):
    """An image could not be written where it was asked to go."""

    kind = "output_error"


class NotSentError(GenerationError):
    """A request a batch did not send: the provider had refused the same credentials (401/403)."""

    exit_code = 3
    kind = "not_sent"

    def __init__(self, refused: GenerationError, images: int) -> None:
        super().__init__(f"not sent: the credentials were refused ({refused.status})", status=None)
        self.images = images


def error_line(exc: ImggenError, prompt: str | None = None, model: str | None = None) -> str:
    """One line: what failed, for which prompt and model, the provider's words, the request id, what next."""
    parts = []
    if model and prompt is not None:
        parts.append(f"{model} failed for prompt {_quote(prompt)}:")
    message, hint = exc.worded("cli")  # a parameter as a flag: -n 11, not n=11
    if isinstance(exc, GenerationError) and exc.request_id:
        message += f" (request id {exc.request_id})"
    parts.append(message if message.endswith((".", "!", "?")) else message + ".")
    if hint:
        parts.append(hint)
    from .settings import redact

    return redact(" ".join(parts).replace("\n", " "))


def _quote(prompt: str) -> str:
    import json

    from .secrets import redact

    prompt = redact(prompt)  # before the cut, which could leave part of a secret at its edge
    short = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    return json.dumps(short, ensure_ascii=False)
