"""A static HTML page of images: thumbnails with prompt, model, seed, size, cost and date, a filter box,
a full-size viewer with keyboard navigation. One file with its CSS and JavaScript inline (no CDN, no
server: it works from file:// and offline), thumbnails made once into `.imggen-thumbs/` beside it.

`write_page(items, page)` takes any list of `Item`: `folder_items(DIR)` reads a folder's manifest and
`--metadata` sidecars (`imggen gallery`); `log_items(entries)` makes them of the log's entries
(`imggen logs --html`).

Everything that comes from a prompt, a sidecar or a file name is escaped (html.escape, and quoted URLs),
and a Content-Security-Policy allows only this page's own script and style (by hash) and images from
the page's own origin: text from a hostile prompt can neither run nor load anything."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .manifest import Manifest, sha256_of
from .output import SIDECAR_SUFFIX, image_suffix, is_image

if TYPE_CHECKING:
    from .logdb import Entry

THUMBS = ".imggen-thumbs"  # beside the page; output.remove_leftovers leaves it alone
THUMB_BOX = 320  # pixels at most: sharp at the page's 170 CSS px on a 2x screen
THUMB_EXTENSIONS = (".jpg", ".webp")
# Told (thumbnails made so far, thumbnails to make): once with 0 before the first, then after each one.
Tick = Callable[[int, int], None]


@dataclass
class Item:
    """One image of the page. `sha256` (the manifest's, when it knows the file) names its thumbnail."""

    path: Path
    prompt: str = ""
    model: str = ""
    seed: int | None = None
    size: str | None = None
    cost: float | None = None
    created: float | None = None  # Unix time
    sha256: str | None = None


@dataclass
class Written:
    page: Path
    images: int
    thumbs_made: int
    thumbs_reused: int
    thumbs_failed: int


# -- a folder's images --------------------------------------------------------------------------------


def folder_items(directory: Path) -> list[Item]:
    """Every image in `directory` (not its hidden files), newest first, with what its manifest line and
    its sidecar say; an image neither knows is still shown, by its name and date."""
    lines = Manifest(directory).saved()
    items, modified = [], {}
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith(".") or image_suffix(entry.name) is None or not is_image(path):
            continue  # the extension first: a sidecar is never opened to be sniffed
        stat = entry.stat()
        item = Item(path=path, created=stat.st_mtime)
        _from_manifest(item, lines.get(entry.name), stat.st_size)
        _from_sidecar(item, path.with_suffix(SIDECAR_SUFFIX))
        items.append(item)
        modified[path] = stat.st_mtime_ns
    # Newest first; within one second (the manifest's unit), the file written last first.
    items.sort(key=lambda item: (item.created or 0, modified[item.path]), reverse=True)
    return items


def _from_manifest(item: Item, line: dict[str, Any] | None, size: int) -> None:
    if line is None:
        return
    _from_record(item, line)
    item.sha256 = _still(line.get("sha256"), line.get("bytes"), size)


def _from_record(item: Item, record: dict[str, Any]) -> None:
    """What a manifest line and a sidecar both say, in the same fields: each value that has the right
    type replaces what the item had."""
    item.prompt = _text(record.get("prompt")) or item.prompt
    item.model = _text(record.get("model")) or item.model
    item.cost = _number(record.get("cost_usd"), item.cost)
    item.created = _number(record.get("created"), item.created)


def _still(digest: Any, recorded: Any, size: int) -> str | None:
    """`digest` when the file still has the size it was recorded with: still the file it describes (as
    --resume checks), so its thumbnail is found by name without hashing the file again."""
    if isinstance(digest, str) and len(digest) == 64 and recorded == size:
        return digest.lower()
    return None


def _from_sidecar(item: Item, sidecar: Path) -> None:
    """`--metadata`'s JSON beside the image: the seed and size the manifest does not keep."""
    try:
        if sidecar.stat().st_size > 1 << 20:
            return  # not a sidecar imggen wrote
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(data, dict):
        return
    _from_record(item, data)
    seed = data.get("seed")
    item.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else item.seed
    parameters = data.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    item.size = _text(data.get("size")) or _text(parameters.get("size")) or item.size


def log_items(entries: Sequence[Entry]) -> list[Item]:
    """The log's entries (`imggen logs --html`), in their order: the sha256 the log recorded names the
    thumbnail while the file keeps its recorded size; a file gone is shown as missing."""
    items = []
    for entry in entries:
        path = Path(entry.path)
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        digest = _still(entry.sha256, entry.bytes, size)
        items.append(Item(path=path, prompt=entry.prompt, model=entry.model, seed=entry.seed, size=entry.size,
                          cost=entry.cost_usd, created=entry.created, sha256=digest))  # fmt: skip
    return items


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any, default: float | None) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) < 1e15:
        return float(value)
    return default


