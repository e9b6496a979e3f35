"""The Python API, used as a library user would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import imggen
from conftest import OPENAI_KEY
from fakeserver import TINY_PNG, FakeProvider, content_policy


def test_generate_and_save(fake: FakeProvider, tmp_path: Path) -> None:
    response = imggen.generate("A cute baby sea otter", model="dall-e-3", n=2, size="1024x1024",
                               api_key=OPENAI_KEY, api_base=fake.openai_base)  # fmt: skip
    assert response.model == "openai/dall-e-3" and len(response.data) == 2
    assert response.data[0].b64_json and response.data[0].revised_prompt == "revised: A cute baby sea otter"
    assert response.cost_usd == pytest.approx(0.08)
    paths = response.save(tmp_path / "out", metadata=True)
    assert [p.read_bytes() for p in paths] == [TINY_PNG, TINY_PNG]
    assert all(p.with_suffix(".json").exists() for p in paths)


def test_agenerate(fake: FakeProvider) -> None:
    async def main() -> imggen.ImageResponse:
        return await imggen.agenerate("otter", model="gpt-image-1", api_key=OPENAI_KEY, api_base=fake.openai_base)

    response = asyncio.run(main())
    assert response.usage.output_tokens == 4160 and response.created > 0


def test_provider_params_reach_the_body(fake: FakeProvider) -> None:
    imggen.generate("otter", model="gpt-image-1", api_key=OPENAI_KEY, api_base=fake.openai_base,
                    background="transparent")  # fmt: skip
    assert fake.requests[0].json["background"] == "transparent"


def test_errors_are_typed_with_exit_codes(fake: FakeProvider) -> None:
    fake.script("/images/generations", content_policy())
    with pytest.raises(imggen.errors.ContentFilterError) as err:
        imggen.generate("otter", model="gpt-image-1", api_key=OPENAI_KEY, api_base=fake.openai_base)
    assert err.value.exit_code == 1 and err.value.status == 400
    with pytest.raises(imggen.errors.UsageError):
        imggen.generate("otter", model="dall-e-3", n=11)


def test_url_results_are_downloaded_by_save(fake: FakeProvider, tmp_path: Path) -> None:
    response = imggen.generate("otter", model="dall-e-2", response_format="url", api_key=OPENAI_KEY,
                               api_base=fake.openai_base)  # fmt: skip
    assert response.data[0].url and response.data[0].b64_json is None
    assert response.save(tmp_path)[0].read_bytes() == TINY_PNG
