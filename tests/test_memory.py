"""Memory stays flat whatever the image size: base64 images stream to disk as the response arrives."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from conftest import openai_env
from fakeserver import TINY_PNG, FakeProvider
from imggen.spill import LIMIT, SpillingParser, lookup

MIB = 1 << 20


def big_png(size: int) -> bytes:
    noise = random.Random(7).randbytes(size - len(TINY_PNG))
    return TINY_PNG[:16] + noise + TINY_PNG[16:]


def test_peak_memory_for_four_8_mib_images_stays_bounded(fake: FakeProvider, tmp_path: Path) -> None:
    fake.image_bytes = big_png(8 * MIB)
    script = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call([sys.executable, '-m', 'imggen', *sys.argv[1:]])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    args = ["generate", "otter", "-m", "gpt-image-1", "-n", "4", "-o", "out", "--quiet"]
    env = {**os.environ, **openai_env(fake)}
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stdout.strip().splitlines()[-1]) / 1024
    images = sorted((tmp_path / "out").glob("*.png"))
    assert len(images) == 4 and all(p.read_bytes() == fake.image_bytes for p in images)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".imggen-") and p.is_dir()] == []
    assert peak_mib < 64, f"peak RSS {peak_mib:.0f} MiB"  # the body alone is 43 MiB of base64


def parse_in_chunks(document: bytes, tmp_path: Path, step: int) -> tuple[object, SpillingParser]:
    parser = SpillingParser(tmp_path)
    for start in range(0, len(document), step):
        parser.feed(document[start : start + step])
    return json.loads(bytes(parser.out)), parser


def test_long_strings_spill_and_short_ones_survive_any_chunking(tmp_path: Path) -> None:
    image = random.Random(1).randbytes(3 * LIMIT)
    b64 = base64.b64encode(image).decode()
    escaped = json.dumps({"b64_json": b64}).replace("/", "\\/")  # some servers escape the slash
    short = {"revised_prompt": 'a "quoted" \\ back\\slash and \u00e9', "n": 2}
    document = ('{"data": [' + escaped + "], " + json.dumps(short)[1:]).encode()
    for step in (1, 7, 4096, len(document)):
        payload, _ = parse_in_chunks(document, tmp_path, step)
        assert isinstance(payload, dict)
        assert payload["revised_prompt"] == short["revised_prompt"] and payload["n"] == 2
        spill = lookup(payload["data"][0]["b64_json"])
        assert spill is not None and spill.error is None
        assert spill.path.read_bytes() == image


def test_a_long_string_that_is_not_base64_is_marked(tmp_path: Path) -> None:
    document = json.dumps({"b64_json": "not base64! " * LIMIT}).encode()
    payload, _ = parse_in_chunks(document, tmp_path, 65536)
    assert isinstance(payload, dict)
    spill = lookup(payload["b64_json"])
    assert spill is not None and spill.error
