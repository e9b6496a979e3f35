"""Bad input: one clear line on stderr, exit 2, nothing sent and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import openai_env, run_cli
from fakeserver import FakeProvider

CASES = [
    (["   "], "prompt is empty"),
    (["otter", "-m", "midjourney/v6"], "unknown provider prefix"),
    (["otter", "-m", "dall-e-2", "-s", "1792x1024"], "256x256"),
    (["otter", "-m", "dall-e-3", "-q", "ultra"], "standard, hd"),
    (["otter", "-m", "dall-e-3", "--style", "pastel"], "vivid, natural"),
    (["otter", "-m", "gpt-image-1", "-n", "11"], "-n 11"),
    (["otter", "-m", "gpt-image-1", "-n", "0"], "-n 0"),
    (["otter", "-m", "gpt-image-1", "--response-format", "png"], "url, b64_json"),
    (["otter", "-m", "gpt-image-1", "-p", "novalue"], "KEY=VALUE"),
    (["otter", "-m", "gpt-image-1", "--name", "../{prompt}.{ext}"], "file name"),
    (["otter", "-m", "gpt-image-1", "--name", "{colour}.{ext}"], "unknown field"),
    (["x" * 4001, "-m", "dall-e-3"], "at most 4000"),
    (["otter", "-m", "gpt-image-1", "-s", "1024x1024", "--aspect-ratio", "1:1"], "Give one"),
    ([], "no prompt"),
    (["otter", "-n", "nan"], "Invalid value for '-n'"),  # typer's own parse errors are one line too
    (["otter", "--no-such-flag"], "No such option: --no-such-flag"),
    (["otter", "-m", "gpt-image-1", "-p", "n=1000", "--max-cost", "1"], "imggen plans n itself; use -n"),
    (["otter", "-m", "gpt-image-1", "-p", "model=dall-e-3"], "use -m"),
    (["otter", "-m", "gpt-image-1", "-p", "prompt=heron"], "give it as the prompt"),
    (["otter", "-m", "gpt-image-1", "-p", "size=256x256"], "use -s"),
    (["otter", "-m", "gpt-image-1", "-p", "quality=low"], "use -q"),
    (["otter", "-m", "dall-e-3", "-p", "style=vivid"], "use --style"),
    (["otter", "-m", "dall-e-3", "-p", "response_format=url"], "use --response-format"),
    (["otter", "-m", "gpt-image-1", "-p", "user=u1"], "use --user"),
    (["otter", "-m", "gpt-image-1", "-p", "seed=1"], "use --seed"),
    (["otter", "-m", "gpt-image-1", "-p", "sampleCount=4"], "use -n"),
    (["otter", "-m", "gpt-image-1", "--timeout", "nan"], "--timeout nan must be a finite number"),
    (["otter", "-m", "gpt-image-1", "--timeout", "inf"], "--timeout inf must be a finite number"),
    (["otter", "-m", "gpt-image-1", "--timeout", "0"], "--timeout 0 is out of range"),
    (["otter", "-m", "gpt-image-1", "--timeout", "1e9"], "--timeout 1e+09 is out of range"),
    (["otter", "-m", "gpt-image-1", "--retries", "11"], "--retries 11 is out of range"),
    (["otter", "-m", "gpt-image-1", "--retries", "-1"], "--retries -1 is out of range"),
    (["otter", "-m", "gpt-image-1", "--rpm", "0.001"], "one request an hour"),
    (["otter", "-m", "gpt-image-1", "--rpm", "nan"], "--rpm nan must be a finite number"),
    (["otter", "-m", "gpt-image-1", "--rpm", "-inf"], "--rpm -inf must be a finite number"),
    (["otter", "-m", "gpt-image-1", "-j", "0"], "-j 0 is out of range"),
    (["otter", "-m", "gpt-image-1", "-j", "257"], "whole number from 1 to 256"),
    (["otter", "-m", "gpt-image-1", "--max-cost", "-1"], "--max-cost -1 is out of range"),
    (["otter", "-m", "gpt-image-1", "--max-cost", "nan"], "--max-cost nan must be a finite number"),
    (["otter", "-m", "gpt-image-1", "--seed", "-1"], "--seed -1 is out of range"),
    (["otter", "-m", "gpt-image-1", "--seed", "4294967296"], "from 0 to 4294967295"),
    (["otter", "-m", "gpt-image-1", "--name", "{prompt:d}.{ext}"], "cannot be rendered"),
    (["otter", "-m", "gpt-image-1", "--name", "{prompt}.json"], "names ending .json"),
    (["otter", "-m", "gpt-image-1", "--name", ".imggen-manifest.jsonl"], "imggen keeps for its own files"),
    (["otter", "-m", "gpt-image-1", "--name", "x" * 251 + ".{ext}"], "at most 255 bytes"),
    (["otter", "-m", "gpt-image-1", "--name", "fixed.{ext}", "-n", "3", "--overwrite"], "Add {index}."),
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_bad_input_is_one_line_and_exit_2(fake: FakeProvider, tmp_path: Path, args: list[str], expected: str) -> None:
    result = run_cli("generate", *args, "-o", "out", env=openai_env(fake))
    assert result.code == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and fake.requests == []
    assert not (tmp_path / "out").exists()
