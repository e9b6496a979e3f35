"""Checks of numbers and text that come from flags, files, configs and Python callers.

Each check returns what is wrong (None when nothing is), so the caller can say where the value came
from and raise the error its source calls for: a flag or a JSONL line is a usage error, a config file
a configuration error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .secrets import redact


@dataclass(frozen=True)
class Range:
    """An allowed range: `low` is included unless `above`; `high` is always included."""

    low: float
    high: float | None = None
    whole: bool = False
    above: bool = False
    unit: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        low = _plain(self.low)
        if self.high is not None and not self.above:
            return f"{kind} from {low} to {_plain(self.high)}{self.unit}"
        bottom = f"above {low}" if self.above else f"of at least {low}"
        top = f" and at most {_plain(self.high)}" if self.high is not None else ""
        return f"{kind} {bottom}{top}{self.unit}"


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:.4g}"


MAX_SEED = 2**32 - 1  # the widest seed any provider takes (Stability's); most take less
RANGES = {
    "n": Range(1, 10, whole=True),
    "concurrency": Range(1, 256, whole=True),
    "retries": Range(0, 10, whole=True),
    "timeout": Range(0, 86_400, above=True, unit=" seconds"),
    "rpm": Range(1 / 60, unit=" (one request an hour)"),
    "max_cost": Range(0, unit=" (USD)"),
    "seed": Range(0, MAX_SEED, whole=True),
}


def number_problem(value: Any, limits: Range) -> str | None:
    """Why `value` is not a finite number of the right type within `limits`, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be {limits.describe()}"
    if limits.whole and not isinstance(value, int):
        return f"must be {limits.describe()}"
    if not math.isfinite(value):
        return f"must be a finite number: {limits.describe()}"
    too_low = value <= limits.low if limits.above else value < limits.low
    if too_low or (limits.high is not None and value > limits.high):
        return f"is out of range: give {limits.describe()}"
    return None


def quoted(value: Any) -> str:
    """A value as a message quotes it: numbers as typed, anything else as Python writes it."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def text_problem(value: str) -> str | None:
    """Why `value` cannot be sent as text: a NUL, or characters that are not UTF-8 (lone surrogates,
    which is how Python shows the invalid bytes of a command-line argument)."""
    if "\0" in value:
        return "contains a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid UTF-8 (at character {exc.start + 1})"
    return None


# --- One error, three wordings: the Python API speaks of parameters (`n=11`), the CLI of flags
# (`-n 11`), the proxy of request body fields (`'n': 11`).

STYLES = ("python", "cli", "proxy")
# Parameters named by their short flag on the command line; the others are --<param-with-dashes>.
FLAGS = {"n": "-n", "model": "-m", "size": "-s", "quality": "-q", "concurrency": "-j", "params": "-p"}
_ABSENT: Any = object()


def param_name(param: str, style: str) -> str:
    """A parameter as each caller names it: `size`, `--size`, `'size'`."""
    if style == "cli":
        return FLAGS.get(param) or "--" + param.replace("_", "-")
    if style == "proxy":
        return "the request body" if param == "params" else f"'{param}'"
    return param


def param_given(param: str, value: Any, style: str, *, provider: bool = False) -> str:
    """A parameter with the value it was given: `n=11`, `-n 11`, `'n': 11`. A provider parameter
    (`provider=True`) is `-p key=value` on the command line."""
    if style == "cli":
        return f"-p {param}={quoted(value)}" if provider else f"{param_name(param, style)} {quoted(value)}"
    if style == "proxy":
        shown = json.dumps(value, default=str)
        return f"'{param}': {shown if len(shown) <= 40 else shown[:37] + '...'}"
    return f"{param}={quoted(value)}"


class _Names:
    """In a template, `{name}` is the error's parameter, `{name:size}` another one, and
    `{name:size=1024x1024}` an example value for one (`size='1024x1024'`, `--size 1024x1024`)."""

    def __init__(self, style: str, param: str) -> None:
        self.style, self.param = style, param

    def __format__(self, spec: str) -> str:
        param, sep, example = spec.partition("=")
        if not sep:
            return param_name(param or self.param, self.style)
        if self.style == "cli":
            return f"{param_name(param, 'cli')} {example}"
        return param_given(param, example, self.style)


def param_error(
    template: str, *, param: str, value: Any = _ABSENT, hint: str | None = None, provider: bool = False, **words: Any
) -> UsageError:
    """A usage error about one parameter, worded for each caller from one template: `{given}` is the
    parameter with its value, `{name}`/`{name:other}`/`{name:other=example}` name parameters (see
    _Names), other `{fields}` are filled from `words` (a model id, a problem)."""
    wordings: dict[str, tuple[str, str | None]] = {}
    for style in STYLES:
        names = _Names(style, param)
        given = param_name(param, style) if value is _ABSENT else param_given(param, value, style, provider=provider)
        message = template.format(given=given, name=names, **words)
        wordings[style] = (redact(message), None if hint is None else redact(hint.format(name=names, **words)))
    error = UsageError(wordings["python"][0], hint=wordings["python"][1], param=param)
    error.wordings = wordings
    return error
