"""`imggen gallery DIR`: the page's content from the manifest and sidecars, escaping, links, the
thumbnail cache; imggen.gallery.write_page for any list of items (the log's page reuses it). The page
in a real browser: tests/test_gallery_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import run_cli
from ptyhelp import at_terminal

HOSTILE = "an otter </figcaption><script>alert(1)</script><img src=x onerror=alert(2)> \"quoted\" & 'single'"


class Page(HTMLParser):
    """The page as a browser parses it: its elements, attributes and text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.texts.append(data)

    def all(self, tag: str, **where: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(where[k] in a.get(k, "").split() for k in where)]


def generate(*args: str) -> list[str]:
    result = run_cli("generate", *args, "-m", "placeholder", "-s", "96x64", "--metadata")
    assert result.code == 0, result.stderr
    return result.lines


def gallery(*args: str) -> tuple[Path, str]:
    result = run_cli("gallery", *args)
    assert result.code == 0, result.stderr
    page = Path(result.stdout.strip())
    return page, result.stderr


def test_the_page_shows_each_image_with_what_its_manifest_and_sidecar_say(tmp_path: Path) -> None:
    generate("a sea otter reading a newspaper", "-n", "2", "-o", "shots", "--seed", "41")
    generate("a heron at dawn", "-o", "shots", "--seed", "7")
    (tmp_path / "shots" / ".hidden.png").write_bytes((tmp_path / "shots").glob("*.png").__next__().read_bytes())
    page, summary = gallery("shots")
    assert page == Path("shots/gallery.html") and summary == "3 images · 3 thumbnails made · 0 reused\n"
    parsed = Page(page.read_text())
    cards = parsed.all("figure", **{"class": "card"})
    assert len(cards) == 3 and {c["data-model"] for c in cards} == {"placeholder/default"}
    text = " ".join(parsed.texts)
    assert text.count("a sea otter reading a newspaper") == 2 and text.count("a heron at dawn") == 1
    for shown in ("seed 41", "seed 42", "seed 7", "96x64", "$0.000", time.strftime("%Y-%m-%d")):
        assert shown in text, shown
    links = [a["href"] for a in parsed.all("a")]
    assert sorted(links) == sorted(p.name for p in (tmp_path / "shots").glob("[!.]*.png"))
    thumbs = [img["src"] for img in parsed.all("img") if img.get("loading") == "lazy"]
    assert len(thumbs) == 3 and all(src.startswith(".imggen-thumbs/") and src.endswith(".jpg") for src in thumbs)
    manifest = [json.loads(line) for line in (tmp_path / "shots" / ".imggen-manifest.jsonl").read_text().splitlines()]
    assert {Path(src).stem for src in thumbs} == {line["sha256"] for line in manifest}  # named by the image's hash


def test_a_hostile_prompt_is_text_and_nothing_else(tmp_path: Path) -> None:
    generate(HOSTILE, "-o", "shots")
    page, _ = gallery("shots")
    text = page.read_text()
    parsed = Page(text)
    assert len(parsed.scripts) == 1 and "alert" not in parsed.scripts[0]  # the page's own script, alone
    assert [img.get("onerror") for img in parsed.all("img")] == [None, None]  # the thumbnail and the viewer's
    assert HOSTILE in "".join(parsed.texts)  # shown as the text it is
    assert "<script>alert" not in text and "<img src=x" not in text
    (img,) = [a for a in parsed.all("img") if a.get("loading")]
    assert img["alt"] == HOSTILE


def test_the_policy_allows_only_the_pages_own_script_and_style(tmp_path: Path) -> None:
    generate("a newt", "-o", "shots")
    page, _ = gallery("shots")
    parsed = Page(page.read_text())
    (meta,) = parsed.all("meta", **{"http-equiv": "Content-Security-Policy"})
    policy = dict(part.strip().split(" ", 1) for part in meta["content"].split(";"))
    assert policy["default-src"] == "'none'" and "http" not in meta["content"]  # nothing from a network

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert policy["script-src"] == digest(parsed.scripts[0]) and policy["style-src"] == digest(parsed.styles[0])


