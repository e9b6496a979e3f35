"""Where a gallery thumbnail of a PNG spends its time, and what other decoders would save: CPU
milliseconds (process_time, the median of 15: a figure the other processes on a shared machine do not
change) for one 1024x1024 PNG, by stage and by decoder.

    .venv/bin/python tests/bench/png_decode.py

The pictures: the gallery bench's own (tests/bench/gallery.py `picture("png")`, written by Pillow,
which picks each row's filter: mostly Up and Sub there), then one photo-like picture written four
times with every row under one PNG filter (None, Sub, Up, Paeth), since a decoder's cost after the
inflate is its unfiltering. Paeth is what encoders pick most for photographs.

Decoders: Pillow always; pyspng (libspng), imagecodecs (libspng, libpng), OpenCV and libvips when they
are installed here (`pip install pyspng imagecodecs opencv-python-headless pyvips pyvips-binary deflate`): imggen
uses none of them (README: none is twice as fast as Pillow).
"""

from __future__ import annotations

import io
import statistics
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

from gallery import picture

FILTERS = {"None": 0, "Sub": 1, "Up": 2, "Paeth": 4}


def cpu_ms(work: Callable[[], Any], repeat: int = 15) -> float:
    spent = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        spent.append(time.process_time() - start)
    return statistics.median(spent) * 1000


def decoders() -> dict[str, Callable[[bytes], Any]]:
    from PIL import Image

    def pillow(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    found: dict[str, Callable[[bytes], Any]] = {"Pillow": pillow}
    try:
        import pyspng

        found["pyspng"] = pyspng.load
    except ImportError:
        pass
    try:
        import imagecodecs

        found["imagecodecs spng"] = imagecodecs.spng_decode
        found["imagecodecs png"] = imagecodecs.png_decode
    except ImportError:
        pass
    try:
        import cv2
        import numpy

        cv2.setNumThreads(1)
        found["cv2 imdecode"] = lambda d: cv2.imdecode(numpy.frombuffer(d, numpy.uint8), cv2.IMREAD_COLOR)
        found["cv2 REDUCED_4"] = lambda d: cv2.imdecode(numpy.frombuffer(d, numpy.uint8), cv2.IMREAD_REDUCED_COLOR_4)
    except ImportError:
        pass
    try:
        import pyvips

        # libvips decodes a PNG with libspng; avg() makes it read every row (its loads are lazy).
        found["pyvips"] = lambda d: pyvips.Image.new_from_buffer(d, "", access="sequential").avg()
    except (ImportError, OSError):  # pyvips without a libvips (pip install pyvips-binary) raises OSError
        pass
    return found


def photo() -> Any:
    """Photo-like pixels: smooth structure at two scales (bicubic-enlarged noise) and a fine grain."""
    import random

    from PIL import Image

    rng = random.Random(5)

    def noise(side: int) -> Image.Image:
        return Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).resize((1024, 1024), Image.BICUBIC)

    grain = Image.effect_noise((1024, 1024), 10).convert("RGB")
    return Image.blend(Image.blend(noise(24), noise(160), 0.3), grain, 0.08)


def with_filter(image: Any, kind: int) -> tuple[bytes, bytes]:
    """`image` as a PNG whose every row has filter `kind` (PNG spec 9.2), and its zlib stream."""
    width, height = image.size
    raw = image.tobytes()
    stride, bpp = width * 3, 3
    rows = []
    above = bytes(stride)
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        rows.append(bytes([kind]) + _filtered(row, above, bpp, kind))
        above = row
    stream = zlib.compress(b"".join(rows), 6)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
    return data, stream


def _filtered(row: bytes, above: bytes, bpp: int, kind: int) -> bytes:
    if kind == 0:
        return row
    left = bytes(bpp) + row[:-bpp]
    corner = bytes(bpp) + above[:-bpp]
    if kind == 1:
        return bytes((x - a) & 255 for x, a in zip(row, left, strict=True))
    if kind == 2:
        return bytes((x - b) & 255 for x, b in zip(row, above, strict=True))
    return bytes((x - _paeth(a, b, c)) & 255 for x, a, b, c in zip(row, left, above, corner, strict=True))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def idat(data: bytes) -> bytes:
    """The zlib stream of a PNG: its IDAT chunks joined."""
    at, parts = 8, []
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            parts.append(data[at + 8 : at + 8 + size])
        at += 12 + size
    return b"".join(parts)


def inflates(stream: bytes) -> str:
    """The floor of any PNG decoder: the zlib stream's inflate, by Python's zlib (what the system has),
    by libdeflate when the `deflate` package is here, and by zlib-ng (what Pillow's wheels bundle) and
    libdeflate again when imagecodecs is."""
    size = len(zlib.decompress(stream))
    shown = [f"zlib {zlib.ZLIB_RUNTIME_VERSION} {cpu_ms(lambda: zlib.decompress(stream)):.1f} ms"]
    try:
        import deflate

        shown.append(f"libdeflate {cpu_ms(lambda: deflate.zlib_decompress(stream, size)):.1f} ms")
    except ImportError:
        pass
    try:
        import imagecodecs
    except ImportError:
        return ", ".join(shown)
    shown.append(f"zlib-ng {cpu_ms(lambda: imagecodecs.zlibng_decode(stream, out=size)):.1f} ms")
    shown.append(f"libdeflate {cpu_ms(lambda: imagecodecs.deflate_decode(stream, out=size)):.1f} ms")
    return ", ".join(shown)


def main() -> None:
    from PIL import Image

    pictures = {"bench picture (Pillow's filters)": (picture("png"), None)}
    image = photo()
    for name, kind in FILTERS.items():
        pictures[f"photo-like, every row {name}"] = with_filter(image, kind)
    found = decoders()
    for name, (data, stream) in pictures.items():
        stream = stream or idat(data)
        print(f"{name}: {len(data) / 1e6:.2f} MB; inflate alone: {inflates(stream)}")
        base = 0.0
        for decoder, decode in found.items():
            spent = cpu_ms(lambda d=data, f=decode: f(d))
            base = base or spent
            print(f"    {decoder:<18} {spent:6.1f} ms   x{base / spent:.2f} of Pillow")
    small = Image.open(io.BytesIO(picture("png")))
    small.load()
    after = cpu_ms(lambda: small.reduce(4).save(io.BytesIO(), "JPEG", quality=82))
    print(f"after the decode (reduce to 256 px, JPEG encode): {after:.1f} ms")


if __name__ == "__main__":
    main()
