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
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_bad_input_is_one_line_and_exit_2(fake: FakeProvider, tmp_path: Path, args: list[str], expected: str) -> None:
    result = run_cli("generate", *args, "-o", "out", env=openai_env(fake))
    assert result.code == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and fake.requests == []