# -- thumbnails ---------------------------------------------------------------------------------------


def thumbnails(
    items: Sequence[Item], folder: Path, present: set[Path], tick: Tick | None = None
) -> tuple[dict[Path, Path], Written]:
    """Each existing image's thumbnail in `folder`, named by the image's sha256 (.jpg, or .webp when it
    has transparency): made when missing, reused when present. Made on every core by threads: Pillow
    lets go of the GIL while it decodes (python-pillow/Pillow#1224), reduces and encodes
    (ImagingSectionEnter in its C code)."""
    folder.mkdir(exist_ok=True)
    existing = {entry.name for entry in os.scandir(folder)}
    found: dict[Path, Path] = {}
    todo: dict[str, Path] = {}  # sha256 -> an image to make it from (the same image twice: one thumbnail)
    waiting: list[tuple[Path, str]] = []
    reused = 0
    for item in items:
        if item.path not in present:
            continue
        digest = item.sha256 or sha256_of(item.path)
        known = next((name for ext in THUMB_EXTENSIONS if (name := f"{digest}{ext}") in existing), None)
        if known is not None:
            found[item.path] = folder / known
            reused += 1
        else:
            todo.setdefault(digest, item.path)
            waiting.append((item.path, digest))
    made = dict(zip(todo, _make_all(list(todo.items()), folder, tick), strict=True))
    for path, digest in waiting:
        thumb = made[digest]
        if thumb is not None:  # else Pillow could not read it: the page shows the image itself
            found[path] = thumb
    failed = sum(thumb is None for thumb in made.values())
    counts = Written(page=folder, images=len(items), thumbs_made=len(made) - failed,
                     thumbs_reused=reused, thumbs_failed=failed)  # fmt: skip
    return found, counts


def _make_all(todo: list[tuple[str, Path]], folder: Path, tick: Tick | None) -> list[Path | None]:
    """Every thumbnail of `todo`, `tick` told of each. An interrupt (Ctrl-C) cancels the ones not begun
    (Executor.map does) and lets the few being made finish whole."""
    total, done, lock = len(todo), 0, threading.Lock()
    if tick is not None:
        tick(0, total)

    def job(entry: tuple[str, Path]) -> Path | None:
        nonlocal done
        thumb = _make(entry[1], folder / entry[0])
        if tick is not None:
            with lock:
                done += 1
                tick(done, total)
        return thumb

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(job, todo))


def _make(source: Path, target: Path) -> Path | None:
    from .thumbnails import make_thumbnail

    try:
        return make_thumbnail(source, target, THUMB_BOX)
    except Exception:  # a file Pillow cannot read (cut short, an odd format): not a reason to stop the page
        return None


# -- the page -----------------------------------------------------------------------------------------


