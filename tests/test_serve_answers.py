"""`imggen serve`'s answers as OpenAI's clients read them (issue 14 items 1-5): the upstream's own fields
passed through, synthesised ones for other providers, response_format, streaming, requests without a
model, and fields the proxy does not know. Real clients: the `openai` package and `litellm`."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import pytest
from openai.types import ImagesResponse

from conftest import AZURE_KEY, OPENAI_KEY
from fakeserver import FakeProvider
from servehelp import MASTER_KEY, Served, deployment, proxy_config

IMAGES = "/v1/images/generations"
EDITS = "/v1/images/edits"
PNG = b"\x89PNG\r\n\x1a\n"


def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0)


def gpt_image(name: str, fake: FakeProvider, model: str = "openai/gpt-image-2", **params: Any) -> dict[str, Any]:
    return deployment(name, model, api_base=fake.openai_base, api_key=OPENAI_KEY, **params)


def azure_image(name: str, fake: FakeProvider, **params: Any) -> dict[str, Any]:
    return deployment(name, "azure/gpt-image-1-mini", api_base=fake.base_url, api_key=AZURE_KEY,
                      api_version="2025-04-01-preview", **params)  # fmt: skip


def upstream_posts(fake: FakeProvider) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


# 1. Faithful answers


def test_an_openai_answer_passes_through_with_every_field(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(gpt_image("img", fake)))
    answer = served.post({"model": "img", "prompt": "a fox", "background": "transparent", "output_format": "webp"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    usage = body["usage"]
    assert usage["input_tokens_details"] == {"text_tokens": 10, "image_tokens": 0}
    assert usage["output_tokens_details"] == {"image_tokens": 4160, "text_tokens": 0}  # rebuilt usage lost this
    assert (body["background"], body["output_format"], body["quality"], body["size"]) == (
        "transparent", "webp", "high", "1024x1024",
    )  # fmt: skip
    assert isinstance(body["created"], int)
    parsed = ImagesResponse.model_validate(body)
    assert parsed.usage is not None and parsed.usage.output_tokens_details is not None
    assert base64.b64decode(body["data"][0]["b64_json"]).startswith(PNG)
    # the openai client reads it as such
    read = client(served).images.generate(model="img", prompt="a fox")
    assert read.usage is not None and read.usage.input_tokens_details.image_tokens == 0
    assert read.output_format == "png" and read.size == "1024x1024"


def test_an_edit_answer_passes_through(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(gpt_image("img", fake)))
    edited = client(served).images.edit(model="img", prompt="add a hat", image=("in.png", fake.image_bytes))
    assert edited.usage is not None and edited.usage.input_tokens_details.image_tokens > 0
    assert edited.background == "opaque" and edited.output_format == "png"


def test_other_providers_answers_are_synthesised_in_openais_types(start: Any) -> None:
    served = start(proxy_config(deployment("ph", "placeholder")))
    answer = served.post({"model": "ph", "prompt": "a fox", "size": "256x256"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ImagesResponse.model_validate(body)
    assert body["output_format"] == "png" and set(body) >= {"created", "data"}
    assert base64.b64decode(body["data"][0]["b64_json"]).startswith(PNG)


def test_a_server_with_usage_openai_cannot_read_gets_a_valid_answer(fake: FakeProvider, start: Any) -> None:
    from fakeserver import Reply

    weird = {"created": 1, "data": [{"b64_json": base64.b64encode(fake.image_bytes).decode()}],
             "usage": {"prompt_tokens": 3}}  # fmt: skip
    fake.script(IMAGES, Reply(json=weird))
    served = start(proxy_config(gpt_image("img", fake, model="openai/some-server-model")))
    answer = served.post({"model": "img", "prompt": "a fox"})
    assert answer.status_code == 200, answer.text
    assert "usage" not in answer.json()
    ImagesResponse.model_validate(answer.json())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_litellm_reads_the_answers(fake: FakeProvider, start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else its import fetches prices from GitHub
    litellm = pytest.importorskip("litellm")
    served = start(proxy_config(gpt_image("img", fake), deployment("ph", "placeholder")))
    for name in ("img", "ph"):
        result = litellm.image_generation(
            model=f"litellm_proxy/{name}", prompt="a fox", api_base=served.base, api_key=MASTER_KEY
        )
        assert result.data and result.data[0].b64_json
    result = litellm.image_generation(
        model="litellm_proxy/img", prompt="a fox", api_base=served.base, api_key=MASTER_KEY
    )
    assert result.usage.input_tokens_details.image_tokens == 0


# 2. response_format


def test_b64_json_is_always_accepted_and_url_only_where_the_model_has_it(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(gpt_image("img", fake), deployment("ph", "placeholder")))
    for name in ("img", "ph"):
        answer = served.post({"model": name, "prompt": "a fox", "response_format": "b64_json"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"][0]["b64_json"]
    refused = served.post({"model": "ph", "prompt": "a fox", "response_format": "url"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"
    assert "drop_params" in refused.json()["error"]["message"]


def test_url_with_drop_params_answers_base64(start: Any) -> None:
    served = start(proxy_config(deployment("ph", "placeholder"), litellm_settings={"drop_params": True}))
    answer = served.post({"model": "ph", "prompt": "a fox", "response_format": "url"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["b64_json"]


# 3. Streaming


@pytest.mark.parametrize("where", ["openai", "azure"])
def test_a_stream_is_relayed_as_the_upstreams_events(fake: FakeProvider, start: Any, where: str) -> None:
    entry = gpt_image("img", fake) if where == "openai" else azure_image("img", fake)
    served = start(proxy_config(entry))
    with httpx.stream("POST", served.base + IMAGES, json={"model": "img", "prompt": "a fox", "stream": True,
                      "partial_images": 2}, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as raw:  # fmt: skip
        assert raw.status_code == 200
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert raw.headers["x-litellm-model-id"] and raw.headers["x-litellm-call-id"]
        text = raw.read().decode()
    assert text.count("event: image_generation.partial_image") == 2
    assert "event: image_generation.completed" in text
    sent = upstream_posts(fake)[-1].json
    assert sent["stream"] is True and sent["partial_images"] == 2
    events = list(client(served).images.generate(model="img", prompt="a fox", stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert events[-1].usage.input_tokens_details.text_tokens == 10
    assert base64.b64decode(events[-1].b64_json).startswith(PNG)


def test_an_edit_streams(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(gpt_image("img", fake)))
    events = list(client(served).images.edit(model="img", prompt="add a hat", image=("in.png", fake.image_bytes),
                                             stream=True, partial_images=1))  # fmt: skip
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_a_deployment_that_cannot_stream_is_400_before_any_call(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(
        deployment("dalle", "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY),
        deployment("ph", "placeholder"),
    ))  # fmt: skip
    for name in ("dalle", "ph"):
        answer = served.post({"model": name, "prompt": "a fox", "stream": True})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "stream"
    assert upstream_posts(fake) == []


def test_an_upstream_error_on_a_stream_is_the_usual_envelope(fake: FakeProvider, start: Any) -> None:
    from fakeserver import content_policy

    fake.script(IMAGES, content_policy())
    served = start(proxy_config(gpt_image("img", fake)))
    answer = served.post({"model": "img", "prompt": "a fox", "stream": True})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "content_policy_violation"


# 4. No model


def test_without_a_model_the_sdks_default_names_are_looked_up(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(
        deployment("dall-e-2", "placeholder"), gpt_image("gpt-image-1.5", fake),
    ))  # fmt: skip
    plain = served.post({"prompt": "a fox"})
    assert plain.status_code == 200 and upstream_posts(fake) == []  # dall-e-2: the placeholder here
    gpt_only = served.post({"prompt": "a fox", "background": "opaque"})
    assert gpt_only.status_code == 200 and len(upstream_posts(fake)) == 1
    events = list(client(served).images.generate(prompt="a fox", stream=True))
    assert events[-1].type == "image_generation.completed"
    edited = httpx.post(served.base + EDITS, data={"prompt": "a hat"}, files={"image": ("a.png", fake.image_bytes)},
                        headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert edited.status_code == 200, edited.text


def test_without_a_model_and_no_such_name_it_is_still_required(start: Any) -> None:
    served = start(proxy_config(deployment("ph", "placeholder")))
    answer = served.post({"prompt": "a fox"})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "'model' is required"


# 5. Unknown fields


def test_unknown_fields_go_to_an_openai_compatible_server(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(gpt_image("img", fake, model="openai/flux-dev")))
    answer = served.post({"model": "img", "prompt": "a fox", "guidance_scale": 3.5, "steps": 20})
    assert answer.status_code == 200, answer.text
    sent = upstream_posts(fake)[-1].json
    assert sent["guidance_scale"] == 3.5 and sent["steps"] == 20


def test_unknown_fields_elsewhere_are_refused_or_dropped(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(azure_image("az", fake)))
    refused = served.post({"model": "az", "prompt": "a fox", "guidance_scale": 3.5})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "guidance_scale"
    dropping = start(proxy_config(azure_image("az", fake), litellm_settings={"drop_params": True}))
    answer = dropping.post({"model": "az", "prompt": "a fox", "guidance_scale": 3.5})
    assert answer.status_code == 200, answer.text
    assert "guidance_scale" not in upstream_posts(fake)[-1].json


def test_azure_webp_is_a_400_worded_for_the_proxy(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(azure_image("az", fake)))
    answer = served.post({"model": "az", "prompt": "a fox", "output_format": "webp"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == "output_format" and "WebP" in error["message"]
    assert "-p " not in error["message"]
    assert upstream_posts(fake) == []
