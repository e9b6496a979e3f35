"""Files and profiles (issue 11, items 15-19): -o FILE, -v2 names, one seed per image, profiles that
know their provider, keys in the keyring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakeserver import FakeProvider

NOVA = "bedrock/amazon.nova-canvas-v1:0"


def bedrock(fake: FakeProvider, *args: str) -> Any:
    env = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-west-2"}  # fmt: skip
    result = run_cli("generate", *args, env=env)
    assert AWS_SECRET not in result.everything()
    return result


def invoke_bodies(fake: FakeProvider) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path.endswith("/invoke")]


def visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# --- 17: --seed S with several images: image k gets S+k-1, one request each -------------------------


def test_a_seed_with_several_images_sends_each_its_own_seed(fake: FakeProvider, tmp_path: Path) -> None:
    result = bedrock(fake, "otter", "-m", NOVA, "-n", "3", "--seed", "10", "--json", "--metadata", "-o", "out",
                     "--name", "otter-{index}-s{seed}.{ext}")  # fmt: skip
    assert result.code == 0, result.stderr
    bodies = invoke_bodies(fake)
    sent = sorted((b["imageGenerationConfig"]["seed"], b["imageGenerationConfig"]["numberOfImages"]) for b in bodies)
    assert sent == [(10, 1), (11, 1), (12, 1)]
    lines = sorted(result.json_lines(), key=lambda line: line["index"])
    assert [(line["index"], line["seed"]) for line in lines] == [(1, 10), (2, 11), (3, 12)]
    assert [line["path"] for line in lines] == ["out/otter-1-s10.png", "out/otter-2-s11.png", "out/otter-3-s12.png"]
    for index, seed in ((1, 10), (2, 11), (3, 12)):
        assert json.loads((tmp_path / "out" / f"otter-{index}-s{seed}.json").read_text())["seed"] == seed


def test_resume_with_a_seed_sends_only_the_missing_seeds(fake: FakeProvider, tmp_path: Path) -> None:
    args = ("otter", "-m", NOVA, "-n", "2", "--seed", "10", "-o", "out", "--name", "o-{index}.{ext}")
    assert bedrock(fake, *args).code == 0
    (tmp_path / "out" / "o-2.png").unlink()
    manifest = tmp_path / "out" / ".imggen-manifest.jsonl"
    kept = [line for line in manifest.read_text().splitlines() if json.loads(line)["index"] == 1]
    manifest.write_text(kept[0] + "\n")  # only image 1 recorded
    before = len(invoke_bodies(fake))
    result = bedrock(fake, *args, "--resume")
    assert result.code == 0, result.stderr
    assert [b["imageGenerationConfig"]["seed"] for b in invoke_bodies(fake)[before:]] == [11]
    assert visible(tmp_path / "out") == ["o-1.png", "o-2.png"]


def test_a_seed_whose_last_image_would_pass_the_largest_is_refused(fake: FakeProvider, tmp_path: Path) -> None:
    result = bedrock(fake, "otter", "-m", NOVA, "-n", "3", "--seed", "4294967294", "-o", "out")
    assert result.code == 2
    assert result.stderr.startswith("error: --seed 4294967294 with -n 3 gives image 3 the seed 4294967296")
    assert "4294967293" in result.stderr and "Traceback" not in result.stderr
    assert invoke_bodies(fake) == [] and not (tmp_path / "out").exists()


def test_the_placeholder_draws_each_seed_once(tmp_path: Path) -> None:
    result = run_cli("generate", "otter", "-m", "placeholder", "-s", "32x32", "-n", "3", "--seed", "5", "--json")
    assert result.code == 0, result.stderr
    seeds = sorted(line["seed"] for line in result.json_lines())
    assert seeds == [5, 6, 7]
    alone = run_cli("generate", "otter", "-m", "placeholder", "-s", "32x32", "--seed", "6", "-o", "alone")
    second = next(line["path"] for line in result.json_lines() if line["seed"] == 6)
    assert (tmp_path / alone.lines[0]).read_bytes() == (tmp_path / second).read_bytes()
