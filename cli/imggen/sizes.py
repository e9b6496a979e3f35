"""Mapping a requested `--size` / `--aspect-ratio` onto what a model takes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .catalog import ModelInfo
from .checks import param_error
from .errors import UsageError

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")
TOLERANCE = 1.15  # nothing native within 15 % of the asked ratio is a usage error


@dataclass(frozen=True)
class SizeChoice:
    size: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    note: str | None = None


def parse_size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match or 0 in (int(match[1]), int(match[2])):
        raise param_error("{given} is not WIDTHxHEIGHT", param="size", value=text, hint="e.g. {name:size=1024x1024}.")
    return int(match[1]), int(match[2])


def parse_ratio(text: str) -> float:
    match = _RATIO.match(text)
    if not match or float(match[2]) == 0 or float(match[1]) == 0:
        raise param_error("{given} is not W:H", param="aspect_ratio", value=text, hint="e.g. {name:aspect_ratio=16:9}.")
    return float(match[1]) / float(match[2])


def choose(info: ModelInfo | None, size: str | None, aspect_ratio: str | None) -> SizeChoice:
    """What to send for this model, and a note when it differs from what was asked."""
    if size and aspect_ratio:
        raise param_error("{name} and {name:aspect_ratio} were both given", param="size", hint="Give one of them.")
    if size is None and aspect_ratio is None:
        return SizeChoice()
    if size is not None and size.strip().lower() == "auto":
        return _auto(info)
    if info is None:
        return _unknown_model(size, aspect_ratio)
    if info.aspect_ratios:
        return _ratio_model(info, size, aspect_ratio)
    return _pixel_model(info, size, aspect_ratio)


def _auto(info: ModelInfo | None) -> SizeChoice:
    if info is None or "auto" in info.sizes:
        return SizeChoice(size="auto")
    raise param_error("{model} does not take {name:size=auto}", param="size", model=info.id,
                      hint="Allowed: {allowed}.", allowed=allowed_values(info))  # fmt: skip


def _unknown_model(size: str | None, aspect_ratio: str | None) -> SizeChoice:
    if size is not None:
        parse_size(size)
        return SizeChoice(size=size.strip())
    assert aspect_ratio is not None
    width, height = _snap(parse_ratio(aspect_ratio), 1024 * 1024, 16)
    return SizeChoice(size=f"{width}x{height}", note=f"--aspect-ratio {aspect_ratio} sent as --size {width}x{height}")


def allowed_values(info: ModelInfo) -> str:
    values = list(info.aspect_ratios or info.sizes)
    if info.size_rule:
        rule = info.size_rule
        least = f", at least {int(rule['min_pixels']):,} pixels" if rule.get("min_pixels") else ""
        values.append(
            f"any WxH with sides a multiple of {int(rule.get('multiple', 1))}, "
            f"ratio up to {rule.get('max_ratio', 1):g}:1, at most {int(rule.get('max_edge', 0))} px a side{least}"
        )
    return ", ".join(values)


def _ratio_model(info: ModelInfo, size: str | None, aspect_ratio: str | None) -> SizeChoice:
    asked = aspect_ratio or size
    assert asked is not None
    if aspect_ratio in info.aspect_ratios:
        return SizeChoice(aspect_ratio=aspect_ratio)
    if size is not None:
        width, height = parse_size(size)
        ratio, image_size = width / height, _image_size(info, max(width, height))
    else:
        ratio, image_size = parse_ratio(asked), None
    best = min(info.aspect_ratios, key=lambda r: abs(math.log(parse_ratio(r) / ratio)))
    _check_close(info, asked, parse_ratio(best) / ratio)
    flag = "--size" if size is not None else "--aspect-ratio"
    note = f"{info.id} takes aspect ratios, not pixel sizes: {flag} {asked} sent as aspect ratio {best}"
    return SizeChoice(aspect_ratio=best, image_size=image_size, note=note)


def _image_size(info: ModelInfo, long_edge: int) -> str | None:
    if not info.image_sizes:
        return None
    for label in info.image_sizes:
        if long_edge <= _image_size_edge(label) * 1.25:
            return label
    return info.image_sizes[-1]


def _image_size_edge(label: str) -> int:
    """The long edge an `image_sizes` label stands for: "1K" is 1024 px, "512" is 512 px (Gemini's spelling)."""
    return int(label[:-1]) * 1024 if label.upper().endswith("K") else int(label)


def _pixel_model(info: ModelInfo, size: str | None, aspect_ratio: str | None) -> SizeChoice:
    if size is not None:
        width, height = parse_size(size)
        if f"{width}x{height}" in info.sizes or _fits_rule(info, width, height):
            return SizeChoice(size=f"{width}x{height}")
        _check_min_pixels(info, size, width * height)
        ratio, area, asked, flag = width / height, width * height, size, "--size"
    else:
        assert aspect_ratio is not None
        ratio, area, asked, flag = parse_ratio(aspect_ratio), _default_area(info), aspect_ratio, "--aspect-ratio"
    best = _nearest_size(info, ratio, area)
    _check_close(info, asked, (best[0] / best[1]) / ratio)
    chosen = f"{best[0]}x{best[1]}"
    return SizeChoice(size=chosen, note=f"{info.id} does not take {flag} {asked}: using {chosen}")


def _default_area(info: ModelInfo) -> int:
    if info.default_size and _SIZE.match(info.default_size):
        width, height = parse_size(info.default_size)
        return width * height
    return 1024 * 1024


def _nearest_size(info: ModelInfo, ratio: float, area: int) -> tuple[int, int]:
    candidates = [parse_size(s) for s in info.sizes if _SIZE.match(s)]
    if info.size_rule:
        candidates.append(_snap_to_rule(info.size_rule, ratio, area))
    if not candidates:
        raise param_error("{model} takes no pixel size", param="size", model=info.id, hint="Leave out {name}.")

    def distance(c: tuple[int, int]) -> tuple[float, float]:
        return round(abs(math.log(c[0] / c[1] / ratio)), 6), abs(math.log(c[0] * c[1] / area))

    return min(candidates, key=distance)


def _check_min_pixels(info: ModelInfo, asked: str, pixels: int) -> None:
    """A size below the model's pixel floor is refused, not enlarged: the user asked for a small image."""
    least = int((info.size_rule or {}).get("min_pixels", 0))
    if pixels < least:
        raise param_error(
            "{given} is {pixels:,} pixels; {model} needs at least {least:,} (e.g. 1024x640 or 1024x1024)",
            param="size",
            value=asked,
            model=info.id,
            pixels=pixels,
            least=least,
            hint="Allowed: {allowed}.",
            allowed=allowed_values(info),
        )


def _check_close(info: ModelInfo, asked: str, ratio_of_ratios: float) -> None:
    if abs(math.log(ratio_of_ratios)) > math.log(TOLERANCE):
        raise UsageError(
            f"{info.id} has no size near {asked} (within 15 % of its ratio)",
            hint=f"Allowed: {allowed_values(info)}.",
        )


def _fits_rule(info: ModelInfo, width: int, height: int) -> bool:
    rule = info.size_rule
    if not rule:
        return False
    multiple = int(rule.get("multiple", 1))
    long_edge, short_edge = max(width, height), min(width, height)
    return (
        width % multiple == 0
        and height % multiple == 0
        and long_edge / short_edge <= rule.get("max_ratio", math.inf)
        and long_edge <= rule.get("max_edge", math.inf)
        and short_edge >= rule.get("min_edge", 1)
        and width * height <= rule.get("max_pixels", math.inf)
        and width * height >= rule.get("min_pixels", 0)
    )


def _snap_to_rule(rule: dict[str, float], ratio: float, area: int) -> tuple[int, int]:
    max_ratio = rule.get("max_ratio", math.inf)
    ratio = min(max(ratio, 1 / max_ratio), max_ratio)
    area = int(min(max(area, rule.get("min_pixels", 0)), rule.get("max_pixels", math.inf)))
    multiple = int(rule.get("multiple", 1))
    width, height = _snap(ratio, area, multiple)
    scale = min(1.0, rule.get("max_edge", math.inf) / max(width, height))
    width, height = _snap(ratio, int(width * height * scale * scale), multiple)
    low = int(rule.get("min_edge", 1))
    return max(width, low), max(height, low)


def _snap(ratio: float, area: int, multiple: int) -> tuple[int, int]:
    """The WxH of about `area` pixels at `ratio`, sides rounded down to `multiple`."""
    width = math.sqrt(area * ratio)
    height = width / ratio
    return max(multiple, int(width) // multiple * multiple), max(multiple, int(height) // multiple * multiple)
