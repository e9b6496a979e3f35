"""`imggen edit` and `imggen.edit()` on the offline placeholder: inputs read and recognised, checked
before anything is sent, batches with their own images, the manifest and metadata telling inputs
apart. Provider wire formats are in test_edit_<provider>.py and tests/contract/."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest

import imggen
from conftest import run_cli
from imggen.errors import UsageError
from imggen.inputs import load, probe


def png(width: int, height: int, *, alpha: bool = False, shade: int = 90, transparent: bool = False) -> bytes:
    """A real PNG: RGB, or RGBA (transparent everywhere with `transparent`)."""
    pixel = bytes([shade, 200 - shade // 2, 40]) + (bytes([0 if transparent else 255]) if alpha else b"")
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg_head(width: int, height: int) -> bytes:
    """The start of a baseline JPEG: SOI, an APP0 segment, then the SOF0 frame header with the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp_vp8x(width: int, height: int, alpha: bool) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + bytes([0x10 if alpha else 0, 0, 0, 0])
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def test_probe_reads_format_size_and_alpha_from_the_header() -> None:
    assert probe(png(7, 5)) == ("png", 7, 5, False)
    assert probe(png(7, 5, alpha=True)) == ("png", 7, 5, True)
    assert probe(jpeg_head(640, 480)) == ("jpeg", 640, 480, False)
    assert probe(webp_vp8x(300, 200, True)) == ("webp", 300, 200, True)
    assert probe(b"GIF89a" + struct.pack("<HH", 12, 34) + b"\x00" * 8) == ("gif", 12, 34, False)
    assert probe(b"%PDF-1.7") is None
    assert probe(png(7, 5)[:20]) is None  # cut short


def test_edit_returns_the_input_visibly_changed_and_deterministic(tmp_path: Path) -> None:
    source = tmp_path / "otter.png"
    source.write_bytes(png(48, 32))
    first = imggen.edit("add a red hat", source, model="placeholder")
    again = imggen.edit("add a red hat", source.read_bytes(), model="placeholder")
    other = imggen.edit("add a blue hat", io.BytesIO(source.read_bytes()), model="placeholder")
    out = first.data[0].image_bytes()
    assert probe(out) == ("png", 48, 32, False) and first.data[0].size == "48x32"
    assert out != source.read_bytes()  # changed
    assert out == again.data[0].image_bytes()  # deterministic
    assert out != other.data[0].image_bytes()  # the prompt shows
    assert first.parameters["images"][0]["sha256"] == load(source, "x").sha256


