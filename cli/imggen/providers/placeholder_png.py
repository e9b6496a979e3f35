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


def decode_png(data: bytes) -> tuple[int, int, int, list[bytearray]] | None:
    """(width, height, channels, rows of pixel bytes) of an 8-bit, non-interlaced greyscale, RGB, grey
    with alpha or RGBA PNG; None for any other kind (palette, 16-bit, interlaced)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    at, idat, header = 8, bytearray(), None
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        at += 12 + length
    if header is None:
        return None
    width, height, depth, colour, _compression, _filter, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or interlace or channels is None:
        return None
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error:
        return None
    stride = width * channels
    if len(raw) < height * (stride + 1):
        return None
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        rows.append(row)
        previous = row
    return width, height, channels, rows


def _unfilter(kind: int, row: bytearray, above: bytearray, step: int) -> bytearray:
    """Undo one scanline's filter (PNG spec 9.2): None, Sub, Up, Average, Paeth."""
    if kind == 2:
        return bytearray((a + b) & 0xFF for a, b in zip(row, above, strict=True))
    for i in range(len(row)) if kind else ():
        left = row[i - step] if i >= step else 0
        up = above[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            corner = above[i - step] if i >= step else 0
            guess = left + up - corner
            pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
            row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
    return row


def encode_png(width: int, height: int, channels: int, rows: list[bytearray]) -> bytes:
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + bytes(row) for row in rows), 6)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def edit_png(image: bytes, prompt: str, seed: int, mask: bytes | None = None) -> bytes | None:
    """The input, visibly changed and deterministic for (image, prompt, seed, mask): inverted where the
    mask is transparent (without a mask, inside a centred rectangle), framed in a colour drawn from the
    prompt and seed. None when the input is not a PNG decode_png reads."""
    decoded = decode_png(image)
    if decoded is None:
        return None
    width, height, channels, rows = decoded
    masked = decode_png(mask) if mask is not None else None
    colour = bytes(_colour(_palette(prompt, seed), 0, light=True))
    pixel = (colour[:1] if channels < 3 else colour) + (b"\xff" if channels in (2, 4) else b"")
    colours = channels - (1 if channels in (2, 4) else 0)
    border = max(1, min(width, height) // 16)
    for y, row in enumerate(rows):
        for x in _changed(y, width, height, masked):
            at = x * channels
            row[at : at + colours] = bytes(255 - v for v in row[at : at + colours])
        if y < border or y >= height - border:
            row[:] = pixel * width
        else:
            row[: border * channels] = pixel * border
            row[(width - border) * channels :] = pixel * border
    return encode_png(width, height, channels, rows)


def _changed(y: int, width: int, height: int, mask: tuple[int, int, int, list[bytearray]] | None) -> range | list[int]:
    """The columns of row y to change: where the mask's alpha is 0, else the middle half."""
    if mask is None or mask[2] not in (2, 4) or mask[0] != width or mask[1] != height:
        return range(width // 4, width - width // 4) if height // 4 <= y < height - height // 4 else range(0)
    row, channels = mask[3][y], mask[2]
    return [x for x in range(width) if row[x * channels + channels - 1] == 0]