def write_page(items: Sequence[Item], page: Path, *, title: str, tick: Tick | None = None) -> Written:
    """Write the page to `page` (atomically) with its thumbnails in `.imggen-thumbs/` beside it; `tick`
    is told of each thumbnail made."""
    page = page.absolute()
    present = {item.path for item in items if item.path.is_file()}
    thumbs, counts = thumbnails(items, page.parent / THUMBS, present, tick)
    text = render(items, page.parent, thumbs, title, present)
    tmp = page.with_name(f".{page.name}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, page)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; a failed write leaves nothing
    counts.page = page
    return counts


def render(items: Sequence[Item], base: Path, thumbs: dict[Path, Path], title: str, present: set[Path]) -> str:
    """The page's HTML; paths are written relative to `base`, the page's folder; an item whose path is
    not in `present` is shown as missing."""
    models = sorted({item.model for item in items if item.model})
    options = "".join(f'<option value="{_attr(m)}">{_esc(m)}</option>' for m in models)
    url = Urls(base)
    cards = "\n".join(
        _card(number, item, url, thumbs.get(item.path), item.path in present) for number, item in enumerate(items)
    )
    policy = (
        "default-src 'none'; img-src 'self' file: data:; "
        f"style-src '{_digest(STYLE)}'; script-src '{_digest(SCRIPT)}'; base-uri 'none'; form-action 'none'"
    )
    return PAGE.format(
        policy=_attr(policy), title=_esc(title), style=STYLE, script=SCRIPT, options=options, cards=cards,
        count=len(items), plural="" if len(items) == 1 else "s",
    )  # fmt: skip


def _card(number: int, item: Item, url: Urls, thumb: Path | None, present: bool) -> str:
    prompt = item.prompt or item.path.name
    meta = " ".join(f"<span>{_esc(part)}</span>" for part in _meta(item))
    caption = f'<figcaption><p class="prompt">{_esc(prompt)}</p><p class="meta">{meta}</p></figcaption>'
    model = f' data-model="{_attr(item.model)}"'
    if not present:
        gone = f'<div class="gone">missing: {_esc(str(item.path))}</div>'
        return f'<figure class="card missing" id="i{number}"{model}>{gone}{caption}</figure>'
    full = url(item.path)
    small = url(thumb) if thumb is not None else full
    image = f'<img src="{small}" alt="{_attr(prompt)}" loading="lazy" decoding="async">'
    return f'<figure class="card" id="i{number}"{model}><a href="{full}">{image}</a>{caption}</figure>'


def _meta(item: Item) -> Iterator[str]:
    if item.model:
        yield item.model
    if item.seed is not None:
        yield f"seed {item.seed}"
    if item.size:
        yield item.size
    if item.cost is not None:
        yield f"${item.cost:.3f}"
    if item.created is not None:
        with_zone = dt.datetime.fromtimestamp(item.created).astimezone()
        yield with_zone.strftime("%Y-%m-%d %H:%M")


class Urls:
    """Relative URLs from the page's folder: each folder's relative path worked out once (2,000 images
    in one folder are one relpath), each name %-quoted, so a name with `"`, `#`, `?` or `<` is a link to
    that file, never markup or a fragment."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.folders: dict[Path, str | None] = {}

    def __call__(self, path: Path) -> str:
        folder = path.parent
        if folder not in self.folders:
            try:
                relative = Path(os.path.relpath(folder.absolute(), self.base)).as_posix()
                self.folders[folder] = "" if relative == "." else quote(relative, safe="/") + "/"
            except ValueError:  # another drive (Windows): an absolute file: URL
                self.folders[folder] = None
        prefix = self.folders[folder]
        if prefix is None:
            return _attr(path.absolute().as_uri())
        return _attr(prefix + quote(path.name, safe=""))


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


STYLE = """
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --card: #fff; --dim: #6e6e73; --line: #d2d2d7; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #f5f5f7; --bg: #161617; --card: #1f1f21; --dim: #a1a1a6; --line: #3a3a3c; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center;
  padding: 10px 16px; background: var(--bg); border-bottom: 1px solid var(--line); }
