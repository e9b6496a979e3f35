"""openai-python's own image API tests, as calls of the same shape against `imggen serve` (issue 14's goal:
95 of their 100 pass; the five that ask /images/variations for gpt-image-1 are refused as the real API
refuses them).

Their file (openai-python tests/api_resources/test_images.py, commit e43b4224, Apache-2.0) cannot be fetched
in CI, so its calls are written again here with the `openai` package of the test extra: the same methods
(create_variation, edit and generate, each plain, with every parameter, `with_raw_response` and
`with_streaming_response`; edit and generate streamed too), the same arguments (`b"Example data"` as the
image and mask, the same model names and values), sync and async, with strict response validation (their
"strict" client). Their server is a prism mock of OpenAI's OpenAPI spec; here it is the FakeProvider in its
`prism` mode (any bytes as an upload, answers the spec allows) behind `imggen serve` with a config that maps
their model names to deployments on it, as a LiteLLM user's config would. Beyond their checks, each test
says what reached the upstream: the upload as the client sent it, every field forwarded.

One `imggen serve` process serves the whole module (starting one is most of the time these tests take).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types import ImagesResponse

from conftest import SCRUBBED_PREFIXES, TODAY
from fakeserver import FakeProvider, Recorded
from servehelp import MASTER_KEY, Served, deployment, proxy_config

# openai 3.57.0 marks create_variation deprecated (OpenAI's own endpoint is retired); servers of one's own remain.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

DATA = b"Example data"  # what openai-python's tests upload as every image and mask: not an image
UPLOAD = ("upload", "application/octet-stream", DATA)  # how the client sends bytes: httpx's name and type
MODELS = ("gpt-image-2", "gpt-image-1.5", "gpt-image-1", "dall-e-2")  # the names their tests use or default to
EDIT_ALL = {
    "background": "transparent", "input_fidelity": "high", "mask": DATA, "model": "gpt-image-2", "n": 1,
    "output_compression": 100, "output_format": "png", "partial_images": 1, "quality": "high",
    "response_format": "url", "size": "256x256", "user": "user-1234",
}  # fmt: skip
GENERATE_ALL = {
    "background": "transparent", "model": "gpt-image-2", "moderation": "low", "n": 1, "output_compression": 100,
    "output_format": "png", "partial_images": 1, "quality": "medium", "response_format": "url", "size": "auto",
    "style": "vivid", "user": "user-1234",
}  # fmt: skip
VARIATION_ALL = {"model": "gpt-image-1", "n": 1, "response_format": "url", "size": "1024x1024", "user": "user-1234"}
SEA_OTTER = "A cute baby sea otter wearing a beret"
# What the upstream gets of EDIT_ALL: every field as text, but the two gpt-image-2 does not take
# (input_fidelity, response_format), which this config drops (drop_params: true, as in LiteLLM's).
EDIT_ALL_SENT = {
    "prompt": SEA_OTTER, "model": "gpt-image-2", "n": "1", "size": "256x256", "quality": "high", "user": "user-1234",
    "background": "transparent", "output_compression": "100", "output_format": "png", "partial_images": "1",
}  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeProvider]:
    with FakeProvider(prism=True) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(upstream: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("openai-suite")
    deployments = [deployment(name, f"openai/{name}", api_base=upstream.openai_base, api_key=upstream.openai_key)
                   for name in MODELS]  # fmt: skip
    deployments.append(deployment("faithful", "openai/gpt-image-2", api_base=upstream.openai_base,
                                  api_key=upstream.openai_key, drop_params=False))  # fmt: skip
    config = proxy_config(*deployments, litellm_settings={"drop_params": True})
    env = {
        "HOME": str(tmp / "home"), "XDG_DATA_HOME": str(tmp / "data"), "IMGGEN_CONFIG_DIR": str(tmp / "config"),
        "IMGGEN_TODAY": TODAY, "NO_PROXY": "127.0.0.1,localhost", "HTTPS_PROXY": "http://127.0.0.1:9",
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:  # conftest's `isolated` is per test: the same, for the module
        for name in list(os.environ):
            if name.startswith(SCRUBBED_PREFIXES):
                patch.delenv(name)
        server = Served(tmp, config, env)
    yield server
    server.stop()


def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0,
                         _strict_response_validation=True)  # fmt: skip


def posts(upstream: FakeProvider, before: int) -> list[Recorded]:
    return [r for r in upstream.requests[before:] if r.method == "POST"]


def files(request: Recorded) -> list[tuple[str, str, str, bytes]]:
    assert request.files is not None
    return request.files


def matches(answer: Any) -> None:
    assert isinstance(answer, ImagesResponse)
    ImagesResponse.model_validate(answer.model_dump(exclude_unset=True))
    assert answer.data


def test_create_variation(served: Served, upstream: FakeProvider) -> None:
    api, before = client(served), len(upstream.requests)
    matches(api.images.create_variation(image=DATA))
    raw = api.images.with_raw_response.create_variation(image=DATA)
    assert raw.is_closed and raw.http_request.headers.get("X-Stainless-Lang") == "python"
    assert raw.headers["x-litellm-model-id"] and raw.headers["x-litellm-call-id"]
    matches(raw.parse())
    with api.images.with_streaming_response.create_variation(image=DATA) as streamed:
        assert not streamed.is_closed
        matches(streamed.parse())
    assert streamed.is_closed
    got = posts(upstream, before)
    assert [r.path for r in got] == ["/v1/images/variations"] * 3
    for request in got:  # no model: dall-e-2, as OpenAI's API chose it; the upload as the client sent it
        assert request.form == {"model": "dall-e-2"}
        assert files(request) == [("image", *UPLOAD)]


def test_create_variation_with_all_params_is_refused_by_the_upstream(served: Served, upstream: FakeProvider) -> None:
    # The five of openai-python's 100 that fail against any real OpenAI-shaped server: variations took only
    # dall-e-2. The fields still reach the upstream, which decides.
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).images.create_variation(image=DATA, **VARIATION_ALL)
    assert "dall-e-2" in str(caught.value)
    (request,) = posts(upstream, before)
    assert request.form == {k: str(v) for k, v in VARIATION_ALL.items()}
    assert files(request) == [("image", *UPLOAD)]


def test_edit(served: Served, upstream: FakeProvider) -> None:
    api, before = client(served), len(upstream.requests)
    matches(api.images.edit(image=DATA, prompt=SEA_OTTER))
    raw = api.images.with_raw_response.edit(image=DATA, prompt=SEA_OTTER)
    assert raw.is_closed and raw.http_request.headers.get("X-Stainless-Lang") == "python"
    matches(raw.parse())
    with api.images.with_streaming_response.edit(image=DATA, prompt=SEA_OTTER) as streamed:
        assert not streamed.is_closed
        matches(streamed.parse())
    assert streamed.is_closed
    got = posts(upstream, before)
    assert [r.path for r in got] == ["/v1/images/edits"] * 3
    for request in got:  # no model: the edits default, gpt-image-1.5
        assert request.form == {"prompt": SEA_OTTER, "model": "gpt-image-1.5", "n": "1"}
        assert files(request) == [("image", *UPLOAD)]


def test_edit_with_all_params(served: Served, upstream: FakeProvider) -> None:
    before = len(upstream.requests)
    answer = client(served).images.edit(image=DATA, prompt=SEA_OTTER, stream=False, **EDIT_ALL)
    matches(answer)
    assert answer.usage is not None and answer.usage.input_tokens_details.image_tokens > 0  # the upstream's own
    (request,) = posts(upstream, before)
    assert request.form == EDIT_ALL_SENT
    assert files(request) == [("image", *UPLOAD), ("mask", *UPLOAD)]


def test_without_drop_params_every_field_reaches_the_compatible_server(served: Served, upstream: FakeProvider) -> None:
    # The catalog says gpt-image-2 takes neither input_fidelity nor response_format (nor style): a server of
    # the user's decides, as LiteLLM leaves it to decide (OpenAI's own endpoint: 400 without drop_params).
    api, before = client(served), len(upstream.requests)
    matches(api.images.edit(image=DATA, prompt=SEA_OTTER, stream=False, **{**EDIT_ALL, "model": "faithful"}))
    matches(api.images.generate(prompt="A cute baby sea otter", **{**GENERATE_ALL, "model": "faithful"}))
    edit, generate = posts(upstream, before)
    assert edit.form == {**EDIT_ALL_SENT, "input_fidelity": "high", "response_format": "url"}
    assert generate.json == {"prompt": "A cute baby sea otter", **GENERATE_ALL}


def test_edit_streamed(served: Served, upstream: FakeProvider) -> None:
    api, before = client(served), len(upstream.requests)
    api.images.edit(image=DATA, prompt=SEA_OTTER, stream=True).response.close()
    with api.images.edit(image=DATA, prompt=SEA_OTTER, stream=True, **EDIT_ALL) as events:
        kinds = [event.type for event in events]
    assert kinds == ["image_edit.partial_image", "image_edit.completed"]
    raw = api.images.with_raw_response.edit(image=DATA, prompt=SEA_OTTER, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream") and raw.headers["x-litellm-model-id"]
    raw.parse().close()
    with api.images.with_streaming_response.edit(image=DATA, prompt=SEA_OTTER, stream=True) as streamed:
        assert not streamed.is_closed
        streamed.parse().close()
    assert streamed.is_closed
    got = posts(upstream, before)
    assert len(got) == 4 and all(r.form and r.form["stream"] == "true" for r in got)
    assert got[1].form == {**EDIT_ALL_SENT, "stream": "true"}
    assert files(got[1]) == [("image", *UPLOAD), ("mask", *UPLOAD)]


def test_generate(served: Served, upstream: FakeProvider) -> None:
    api, before = client(served), len(upstream.requests)
    matches(api.images.generate(prompt="A cute baby sea otter"))
    answer = api.images.generate(prompt="A cute baby sea otter", stream=False, **GENERATE_ALL)
    matches(answer)
    assert answer.usage is not None and answer.size == "1024x1024"
    raw = api.images.with_raw_response.generate(prompt="A cute baby sea otter")
    assert raw.is_closed and raw.http_request.headers.get("X-Stainless-Lang") == "python"
    matches(raw.parse())
    with api.images.with_streaming_response.generate(prompt="A cute baby sea otter") as streamed:
        matches(streamed.parse())
    assert streamed.is_closed
    got = posts(upstream, before)
    assert got[0].json == {"prompt": "A cute baby sea otter", "model": "dall-e-2", "n": 1,
                           "response_format": "b64_json"}  # fmt: skip
    sent = {k: v for k, v in GENERATE_ALL.items() if k not in ("style", "response_format")}  # gpt-image-2 has neither
    assert got[1].json == {"prompt": "A cute baby sea otter", **sent}


def test_generate_streamed(served: Served, upstream: FakeProvider) -> None:
    api, before = client(served), len(upstream.requests)
    api.images.generate(prompt="A cute baby sea otter", stream=True).response.close()
    with api.images.generate(prompt="A cute baby sea otter", stream=True, **GENERATE_ALL) as events:
        kinds = [event.type for event in events]
    assert kinds == ["image_generation.partial_image", "image_generation.completed"]
    raw = api.images.with_raw_response.generate(prompt="A cute baby sea otter", stream=True, size="1024x1024",
                                                quality="low", model="gpt-image-2")  # fmt: skip
    # the cost header of a stream: the estimate (sent before the upstream's usage), as for the spend log
    assert float(raw.headers["x-litellm-response-cost"]) > 0
    raw.parse().close()
    with api.images.with_streaming_response.generate(prompt="A cute baby sea otter", stream=True) as streamed:
        streamed.parse().close()
    got = posts(upstream, before)
    assert len(got) == 4 and all(r.json and r.json["stream"] is True for r in got)
    assert got[0].json and got[0].json["model"] == "gpt-image-1.5"  # `stream` is GPT image only: its default
    assert got[2].json == {"prompt": "A cute baby sea otter", "model": "gpt-image-2", "n": 1, "size": "1024x1024",
                           "quality": "low", "stream": True}  # fmt: skip


def test_the_async_client(served: Served, upstream: FakeProvider) -> None:
    """TestAsyncImages: the same calls through AsyncOpenAI."""

    async def calls() -> None:
        async with openai.AsyncOpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0,
                                      _strict_response_validation=True) as api:  # fmt: skip
            matches(await api.images.create_variation(image=DATA))
            with pytest.raises(openai.BadRequestError):
                await api.images.create_variation(image=DATA, **VARIATION_ALL)
            matches(await api.images.edit(image=DATA, prompt=SEA_OTTER, **EDIT_ALL))
            raw = await api.images.with_raw_response.edit(image=DATA, prompt=SEA_OTTER)
            matches(raw.parse())
            async with api.images.with_streaming_response.edit(image=DATA, prompt=SEA_OTTER) as streamed:
                matches(await streamed.parse())
            events = await api.images.edit(image=DATA, prompt=SEA_OTTER, stream=True, **EDIT_ALL)
            assert [event.type async for event in events] == ["image_edit.partial_image", "image_edit.completed"]
            matches(await api.images.generate(prompt="A cute baby sea otter", **GENERATE_ALL))
            events = await api.images.generate(prompt="A cute baby sea otter", stream=True)
            assert [event.type async for event in events] == ["image_generation.completed"]

    before = len(upstream.requests)
    asyncio.run(calls())
    assert len(posts(upstream, before)) == 8


def test_a_known_endpoint_still_refuses_what_imggen_cannot_read(start: Any) -> None:
    # OpenAI's own endpoint (and Azure's): imggen knows their rules, so nothing is sent.
    served = start(proxy_config(deployment("own", "openai/gpt-image-1", api_key="sk-own-endpoint-key-000000")),
                   {"HTTPS_PROXY": "http://127.0.0.1:9"})  # fmt: skip
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).images.edit(model="own", image=DATA, prompt=SEA_OTTER)
    assert "upload is not a PNG, JPEG, WebP or GIF image" in str(caught.value)
