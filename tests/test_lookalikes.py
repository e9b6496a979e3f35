"""xai/, recraft/, together/: the OpenAI look-alikes, each against a fake that keeps its own rules
(fakelookalikes.py). In-process through the Python API, but for a few CLI runs (--dry-run, models,
config explain) and one `imggen serve`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import imggen
from conftest import run_cli
from fakelookalikes import RECRAFT_KEY, TOGETHER_KEY, XAI_KEY, FakeLookalikes, Reply
from fakeserver import TINY_PNG
from imggen.errors import AuthError, BadResponseError, ContentFilterError, UsageError
from servehelp import MASTER_KEY

KEYS = {"xai": XAI_KEY, "recraft": RECRAFT_KEY, "together": TOGETHER_KEY}
SCHNELL = "together/black-forest-labs/FLUX.1-schnell"
KONTEXT = "together/black-forest-labs/FLUX.1-kontext-pro"


@pytest.fixture
def lookalikes() -> Iterator[FakeLookalikes]:
    with FakeLookalikes() as server:
        yield server


def gen(fake: FakeLookalikes, model: str, prompt: str = "a red fox", **kw: Any) -> imggen.ImageResponse:
    provider = "recraft" if model.startswith("recraft") else model.split("/", 1)[0]  # a bare recraft id too
    return imggen.generate(prompt, model=model, api_key=KEYS[provider], api_base=fake.base(provider), **kw)


def edit(fake: FakeLookalikes, model: str, images: list[bytes], **kw: Any) -> imggen.ImageResponse:
    provider = model.split("/", 1)[0]
    return imggen.edit("make it blue", images, model=model, api_key=KEYS[provider], api_base=fake.base(provider), **kw)


def sent(fake: FakeLookalikes) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests]


# xAI


def test_xai_sends_aspect_ratio_and_resolution_never_size(lookalikes: FakeLookalikes) -> None:
    result = gen(lookalikes, "xai/grok-imagine-image", size="2048x1152", n=2)
    assert [image.image_bytes() for image in result.data] == [TINY_PNG, TINY_PNG]
    assert sent(lookalikes) == [{"model": "grok-imagine-image", "prompt": "a red fox", "n": 2, "aspect_ratio": "16:9",
                                 "resolution": "2k", "response_format": "b64_json"}]  # fmt: skip
    assert lookalikes.requests[0].path == "/xai/v1/images/generations"
    assert result.cost_usd == pytest.approx(0.04)  # $0.02 an image at either resolution


def test_xai_quality_only_where_the_model_takes_it(lookalikes: FakeLookalikes) -> None:
    gen(lookalikes, "xai/grok-imagine-image-2.0", quality="low", aspect_ratio="21:9")
    assert sent(lookalikes)[0]["quality"] == "low" and sent(lookalikes)[0]["aspect_ratio"] == "21:9"
    with pytest.raises(UsageError, match="quality"):
        gen(lookalikes, "xai/grok-imagine-image-2.0", quality="high")
    plan = imggen.generate  # grok-imagine-image has no quality field: a note, nothing sent
    result = plan("a fox", model="xai/grok-imagine-image", quality="low", api_key=XAI_KEY,
                  api_base=lookalikes.base("xai"))  # fmt: skip
    assert result.data and "quality" not in sent(lookalikes)[-1]


def test_xai_moderation_is_a_content_filter_error_and_a_bad_key_an_auth_error(lookalikes: FakeLookalikes) -> None:
    with pytest.raises(ContentFilterError, match="content moderation"):
        gen(lookalikes, "xai/grok-imagine-image", prompt="please moderate this")
    with pytest.raises(AuthError) as caught:
        imggen.generate("x", model="xai/grok-imagine-image", api_key="xai-wrong-0123456789",
                        api_base=lookalikes.base("xai"))  # fmt: skip
    assert "xai-wrong-0123456789" not in str(caught.value) and caught.value.status == 401


def test_xai_edit_is_json_with_data_uris(lookalikes: FakeLookalikes) -> None:
    result = edit(lookalikes, "xai/grok-imagine-image", [TINY_PNG, TINY_PNG])
    body = sent(lookalikes)[0]
    assert lookalikes.requests[0].path == "/xai/v1/images/edits"
    assert [part["url"] for part in body["images"]] == [
        "data:image/png;base64," + base64.b64encode(TINY_PNG).decode()
    ] * 2
    assert result.cost_usd == pytest.approx(0.02 + 2 * 0.02)  # edits bill the input images too
    edit(lookalikes, "xai/grok-imagine-image", [TINY_PNG])
    assert set(sent(lookalikes)[1]["image"]) == {"url", "type"}
    with pytest.raises(UsageError):  # 3 inputs at most (grok-imagine-image-2.0: 5)
        edit(lookalikes, "xai/grok-imagine-image", [TINY_PNG] * 4)


def test_xai_retired_models_are_refused_before_sending(lookalikes: FakeLookalikes) -> None:
    for model in ("xai/grok-2-image-1212", "grok-2-image", "xai/grok-imagine-image-quality"):
        with pytest.raises(UsageError, match="retired") as caught:  # on xAI's own endpoint: nothing is sent
            imggen.generate("a fox", model=model, api_key=XAI_KEY)
        assert "xai/grok-imagine-image" in str(caught.value.hint) + str(caught.value)
    gen(lookalikes, "xai/grok-imagine-image-quality")  # elsewhere (an api_base of the user's) it is sent
    assert sent(lookalikes)[0]["model"] == "grok-imagine-image-quality"


def test_xai_url_results_are_downloaded_at_once_without_the_key(lookalikes: FakeLookalikes, tmp_path: Path) -> None:
    results = list(imggen.run(["a fox"], model="xai/grok-imagine-image", output_dir=tmp_path, response_format="url",
                              api_key=XAI_KEY, api_base=lookalikes.base("xai")))  # fmt: skip
    assert results[0].ok and results[0].path is not None and results[0].path.read_bytes() == TINY_PNG
    assert sent(lookalikes)[0]["response_format"] == "url"
    download = lookalikes.downloads[0]
    assert download.path.startswith("/files/") and "authorization" not in download.headers


def test_xai_broken_answers_are_retried(lookalikes: FakeLookalikes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imggen.transport.backoff", lambda attempt: 0.0)  # no waiting between the attempts
    lookalikes.script("/xai/", Reply(500, json={"code": "Internal error", "error": "try again"}),
                      Reply(200, json={"data": [{"b64_json": "x" * 10}]}, truncate=True))  # fmt: skip
    result = gen(lookalikes, "xai/grok-imagine-image")
    assert result.data[0].image_bytes() == TINY_PNG and len(lookalikes.requests) == 3


# Recraft


def test_recraft_v3_sends_its_fields_and_splits_above_six(lookalikes: FakeLookalikes) -> None:
    controls = {"colors": [{"rgb": [0, 0, 255]}]}
    result = gen(lookalikes, "recraft/recraftv3", size="1365x1024", style="realistic_image",
                 negative_prompt="blur", n=7, params={"substyle": "hdr", "controls": controls})  # fmt: skip
    assert len(result.data) == 7 and sorted(b["n"] for b in sent(lookalikes)) == [1, 6]  # sent concurrently
    first = sent(lookalikes)[0]
    assert lookalikes.requests[0].path == "/recraft/v1/images/generations"
    assert {k: first[k] for k in ("size", "style", "substyle", "negative_prompt", "model")} == {
        "size": "1365x1024",
        "style": "realistic_image",
        "substyle": "hdr",
        "negative_prompt": "blur",
        "model": "recraftv3",
    }
    assert first["controls"] == {"colors": [{"rgb": [0, 0, 255]}]}
    assert result.cost_usd == pytest.approx(7 * 0.04)
    gen(lookalikes, "recraft/recraftv3", seed=41)
    assert sent(lookalikes)[-1]["random_seed"] == 41 and "seed" not in sent(lookalikes)[-1]


def test_recraft_v4_takes_aspect_ratios_as_its_size_and_no_negative_prompt(lookalikes: FakeLookalikes) -> None:
    gen(lookalikes, "recraftv4_1", aspect_ratio="16:9", negative_prompt="blur")
    assert sent(lookalikes)[0]["size"] == "16:9" and "negative_prompt" not in sent(lookalikes)[0]
    gen(lookalikes, "recraft/recraftv4", size="1344x768")
    assert sent(lookalikes)[1]["size"] == "16:9"


def test_recraft_vector_output_is_refused_clearly(lookalikes: FakeLookalikes) -> None:
    for model, style in (("recraft/recraftv4_1_vector", None), ("recraft/recraftv3", "vector_illustration"),
                         ("recraft/recraftv3", "icon")):  # fmt: skip
        with pytest.raises(UsageError, match="SVG"):
            gen(lookalikes, model, style=style)
    assert lookalikes.requests == []
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"/>').decode()
    lookalikes.script(
        "/recraft/", Reply(json={"created": 1, "credits": 80, "data": [{"image_id": "a", "b64_json": svg}]})
    )
    with pytest.raises(BadResponseError, match="SVG"):
        gen(lookalikes, "recraft/recraftv3", style="Photorealism")


def test_recraft_edit_is_image_to_image_with_a_strength(lookalikes: FakeLookalikes) -> None:
    edit(lookalikes, "recraft/recraftv3", [TINY_PNG], size="1024x1024")
    body = sent(lookalikes)[0]
    assert lookalikes.requests[0].path == "/recraft/v1/images/imageToImage"
    assert body["strength"] == 0.5 and body["image_url"].startswith("data:image/png;base64,") and "size" not in body
    edit(lookalikes, "recraft/recraftv4_1", [TINY_PNG], params={"strength": 0.2})
    assert sent(lookalikes)[1]["strength"] == 0.2


def test_recraft_refused_token_is_an_auth_error(lookalikes: FakeLookalikes) -> None:
    with pytest.raises(AuthError, match="request unauthorized"):
        imggen.generate("x", model="recraft/recraftv3", api_key="wrong-token-0123456789",
                        api_base=lookalikes.base("recraft"))  # fmt: skip


# Together AI


def test_together_maps_size_to_width_and_height_and_b64_to_base64(lookalikes: FakeLookalikes) -> None:
    result = gen(lookalikes, SCHNELL, size="1536x1024", n=5, seed=None, params={"steps": 4})
    assert sorted(b["n"] for b in sent(lookalikes)) == [1, 4] and len(result.data) == 5  # sent concurrently
    assert {k: sent(lookalikes)[0][k] for k in ("width", "height", "response_format", "steps")} == {
        "width": 1536,
        "height": 1024,
        "response_format": "base64",
        "steps": 4,
    }
    assert "size" not in sent(lookalikes)[0]
    with pytest.raises(UsageError):
        gen(lookalikes, SCHNELL, params={"width": 512})  # imggen plans the size itself


def test_together_kontext_edit_sends_image_url(lookalikes: FakeLookalikes) -> None:
    result = edit(lookalikes, KONTEXT, [TINY_PNG])
    assert result.data and sent(lookalikes)[0]["image_url"].startswith("data:image/png;base64,")
    assert lookalikes.requests[0].path == "/together/v1/images/generations"
    with pytest.raises(UsageError, match="cannot edit"):
        edit(lookalikes, SCHNELL, [TINY_PNG])


def test_together_url_results_download_with_a_user_agent_and_no_key(lookalikes: FakeLookalikes, tmp_path: Path) -> None:
    results = list(imggen.run(["a fox"], model=SCHNELL, output_dir=tmp_path, response_format="url",
                              api_key=TOGETHER_KEY, api_base=lookalikes.base("together")))  # fmt: skip
    assert results[0].ok, results[0].error
    (download,) = lookalikes.downloads
    assert download.headers.get("user-agent") and "authorization" not in download.headers


# Around the send path: --dry-run, models, config explain, the proxy


def test_dry_run_models_and_config_explain_know_the_three_without_leaking_keys() -> None:
    env = {"XAI_API_KEY": XAI_KEY, "RECRAFT_API_TOKEN": RECRAFT_KEY, "TOGETHER_API_KEY": TOGETHER_KEY}
    dry = run_cli("generate", "a fox", "-m", "xai/grok-imagine-image", "--aspect-ratio", "3:2", "--dry-run", env=env)
    assert dry.code == 0, dry.stderr
    assert "https://api.x.ai/v1/images/generations" in dry.stdout and '"aspect_ratio": "3:2"' in dry.stdout
    assert XAI_KEY not in dry.stdout + dry.stderr and "$0.0200" in dry.stdout
    listed = run_cli("models", "--json", env=env)
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert {"xai/grok-imagine-image", "recraft/recraftv4_1", SCHNELL} <= set(rows)
    explained = run_cli("config", "explain", "-m", "recraft/recraftv3", env=env)
    assert "env:RECRAFT_API_TOKEN" in explained.stdout and RECRAFT_KEY not in explained.stdout


def test_the_proxy_serves_the_three(lookalikes: FakeLookalikes, start: Any) -> None:
    params = {name: {"api_key": KEYS[name], "api_base": lookalikes.base(name)} for name in KEYS}
    config = {
        "model_list": [
            {"model_name": "grok", "litellm_params": {"model": "xai/grok-imagine-image", **params["xai"]}},
            {"model_name": "recraft", "litellm_params": {"model": "recraft/recraftv3", **params["recraft"]}},
            {"model_name": "flux", "litellm_params": {"model": SCHNELL, **params["together"]}},
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    served = start(config)
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    bodies = {"grok": {"aspect_ratio": "16:9"}, "recraft": {"size": "1024x1024", "style": "digital_illustration"},
              "flux": {"size": "512x512", "steps": 2}}  # fmt: skip
    for model, extra in bodies.items():
        answer = httpx.post(served.base + "/v1/images/generations", headers=headers, timeout=30,
                            json={"model": model, "prompt": "a sea otter", **extra})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == TINY_PNG
    grok, recraft, flux = sent(lookalikes)
    assert grok["aspect_ratio"] == "16:9" and recraft["style"] == "digital_illustration"
    assert (flux["width"], flux["height"], flux["steps"]) == (512, 512, 2)