h1 { font-size: 16px; margin: 0 8px 0 0; }
input, select { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--card); color: var(--fg); }
input { flex: 1 1 220px; max-width: 420px; }
#count { color: var(--dim); }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; padding: 16px; }
.card { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.card[hidden] { display: none; }
.card a { display: block; background: #0001; }
.card a:focus-visible { outline: 3px solid #0a84ff; outline-offset: -3px; }
.card img, .gone { display: block; width: 100%; aspect-ratio: 1; object-fit: contain; }
.gone { display: grid; place-items: center; padding: 8px; color: var(--dim); overflow-wrap: anywhere; }
figcaption { padding: 6px 8px 8px; }
.prompt { margin: 0 0 4px; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden;
  overflow-wrap: anywhere; }
.meta { margin: 0; color: var(--dim); font-size: 12px; }
.meta span { white-space: nowrap; }
.meta span:not(:last-child)::after { content: "\\00a0\\00b7"; }  /* a line breaks after a dot, not before */
#viewer { position: fixed; inset: 0; z-index: 2; display: grid; grid-template: 1fr auto / 48px 1fr 48px;
  align-items: center; background: #000e; color: #f5f5f7; }
#viewer[hidden] { display: none; }
#full { grid-area: 1 / 2; max-width: 100%; max-height: calc(100vh - 90px); margin: auto; object-fit: contain; }
#caption { grid-area: 2 / 1 / 3 / 4; margin: 0; padding: 8px 16px 16px; text-align: center; overflow-wrap: anywhere; }
#viewer button { font: 32px/1 system-ui, sans-serif; color: inherit; background: none; border: 0; cursor: pointer;
  height: 100%; }
#close { position: absolute; top: 8px; right: 12px; height: auto !important; }
#empty { padding: 16px; color: var(--dim); }
"""

SCRIPT = """
(() => {
  const cards = Array.from(document.querySelectorAll(".card"));
  const texts = cards.map((card) => card.textContent.toLowerCase());
  const query = document.getElementById("q"), model = document.getElementById("model");
  const count = document.getElementById("count"), empty = document.getElementById("empty");
  const viewer = document.getElementById("viewer"), full = document.getElementById("full");
  const caption = document.getElementById("caption");
  let shown = cards, at = -1;

  function filter() {
    const words = query.value.toLowerCase().split(/\\s+/).filter(Boolean);
    shown = cards.filter((card, i) => {
      const keep = (!model.value || card.dataset.model === model.value) && words.every((w) => texts[i].includes(w));
      card.hidden = !keep;
      return keep;
    });
    count.textContent = shown.length + " of " + cards.length;
    empty.hidden = shown.length > 0;
  }

  function open(index) {
    const links = shown.filter((card) => card.querySelector("a"));
    if (!links.length) return;
    at = (index + links.length) % links.length;
    const card = links[at];
    full.src = card.querySelector("a").getAttribute("href");
    full.alt = card.querySelector(".prompt").textContent;
    const parts = Array.from(card.querySelectorAll(".meta span"), (span) => span.textContent);
    caption.textContent = full.alt + (parts.length ? " \\u2014 " + parts.join(" \\u00b7 ") : "");
    viewer.dataset.card = card.id;
    viewer.hidden = false;
    document.getElementById("close").focus();
  }

  function close() {
    if (viewer.hidden) return;
    viewer.hidden = true;
    full.removeAttribute("src");
    const card = document.getElementById(viewer.dataset.card);
    if (card) card.querySelector("a").focus();
  }

  function step(by) {
    const links = shown.filter((card) => card.querySelector("a"));
    open(links.indexOf(document.getElementById(viewer.dataset.card)) + by);
  }

  document.getElementById("grid").addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    const links = shown.filter((card) => card.querySelector("a"));
    open(links.indexOf(link.closest(".card")));
  });
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  document.getElementById("close").addEventListener("click", close);
  viewer.addEventListener("click", (event) => { if (event.target === viewer) close(); });
  document.addEventListener("keydown", (event) => {
    if (viewer.hidden) {
      if (event.key === "/" && document.activeElement !== query) { event.preventDefault(); query.focus(); }
      return;
    }
    if (event.key === "Escape") close();
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "ArrowLeft") step(-1);
    else return;
    event.preventDefault();
  });
  query.addEventListener("input", filter);
  model.addEventListener("change", filter);
  filter();
})();
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="generator" content="imggen">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<input id="q" type="search" placeholder="Filter: prompt or model (press /)" aria-label="Filter by prompt or model">
<select id="model" aria-label="Model"><option value="">All models</option>{options}</select>
<span id="count">{count} image{plural}</span>
</header>
<main id="grid">
{cards}
</main>
<p id="empty" hidden>No image matches.</p>
<div id="viewer" hidden role="dialog" aria-modal="true" aria-label="Image">
<button id="prev" aria-label="Previous image (left arrow)">&#8249;</button>
<img id="full" alt="">
<button id="next" aria-label="Next image (right arrow)">&#8250;</button>
<p id="caption"></p>
<button id="close" aria-label="Close (Esc)">&#215;</button>
</div>
<script>{script}</script>
</body>
</html>
"""