def test_a_page_elsewhere_links_to_the_images_where_they_are(tmp_path: Path) -> None:
    generate("a fox", "-o", "shots")
    odd = tmp_path / "shots" / 'odd "name" #1 <b>?.png'
    odd.write_bytes(next((tmp_path / "shots").glob("*.png")).read_bytes())  # copied in: no manifest line
    (tmp_path / "site").mkdir()
    page, _ = gallery("shots", "-o", "site/page.html", "--title", "<Fox> & co")
    parsed = Page(page.read_text())
    for link in [a["href"] for a in parsed.all("a")] + [i["src"] for i in parsed.all("img") if i.get("loading")]:
        assert "#" not in link and "?" not in link and '"' not in link
        assert (tmp_path / "site" / unquote(link)).is_file(), link
    assert (tmp_path / "site" / ".imggen-thumbs").is_dir() and not (tmp_path / "shots" / ".imggen-thumbs").exists()
    assert "<Fox> & co" in parsed.texts and 'odd "name" #1 <b>?.png' in " ".join(parsed.texts)  # named by its file


def test_thumbnails_are_made_once_and_reused(tmp_path: Path) -> None:
    generate("a sea otter", "-n", "3", "-o", "shots")
    gallery("shots")
    thumbs = sorted((tmp_path / "shots" / ".imggen-thumbs").iterdir())
    made = {t: t.stat().st_mtime_ns for t in thumbs}
    _, summary = gallery("shots")
    assert summary == "3 images · 0 thumbnails made · 3 reused\n"
    assert {t: t.stat().st_mtime_ns for t in thumbs} == made
    generate("a sea otter", "-n", "1", "-o", "shots", "--seed", "99")
    _, summary = gallery("shots")
    assert summary == "4 images · 1 thumbnail made · 3 reused\n"
    assert all(os.stat(t).st_mode & 0o044 == 0o044 for t in thumbs)  # readable as the images are


def test_an_image_pillow_cannot_read_is_shown_as_it_is(tmp_path: Path) -> None:
    generate("a sea otter", "-o", "shots")
    cut = tmp_path / "shots" / "cut.png"
    cut.write_bytes(next((tmp_path / "shots").glob("*.png")).read_bytes()[:40])  # a PNG cut short
    page, summary = gallery("shots")
    assert "1 unreadable (shown full size)" in summary
    assert any(img["src"] == "cut.png" for img in Page(page.read_text()).all("img"))


def test_thumbnails_survive_the_next_runs_sweep_of_leftovers(tmp_path: Path) -> None:
    generate("a sea otter", "-o", "shots")
    gallery("shots")
    thumbs = tmp_path / "shots" / ".imggen-thumbs"
    old = time.time() - 3600
    os.utime(thumbs, (old, old))  # as old as a killed run's folder
    generate("a heron", "-o", "shots")
    assert thumbs.is_dir() and len(list(thumbs.iterdir())) == 1


def test_what_the_gallery_refuses(tmp_path: Path) -> None:
    missing = run_cli("gallery", "nowhere")
    assert missing.code == 2 and "nowhere is not a folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("gallery", "empty")
    assert empty.code == 2 and "no images in empty" in empty.stderr
    generate("a newt", "-o", "shots")
    folder = run_cli("gallery", "shots", "-o", "shots")
    assert folder.code == 2 and "is a folder" in folder.stderr


