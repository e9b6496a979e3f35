"""The offline placeholder provider: real PNGs, deterministic for a prompt and seed."""

from __future__ import annotations

import struct
from pathlib import Path

from conftest import run_cli


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_readme_quick_start_works_offline(tmp_path: Path) -> None:
    result = run_cli("generate", "a cute baby sea otter", "-m", "placeholder", "-o", "out/")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 1 and result.lines[0].startswith("out/")
    assert png_size((tmp_path / result.lines[0]).read_bytes()) == (1024, 1024)


def test_size_and_n_are_honoured(tmp_path: Path) -> None:
    result = run_cli("generate", "otter", "-m", "placeholder", "-s", "320x200", "-n", "3", "-o", "o")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 3
    assert {png_size((tmp_path / p).read_bytes()) for p in result.lines} == {(320, 200)}


def test_same_prompt_and_seed_draw_the_same_image(tmp_path: Path) -> None:
    args = ("generate", "otter", "-m", "placeholder", "-s", "64x64", "--seed", "7")
    first = run_cli(*args, "-o", "a")
    second = run_cli(*args, "-o", "b")
    other = run_cli("generate", "otter", "-m", "placeholder", "-s", "64x64", "--seed", "8", "-o", "c")
    data = [(tmp_path / r.lines[0]).read_bytes() for r in (first, second, other)]
    assert data[0] == data[1] != data[2]


def test_seed_is_reported_per_image() -> None:
    result = run_cli("generate", "otter", "-m", "placeholder", "-s", "32x32", "-n", "2", "--seed", "5", "--json")
    assert sorted(line["seed"] for line in result.json_lines()) == [5, 6]
    assert all(line["cost_usd"] == 0 for line in result.json_lines())
