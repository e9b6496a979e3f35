"""`imggen gallery` over 2,000 images: the first time (every thumbnail made) and again (every one reused).

A folder as `imggen generate --metadata` leaves it: 2,000 distinct 1024x1024 images (one picture with
a text chunk or comment that tells it apart, so each has its own sha256 and is decoded in full), a
manifest line and a sidecar each. Run by bench.py (its --no-gallery skips it), or alone:

    .venv/bin/python tests/bench/gallery.py [--images 2000] [--kind png|jpeg]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import struct
import sys
import tempfile
import zlib
from pathlib import Path

from bench import imggen, measure, ran_ok

IMAGES = 2000
TARGETS = {"first": 10.0, "again": 2.0}  # seconds (issue 17, item 8)
FILTER_TARGET = 100.0  # ms: a filter that answers as the user types


def picture(kind: str) -> bytes:
    """One 1024x1024 picture like a generated one: soft shapes and some grain (not flat, not noise)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(17)
    image = Image.new("RGB", (1024, 1024), (40, 60, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, size = rng.randrange(1024), rng.randrange(1024), rng.randrange(40, 400)
        draw.ellipse((x, y, x + size, y + size), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = Image.blend(
        image.filter(ImageFilter.GaussianBlur(3)), Image.effect_noise((1024, 1024), 24).convert("RGB"), 0.12
    )
    out = io.BytesIO()
    image.save(out, "PNG" if kind == "png" else "JPEG", quality=92)
    return out.getvalue()


def variant(data: bytes, number: int, kind: str) -> bytes:
    """The same picture with a number in it: a PNG tEXt chunk after IHDR, a JPEG comment after SOI."""
    text = f"bench {number}".encode()
    if kind == "png":
        chunk = b"tEXt" + b"Comment\0" + text
        packed = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        return data[:33] + packed + data[33:]  # 8 bytes of signature, 25 of IHDR
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def make_folder(folder: Path, images: int, kind: str) -> None:
    folder.mkdir()
    base = picture(kind)
    ext = "png" if kind == "png" else "jpg"
    lines = []
    for number in range(1, images + 1):
        data = variant(base, number, kind)
        name = f"2026-11-30-an-otter-number-{number}-1.{ext}"
        (folder / name).write_bytes(data)
        prompt = f"an otter, number {number}"
        sidecar = {"prompt": prompt, "model": "openai/gpt-image-2", "parameters": {"size": "1024x1024"},
                   "seed": number, "size": "1024x1024", "created": 1796000000 + number, "cost_usd": 0.04}  # fmt: skip
        (folder / name).with_suffix(".json").write_text(json.dumps(sidecar))
        lines.append(json.dumps({"key": f"k{number}", "prompt": prompt, "model": "openai/gpt-image-2",
                                 "status": "saved", "index": 1, "path": name, "cost_usd": 0.04,
                                 "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                 "created": 1796000000 + number}))  # fmt: skip
    (folder / ".imggen-manifest.jsonl").write_text("\n".join(lines) + "\n")


def run_gallery(out: Path, images: int = IMAGES, kind: str = "png") -> dict[str, float]:
    """Seconds of `imggen gallery` over `images` images: the first run, then the median of three more
    (the folder's files are in the page cache by then, as they are right after the run that made them)."""
    folder = out / f"gallery-{kind}"
    make_folder(folder, images, kind)
    command = imggen("gallery", str(folder), "--quiet")
    before = cpu()
    first, _, code = measure(command)
    first_cpu = cpu() - before
    ran_ok(code, command)
    thumbs = len(list((folder / ".imggen-thumbs").iterdir()))
    if thumbs != images:
        raise SystemExit(f"error: {thumbs} thumbnails made, expected {images}: no figures for this run")
    before = cpu()
    again = sorted(measure(command)[0] for _ in range(3))[1]
    again_cpu = (cpu() - before) / 3
    figures = {"first": first, "again": again, "images": images, "first cpu": first_cpu, "again cpu": again_cpu}
    took = filter_ms(folder / "gallery.html")
    return figures if took is None else {**figures, "filter ms": took}


def filter_ms(page_file: Path) -> float | None:
    """Milliseconds the page's filter takes to narrow every card to one, in Chromium (median of 7, each
    after clearing the box), or None when Playwright or the system's Chromium is missing."""
    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for the browser test's Chromium
    from systemchromium import ARGS, chromium

    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if path is None:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        runs = [page.evaluate(TIME_FILTER, word) for word in ("number 1999", "") * 7]
        browser.close()
    return sorted(runs[0::2])[3]


# Sets the box as typing does and times the page's own handler, which hides the cards that do not match,
# and the layout of the grid that follows (reading offsetHeight makes the browser lay it out there and then).
TIME_FILTER = """word => { const q = document.getElementById('q'); const t = performance.now();
    q.value = word; q.dispatchEvent(new Event('input')); document.body.offsetHeight;
    return performance.now() - t; }"""


def cpu() -> float:
    """CPU seconds (user + system) of the finished processes this one started: a figure the other
    processes on a shared machine do not change, as they change the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(figures: dict[str, dict[str, float]]) -> list[str]:
    rows = []
    for kind, values in figures.items():
        for when in ("first", "again"):
            label = f"gallery {values['images']:.0f} {kind}, {'thumbnails made' if when == 'first' else 'reused'}"
            cores = os.cpu_count() or 1
            spent = f"{values[when]:.2f} s ({values[when + ' cpu']:.2f} s CPU on {cores} cores)"
            rows.append(f"{label:<42} {spent:<38} target <= {TARGETS[when]:.0f} s")
        if "filter ms" in values:
            label = f"gallery {values['images']:.0f} {kind}, page filter"
            spent = f"{values['filter ms']:.1f} ms (Chromium, median of 7)"
            rows.append(f"{label:<42} {spent:<38} target <= {FILTER_TARGET:.0f} ms")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--kind", choices=("png", "jpeg"), default="png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {f"{args.kind} 1024x1024": run_gallery(Path(tmp), args.images, args.kind)}
    for row in report(figures):
        print(row)


if __name__ == "__main__":
    main()
