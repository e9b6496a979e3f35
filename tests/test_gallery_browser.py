"""The gallery page in a real browser: Playwright drives the operating system's Chromium (Debian's
`chromium` package, which .ci/run installs; Playwright's own browser download is never used) over a
folder that `imggen generate` and `imggen gallery` made. The page loads without a console error, shows
every thumbnail, the filter narrows them, a click opens the full image, the arrow keys move and Esc closes.

`GALLERY_SCREENSHOT=docs/gallery.png` also writes the README's screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from systemchromium import ARGS, chromium

PROMPTS = {
    "a sea otter floating on its back, holding a smooth stone, watercolour": 2,
    "a lighthouse at dusk over a calm sea, 35mm film photo": 2,
    "a red fox curled up asleep in fresh snow, soft morning light": 1,
}
SKETCHES = ("a grey heron standing in reeds, ink sketch", "a heron in flight over a marsh, ink sketch")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium()
    if path is None:
        pytest.skip("Chromium not found: apt-get install chromium (.ci/run and the README's test command do)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield launched
        launched.close()


def make_folder(tmp_path: Path) -> Path:
    """Seven small images: five of placeholder/default, two of a second model (an overlay entry)."""
    added = run_cli("models", "add", "placeholder/sketch", "--like", "placeholder/default")
    assert added.code == 0, added.stderr
    for prompt, n in PROMPTS.items():
        made = run_cli(
            "generate", prompt, "-n", str(n), "-m", "placeholder", "-s", "160x120", "-o", "shots", "--metadata"
        )
        assert made.code == 0, made.stderr
    for prompt in SKETCHES:
        made = run_cli("generate", prompt, "-m", "placeholder/sketch", "-s", "120x160", "-o", "shots", "--metadata")
        assert made.code == 0, made.stderr
    page = run_cli("gallery", "shots", "--title", "Otters, lighthouses and herons")
    assert page.code == 0, page.stderr
    return tmp_path / page.stdout.strip()


def open_page(browser: Any, page_file: Path) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: None if aborted(r) else problems.append(f"request failed: {r.url}"))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def aborted(request: Any) -> bool:
    """A load the page itself cancelled: an arrow key pressed before the full image had arrived moves the
    viewer on, and Chromium drops the old load. A missing or unreadable file fails otherwise."""
    return bool(request.failure == "net::ERR_ABORTED")


def visible_cards(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        ".card:not([hidden])", "cards => cards.map(c => c.querySelector('.prompt').textContent)"
    )


def test_the_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    page, problems = open_page(browser, make_folder(tmp_path))
    assert len(visible_cards(page)) == 7 and page.text_content("#count") == "7 of 7"
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.complete)")
    widths = page.eval_on_selector_all(".card img", "images => images.map(i => i.naturalWidth)")
    assert widths == [120, 120, 160, 160, 160, 160, 160]  # the thumbnails, loaded (newest first: the sketches)

    page.fill("#q", "heron")
    assert sorted(visible_cards(page)) == sorted(SKETCHES) and page.text_content("#count") == "2 of 7"
    page.fill("#q", "sea calm")  # every word, anywhere in the card
    assert visible_cards(page) == ["a lighthouse at dusk over a calm sea, 35mm film photo"] * 2
    page.fill("#q", "")
    page.select_option("#model", "placeholder/sketch")
    assert sorted(visible_cards(page)) == sorted(SKETCHES)
    page.fill("#q", "flight")
    assert visible_cards(page) == [SKETCHES[1]]
    page.fill("#q", "no such thing")
    assert visible_cards(page) == [] and page.is_visible("#empty")
    page.fill("#q", "")
    page.select_option("#model", "")

    cards = page.eval_on_selector_all(".card a", "links => links.map(a => a.getAttribute('href'))")
    page.click(".card >> nth=2")
    assert page.is_visible("#viewer")
    page.wait_for_function("() => document.getElementById('full').complete")
    assert page.get_attribute("#full", "src") == cards[2]
    assert page.eval_on_selector("#full", "i => i.naturalWidth") == 160  # the image itself, not its thumbnail
    caption = page.text_content("#caption")
    assert (
        caption.startswith(page.get_attribute("#full", "alt") + " — placeholder/default · seed ")
        and "160x120" in caption
    )
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#full", "src") == cards[3]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#full", "src") == cards[1]
    page.keyboard.press("Escape")
    assert not page.is_visible("#viewer")
    assert page.evaluate("document.activeElement.getAttribute('href')") == cards[1]  # back where it was

    page.select_option("#model", "placeholder/sketch")  # the arrows move among what the filter shows
    page.click(".card:not([hidden]) >> nth=1")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#full", "src") == cards[0]  # round to the first sketch
    page.wait_for_function("() => document.getElementById('full').complete")
    assert page.eval_on_selector("#full", "i => i.naturalWidth") == 120
    assert problems == []
    page.close()


def test_the_logs_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    """`imggen logs --html`: the same page of the log's entries, loaded without a console error."""
    make_folder(tmp_path)
    made = run_cli("logs", "--html", "-q", "otter", "-o", "otters.html")
    assert made.code == 0, made.stderr
    page, problems = open_page(browser, tmp_path / "otters.html")
    assert page.text_content("#count") == "2 of 2" and len(visible_cards(page)) == 2
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.naturalWidth > 0)")
    assert problems == []
    page.close()


def test_screenshot_for_the_readme(browser: Any, tmp_path: Path) -> None:
    page, problems = open_page(browser, make_folder(tmp_path))
    page.set_viewport_size({"width": 900, "height": 560})
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.complete)")
    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and problems == []
    target = os.environ.get("GALLERY_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
    page.close()


def test_two_thousand_images_load_lazily_and_filter_at_once(browser: Any, tmp_path: Path) -> None:
    """2,000 cards, each its own small image and thumbnail: the browser loads only the thumbnails near
    the screen (loading="lazy"), and the filter finds the one card asked for (how long it takes is measured
    by tests/bench/gallery.py, not here: a timed test flakes on a busy machine)."""
    from PIL import Image

    from imggen.gallery import Item, write_page

    items = []
    for i in range(2000):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (i % 256, i // 256, 90)).save(path)
        items.append(Item(path=path, prompt=f"an otter, number {i}", model="placeholder/default"))
    write_page(items, tmp_path / "many.html", title="2,000")
    page, problems = open_page(browser, tmp_path / "many.html")
    assert page.eval_on_selector_all(".card", "cards => cards.length") == 2000
    page.wait_for_function("() => document.querySelector('.card img').complete")
    drawn = page.evaluate("[...document.querySelectorAll('.card img')].filter(i => i.complete).length")
    assert 0 < drawn < 300, drawn  # the screens near the top, not 2,000
    page.fill("#q", "number 1999")
    assert page.text_content("#count") == "1 of 2000" and visible_cards(page) == ["an otter, number 1999"]
    assert problems == []
    page.close()