def test_write_page_takes_any_items_and_shows_a_missing_file_as_missing(tmp_path: Path) -> None:
    from imggen.gallery import Item, write_page

    image = Path(generate("a newt", "-o", "shots")[0]).absolute()
    items = [
        Item(path=image, prompt="a newt", model="placeholder/default", seed=3, size="96x64", cost=0.04,
             created=1_700_000_000),
        Item(path=tmp_path / "gone.png", prompt="a lost heron", model="openai/gpt-image-2"),
    ]  # fmt: skip
    written = write_page(items, tmp_path / "log.html", title="imggen log")
    assert (written.images, written.thumbs_made) == (2, 1)
    parsed = Page((tmp_path / "log.html").read_text())
    text = " ".join(parsed.texts)
    assert "$0.040" in text and "2023-11-1" in text and f"missing: {tmp_path / 'gone.png'}" in text
    assert [a["href"] for a in parsed.all("a")] == ["shots/" + image.name]
    options = [o["value"] for o in parsed.all("option")]
    assert options == ["", "openai/gpt-image-2", "placeholder/default"]
    assert re.search(r'class="card missing"', (tmp_path / "log.html").read_text())


def test_gallery_open_opens_the_page(tmp_path: Path) -> None:
    from test_seeing import fake_viewer, opened

    env, log = fake_viewer(tmp_path)
    generate("a newt", "-o", "shots")
    result = run_cli("gallery", "shots", "--open", env=env)
    assert result.code == 0, result.stderr
    assert [path for path, _ in opened(log)] == [str(tmp_path / "shots" / "gallery.html")]


def test_a_terminal_sees_the_thumbnails_being_made_and_a_pipe_does_not(tmp_path: Path) -> None:
    generate("a sea otter", "-n", "3", "-o", "shots")
    shown = at_terminal("gallery", "shots", streams=("stderr",))
    assert shown.code == 0, shown.screen
    assert "making thumbnails" in shown.screen and "3/3" in shown.screen
    assert shown.stdout == "shots/gallery.html\n"  # the page's path alone, for a script
    assert shown.screen.rstrip().endswith("3 images · 3 thumbnails made · 0 reused")  # the bar is gone
    again = run_cli("gallery", "shots", "-o", "again.html")
    assert "making" not in again.stderr and again.stderr == "3 images · 3 thumbnails made · 0 reused\n"


def big_pictures(folder: Path, count: int) -> None:
    """`count` distinct 3000x3000 PNGs (some 60 ms each to decode): a folder whose
    thumbnails take long enough to be interrupted half-way. One picture, a text chunk telling each apart."""
    import struct
    import zlib

    from PIL import Image

    folder.mkdir()
    picture = Image.radial_gradient("L").resize((3000, 3000)).convert("RGB")
    with open(folder / "base.png", "wb") as out:
        picture.save(out, "PNG", compress_level=1)
    data = (folder / "base.png").read_bytes()
    for number in range(count):
        chunk = b"tEXt" + b"Comment\0" + str(number).encode()
        packed = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        (folder / f"big-{number}.png").write_bytes(data[:33] + packed + data[33:])


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_keeps_the_thumbnails_made_and_writes_no_page(tmp_path: Path, sig: int, code: int) -> None:
    big_pictures(tmp_path / "big", 60)
    thumbs = tmp_path / "big" / ".imggen-thumbs"
    proc = subprocess.Popen([sys.executable, "-m", "imggen", "gallery", "big"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while not (thumbs.is_dir() and any(t.suffix == ".jpg" for t in thumbs.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no thumbnail was made"
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err.decode()
    made = sorted(thumbs.iterdir())
    assert 0 < len(made) < 61 and all(t.suffix == ".jpg" for t in made)  # whole thumbnails only, no .part
    plural = "s" if len(made) != 1 else ""
    said = f"interrupted: {len(made)} thumbnail{plural} made and kept for the next run; no page written\n"
    assert err.decode() == said
    assert out == b"" and not (tmp_path / "big" / "gallery.html").exists()
    finished = run_cli("gallery", "big")
    assert finished.code == 0, finished.stderr
    assert finished.stderr == f"61 images · {61 - len(made)} thumbnails made · {len(made)} reused\n"
