"""A deterministic abstract picture as a real PNG, with nothing but the standard library.

Every row is built from whole-span byte operations (a gradient row is one colour repeated, a shape
is a slice assignment), so a 1024x1024 image costs about a thousand cheap row operations, not a
million Python-level pixel writes.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib

MAX_SIDE = 4096
Colour = tuple[int, int, int]


def _palette(prompt: str, seed: int) -> bytes:
    """64 pseudo-random bytes that decide every colour and shape of the picture."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return digest + hashlib.sha256(digest).digest()


def _colour(raw: bytes, at: int, light: bool = False) -> Colour:
    base = 110 if light else 30
    span = 255 - base
    return base + raw[at] * span // 255, base + raw[at + 1] * span // 255, base + raw[at + 2] * span // 255


def _mix(a: Colour, b: Colour, t: float) -> bytes:
    return bytes(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def _circles(raw: bytes, width: int, height: int) -> list[tuple[float, float, float, bytes]]:
    """Three circles: centre x, centre y, radius and colour, all derived from the palette bytes."""
    shapes = []
    for i in range(3):
        at = 12 + i * 6
        cx, cy = raw[at] / 255 * width, raw[at + 1] / 255 * height
        radius = (0.12 + raw[at + 2] / 255 * 0.25) * min(width, height)
        shapes.append((cx, cy, radius, bytes(_colour(raw, at + 3, light=True))))
    return shapes


def _row(y: int, background: bytes, width: int, shapes: list[tuple[float, float, float, bytes]]) -> bytes:
    row = bytearray(background * width)
    for cx, cy, radius, colour in shapes:
        dy = y + 0.5 - cy
        if abs(dy) >= radius:
            continue
        half = math.sqrt(radius * radius - dy * dy)
        start, stop = max(0, round(cx - half)), min(width, round(cx + half))
        if stop > start:
            row[start * 3 : stop * 3] = colour * (stop - start)
    return b"\x00" + bytes(row)  # filter type 0 (None) per scanline


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def draw_png(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A real PNG (8-bit RGB, valid CRCs, zlib IDAT) of width x height, deterministic for (prompt, seed)."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"placeholder images are 1 to {MAX_SIDE} pixels a side, not {width}x{height}")
    raw = _palette(prompt, seed)
    top, bottom = _colour(raw, 0), _colour(raw, 3)
    shapes = _circles(raw, width, height)
    rows = [_row(y, _mix(top, bottom, y / max(1, height - 1)), width, shapes) for y in range(height)]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"".join(rows), 6)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
