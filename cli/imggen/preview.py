"""Small inline previews of images in terminals that draw pictures: the kitty graphics protocol, iTerm2's
inline images (OSC 1337) and DEC sixel. What a terminal speaks is told by its environment (no query:
reading the terminal's answer would race the user's typing); `IMGGEN_PREVIEW=kitty|iterm|sixel` names
it for a terminal imggen does not recognise, `IMGGEN_PREVIEW=none` turns previews off.

The escape formats, from each protocol's own documentation:
- kitty: https://sw.kovidgoyal.net/kitty/graphics-protocol/ — an APC `ESC _ G <keys> ; <base64> ESC \\`;
  `a=T` transmit and display, `f=100` PNG data, `c=` columns to fit it in, `q=2` no answer on stdin,
  the payload cut in chunks of at most 4096 base64 bytes, `m=1` on every chunk but the last (`m=0`).
  Spoken by kitty and Ghostty.
- iTerm2: https://iterm2.com/documentation-images.html — `ESC ] 1337 ; File = inline=1;size=N;width=W :
  <base64 file> BEL`; `width=24` is 24 character cells, the aspect ratio kept (preserveAspectRatio=1).
  Spoken by iTerm2, WezTerm and mintty.
- sixel: DEC's VT330/VT340 programmer reference, ch. 14 "Sixel Graphics" (vt100.net/docs/vt3xx-gp/chapter14.html)
  — `ESC P q`, raster attributes `"1;1;W;H`, colour registers `#n;2;R;G;B` (percent), then bands six
  pixels high: `#n` picks a colour, each character `?`+bits is a column of six pixels (top bit 0),
  `!count c` repeats one, `$` goes back to the band's start, `-` to the next band; `ESC \\` ends it.
  Spoken by foot, mlterm, Contour, xterm -ti vt340 (this one is not told by its environment).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping
from pathlib import Path

PROTOCOLS = ("kitty", "iterm", "sixel")
COLUMNS = 24  # character cells a preview is drawn in (kitty, iTerm2)
BOX = 256  # pixels: the small copy sent to kitty and iTerm2, which scale it to COLUMNS
SIXEL_BOX = 192  # pixels: sixel is drawn as sent (about 20-24 cells at common cell sizes)
SIXEL_COLOURS = 128
CHUNK = 4096  # kitty: base64 bytes per escape, as its protocol asks of remote clients

ESC = "\x1b"
ST = ESC + "\\"


def protocol(env: Mapping[str, str]) -> str | None:
    """The picture protocol the terminal of this environment draws, or None (then no preview)."""
    forced = env.get("IMGGEN_PREVIEW", "").strip().lower()
    if forced:
        return forced if forced in PROTOCOLS else None
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if env.get("TMUX") or term.startswith(("screen", "tmux")):
        return None  # tmux and screen pass none of these through unless set up to
    if env.get("KITTY_WINDOW_ID") or term in ("xterm-kitty", "xterm-ghostty") or program == "ghostty":
        return "kitty"
    if program in ("iTerm.app", "WezTerm", "mintty") or env.get("LC_TERMINAL") == "iTerm2":
        return "iterm"  # LC_TERMINAL: iTerm2 sets it, and ssh passes LC_* on by default
    if term in ("foot", "foot-extra", "mlterm", "contour") or "sixel" in term or env.get("MLTERM"):
        return "sixel"
    return None


def escapes(path: Path, kind: str) -> str:
    """The escape sequence that draws a small copy of the image at `path`, then a line break."""
    from .thumbnails import open_small

    if kind == "sixel":
        return sixel(open_small(path, SIXEL_BOX)) + "\n"
    small = io.BytesIO()
    open_small(path, BOX).save(small, "PNG")
    data = small.getvalue()
    return (kitty(data) if kind == "kitty" else iterm(data)) + "\n"


def kitty(png: bytes) -> str:
    payload = base64.standard_b64encode(png).decode()
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)] or [""]
    out = []
    for number, chunk in enumerate(chunks):
        more = int(number < len(chunks) - 1)
        keys = f"a=T,f=100,c={COLUMNS},q=2,m={more}" if number == 0 else f"q=2,m={more}"
        out.append(f"{ESC}_G{keys};{chunk}{ST}")
    return "".join(out)


def iterm(data: bytes) -> str:
    payload = base64.standard_b64encode(data).decode()
    return f"{ESC}]1337;File=inline=1;size={len(data)};width={COLUMNS};preserveAspectRatio=1:{payload}\a"


def sixel(image: object) -> str:
    """A Pillow image as sixel: quantised to a palette, then each band of six rows, colour by colour."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    flat = image.convert("RGB").quantize(SIXEL_COLOURS)
    width, height = flat.size
    pixels = flat.tobytes()
    palette = flat.getpalette() or []
    used = sorted(set(pixels))
    out = [f'{ESC}Pq"1;1;{width};{height}']
    out += [f"#{c};2;" + ";".join(str(_percent(v)) for v in palette[3 * c : 3 * c + 3]) for c in used]
    for top in range(0, height, 6):
        rows = [pixels[(top + r) * width : (top + r + 1) * width] for r in range(min(6, height - top))]
        out.append("$".join(_band(rows, colour) for colour in sorted(set(b"".join(rows)))) + "-")
    return "".join(out) + ST


def _band(rows: list[bytes], colour: int) -> str:
    """One colour of one band: per column, the bits of the rows (top = 1) that have it, as `?`+bits."""
    bits = 0
    for r, row in enumerate(rows):
        # Each byte becomes 1 << r where the pixel has the colour, else 0: the rows' bits never overlap,
        # so their big-integer sum is the band, column by column, with no carry between bytes.
        table = bytearray(256)
        table[colour] = 1 << r
        bits += int.from_bytes(row.translate(bytes(table)), "big")
    columns = bits.to_bytes(len(rows[0]), "big").translate(_SIXEL_CHARS).decode("ascii")
    return f"#{colour}" + _RUN.sub(lambda m: f"!{len(m.group(0))}{m.group(1)}", columns)


_SIXEL_CHARS = bytes((63 + value) if value < 64 else 63 for value in range(256))
_RUN = re.compile(r"(.)\1{3,}")  # four or more of one character: `!count` is shorter


def _percent(value: int) -> int:
    return round(value * 100 / 255)
