"""Small copies of images, for the gallery's thumbnails and the terminal previews. Pillow is imported
here only, and only when a small copy is made: `imggen --help` and a plain run never load it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError
from .output import publish_mode

if TYPE_CHECKING:
    from PIL.Image import Image

# Pillow refuses images over ~179 M pixels as "decompression bombs" already; a generated image is a few
# megapixels, so anything past this is not one imggen made and is not worth decoding for a thumbnail.
MAX_PIXELS = 64_000_000


def open_small(source: Path, box: int) -> Image:
    """The image at `source`, scaled to fit a `box`×`box` square (never enlarged), in RGB or RGBA.
    An integer box-filter reduce (Image.reduce) is ten times faster than thumbnail()'s resample and
    as good for a picture this small; decoding the file is most of what is left."""
    try:
        from PIL import Image
    except ImportError as exc:  # a dependency: missing only in a broken install
        raise UsageError("Pillow is not installed", hint="Reinstall imggen: pip install --force-reinstall") from exc
    image: Image.Image = Image.open(source)
    if image.width * image.height > MAX_PIXELS:
        raise ValueError(f"{image.width}x{image.height} is too large for a thumbnail")
    image.draft("RGB", (box, box))  # a JPEG decodes at 1/2, 1/4 or 1/8 of its size: most of its cost saved
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    factor = -(-max(image.size) // box)  # the smallest whole factor that fits the box
    return image.reduce(factor) if factor > 1 else image


def _has_alpha(image: Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def make_thumbnail(source: Path, target: Path, box: int) -> Path:
    """A thumbnail of `source` at `target` with the extension that fits it: .jpg (encodes in a fraction
    of a millisecond) or .webp for an image with transparency. Written whole or not at all (a temporary
    file renamed): a run killed half-way never leaves a cut thumbnail that the next run would reuse."""
    small = open_small(source, box)
    alpha = small.mode == "RGBA" and small.getchannel("A").getextrema()[0] != 255  # a pixel not opaque
    target = target.with_suffix(".webp" if alpha else ".jpg")
    fd, tmp = tempfile.mkstemp(prefix=".thumb-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            publish_mode(handle.fileno(), Path(tmp))  # readable as the images are (mkstemp makes it 0600)
            if alpha:
                small.save(handle, "WEBP", quality=80, method=0)  # method 0: WebP's fastest encoder
            else:
                small.convert("RGB").save(handle, "JPEG", quality=82)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