def test_a_mask_changes_only_where_it_is_transparent(tmp_path: Path) -> None:
    from imggen.providers.placeholder_png import decode_png

    image = png(32, 32)
    opaque = imggen.edit("x", image, png(32, 32, alpha=True), model="placeholder", seed=1)
    clear = imggen.edit("x", image, png(32, 32, alpha=True, transparent=True), model="placeholder", seed=1)
    inside = lambda response: decode_png(response.data[0].image_bytes())[3][16][16 * 3 : 16 * 3 + 3]  # noqa: E731
    assert inside(opaque) == bytes(png_pixel := [90, 155, 40])  # kept
    assert inside(clear) == bytes(255 - v for v in png_pixel)  # changed


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (png(16, 16), "must be a PNG with an alpha channel"),
        (png(8, 16, alpha=True), "the mask mask is 8x16; the image images is 16x16"),
    ],
)
def test_a_bad_mask_is_refused_before_sending(mask: bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        imggen.edit("x", png(16, 16), mask, model="placeholder")


def test_inputs_are_checked_against_the_model() -> None:
    with pytest.raises(UsageError, match="takes at most 16 input images; 17 given"):
        imggen.edit("x", [png(4, 4)] * 17, model="placeholder")
    with pytest.raises(UsageError, match="is JPEG; placeholder/default takes PNG"):
        imggen.edit("x", jpeg_head(4, 4), model="placeholder")
    with pytest.raises(UsageError, match="not a PNG, JPEG, WebP or GIF"):
        imggen.edit("x", b"plain text", model="placeholder")
    with pytest.raises(UsageError, match="--mask or --mask-prompt, not both"):
        imggen.edit("x", png(4, 4), png(4, 4, alpha=True), model="placeholder", mask_prompt="the sky")
    with pytest.raises(UsageError, match="binary mode"):
        imggen.edit("x", io.StringIO("text"), model="placeholder")


def test_a_model_that_cannot_edit_names_those_that_can(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(16, 16))
    result = run_cli("edit", "x", str(tmp_path / "a.png"), "-m", "bedrock/stability.sd3-5-large-v1:0x", "--dry-run")
    assert result.code == 2 and "cannot edit images" in result.stderr and "imggen models --task edit" in result.stderr
    listed = run_cli("models", "--task", "edit").stdout
    assert "placeholder/default" in listed and all("edit" in line.split("\t")[-1] for line in listed.splitlines())
    assert run_cli("models", "--task", "paint").code == 2


def test_edit_saves_from_files_stdin_and_a_prompts_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(png(24, 24))
    lines = [{"prompt": "hat", "image": "a.png"}, {"prompt": "scarf", "images": ["a.png", "a.png"], "n": 2}]
    (tmp_path / "in" / "edits.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch = run_cli("edit", "--prompts-file", str(tmp_path / "in" / "edits.jsonl"), "-m", "placeholder", "-o",
                    str(tmp_path / "out"), "--json")  # fmt: skip
    assert batch.code == 0, batch.stderr
    assert [json.loads(line)["prompt"] for line in batch.stdout.splitlines()] == ["hat", "scarf", "scarf"]
    piped = run_cli("edit", "a hat", "-", "-m", "placeholder", "-o", str(tmp_path / "piped"), "--metadata",
                    input=png(24, 24))  # fmt: skip
    assert piped.code == 0, piped.stderr
    sidecar = json.loads(next((tmp_path / "piped").glob("*.json")).read_text())
    assert sidecar["parameters"]["images"][0]["name"] == "stdin"
    assert sidecar["parameters"]["images"][0]["sha256"] == load(png(24, 24), "x").sha256


def test_a_line_without_an_image_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text('{"prompt": "hat", "image": "a.png"}\n{"prompt": "scarf"}\n')
    (tmp_path / "a.png").write_bytes(png(8, 8))
    result = run_cli("edit", "--prompts-file", str(tmp_path / "e.jsonl"), "-m", "placeholder", "-o", str(tmp_path))
    assert result.code == 2 and "e.jsonl line 2: no input image to edit" in result.stderr
    assert not list(tmp_path.glob("*-hat-*"))  # nothing made: the whole batch is checked first
    missing = run_cli("edit", "x", str(tmp_path / "nope.png"), "-m", "placeholder")
    assert missing.code == 2 and "cannot read image" in missing.stderr and "Traceback" not in missing.stderr


def test_resume_tells_edits_of_different_images_apart(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(8, 8, shade=10))
    (tmp_path / "b.png").write_bytes(png(8, 8, shade=200))
    out = str(tmp_path / "out")
    for name in ("a.png", "b.png"):
        result = run_cli("edit", "hat", str(tmp_path / name), "-m", "placeholder", "-o", out, "--resume")
        assert result.code == 0 and "skipped" not in result.stderr, result.stderr
    again = run_cli("edit", "hat", str(tmp_path / "a.png"), "-m", "placeholder", "-o", out, "--resume")
    assert "1 skipped" in again.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_a_file_changed_after_the_check_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png(8, 8))
    image = load(path, "a.png")
    path.write_bytes(png(8, 8, shade=3))
    with pytest.raises(UsageError, match="changed after it was checked"):
        image.read()


def test_dry_run_describes_the_images_and_sends_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(20, 10))
    result = run_cli("edit", "hat", str(tmp_path / "a.png"), "-m", "placeholder", "--dry-run", "--json")
    assert result.code == 0, result.stderr
    assert "<a.png, image/png, 20x10," in result.stdout and not list(tmp_path.glob("*-hat-*"))


def test_aedit_in_an_event_loop() -> None:
    import asyncio

    response = asyncio.run(imggen.aedit("hat", png(16, 16), model="placeholder", n=2))
    assert [image.index for image in response.data] == [1, 2] and response.data[0].size == "16x16"


def test_run_takes_edit_jobs_with_their_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(png(12, 12))
    jobs = [{"prompt": "hat", "image": "a.png"}, {"prompt": "two", "images": ["a.png", "a.png"], "n": 2}]
    results = list(imggen.run(jobs, model="placeholder", output_dir="out"))
    assert sorted((r.prompt, r.index) for r in results if r.ok) == [("hat", 1), ("two", 1), ("two", 2)]
