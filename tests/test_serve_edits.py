"""`imggen serve`'s /v1/images/edits and /v1/images/variations, end to end: the official openai client
(3.57.0: `images.edit`, `images.create_variation`) against a real `imggen serve` process, with the
offline placeholder provider and an OpenAI-compatible fake (fakeedits.py) as the deployments."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from fakeedits import KEY, FakeCompatible, png, png_size
from imggen.proxy.config import parse
from servehelp import MASTER_KEY, Served, deployment, proxy_config

EDITS = "/v1/images/edits"
IMAGE = png(16, 16)
MASK = png(16, 16, alpha=True, clear=8)
# openai 3.57.0 marks create_variation deprecated (OpenAI's own endpoint is retired); servers of one's own remain.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@pytest.fixture
def start(start: Any) -> Any:
    """conftest's `start`, with whatever a bug might try to reach sent to a closed port on this machine."""

    def run(config: dict[str, Any], env: dict[str, str] | None = None) -> Served:
        return start(config, {"HTTPS_PROXY": "http://127.0.0.1:9", **(env or {})})

    return run


@pytest.fixture
def compatible() -> Iterator[FakeCompatible]:
    with FakeCompatible() as server:
        yield server


def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0)


def placeholder(name: str = "editor", **params: Any) -> dict[str, Any]:
    return deployment(name, "placeholder/default", **params)


def on_compatible(
    name: str, server: FakeCompatible, model: str = "openai/gpt-image-2", **params: Any
) -> dict[str, Any]:
    return deployment(name, model, api_base=server.base, api_key=KEY, **params)


def decoded(result: Any, index: int = 0) -> bytes:
    return base64.b64decode(result.data[index].b64_json or "")


def error_of(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = exc.value.body
    assert isinstance(body, dict), body  # the SDK hands over the envelope's "error" object
    return body


# The placeholder provider edits offline: the first image, visibly changed, at its size.


def test_edit_with_the_openai_client(start: Any, tmp_path: Path) -> None:
    served = start(proxy_config(placeholder()))
    path = tmp_path / "otter.png"
    path.write_bytes(IMAGE)
    with path.open("rb") as handle:
        result = client(served).images.edit(model="editor", image=handle, prompt="add a small hat")
    edited = decoded(result)
    assert png_size(edited) == (16, 16) and edited != IMAGE
    assert "POST /v1/images/edits model=editor" in served.stderr()


def test_several_images_a_mask_and_n(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    images = [("first.png", IMAGE, "image/png"), ("second.png", png(24, 24), "image/png")]
    result = client(served).images.edit(
        model="editor", image=images, mask=("mask.png", MASK, "image/png"), prompt="a hat", n=2,
        input_fidelity="high",
    )  # fmt: skip
    assert len(result.data) == 2
    assert all(png_size(decoded(result, i)) == (16, 16) for i in range(2))  # the first image's size
    assert decoded(result, 0) != decoded(result, 1)  # image k gets its own seed


def test_the_raw_response_has_litellms_headers(start: Any) -> None:
    served = start(proxy_config(placeholder(model_info={"id": "edit-one"})))
    raw = client(served).images.with_raw_response.edit(model="editor", image=IMAGE, prompt="a hat")
    assert raw.status_code == 200
    assert raw.headers["x-litellm-call-id"] and raw.headers["x-litellm-model-id"] == "edit-one"
    assert float(raw.headers["x-litellm-response-cost"]) == 0.0
    assert png_size(decoded(raw.parse())) == (16, 16)


def test_the_async_client(start: Any) -> None:
    served = start(proxy_config(placeholder()))

    async def edit_twice() -> list[Any]:
        api = openai.AsyncOpenAI(base_url=served.base + "/v1", api_key=MASTER_KEY, max_retries=0)
        async with api:
            return await asyncio.gather(
                api.images.edit(model="editor", image=("a.png", IMAGE, "image/png"), prompt="a hat"),
                api.images.edit(model="editor", image=[io.BytesIO(IMAGE)], mask=io.BytesIO(MASK), prompt="a scarf"),
            )

    results = asyncio.run(edit_twice())
    assert [png_size(decoded(r)) for r in results] == [(16, 16), (16, 16)]


def test_azure_clients_use_the_deployment_route(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    api = openai.AzureOpenAI(azure_endpoint=served.base, api_key=MASTER_KEY, api_version="2025-04-01-preview",
                             max_retries=0)  # fmt: skip
    result = api.images.edit(model="editor", image=("a.png", IMAGE, "image/png"), prompt="a hat")
    assert png_size(decoded(result)) == (16, 16)
    assert "POST /openai/deployments/editor/images/edits model=editor" in served.stderr()


def test_the_alias_route_without_v1(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    files = {"image": ("a.png", IMAGE, "image/png")}
    reply = httpx.post(served.base + "/images/edits", data={"model": "editor", "prompt": "a hat"}, files=files,
                       headers={"authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert png_size(base64.b64decode(reply.json()["data"][0]["b64_json"])) == (16, 16)


# Refused before anything is sent: OpenAI's error envelope and the field it is about.


def _refused(call: Any, status: int, param: str | None, code: str | None = None) -> str:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    error = error_of(caught)
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    assert set(error) == {"message", "type", "param", "code"}
    return str(error["message"])


def test_a_model_that_cannot_edit_is_a_400_naming_the_groups_that_can(start: Any, compatible: FakeCompatible) -> None:
    served = start(proxy_config(placeholder(), on_compatible("painter", compatible, "openai/dall-e-3")))
    api = client(served)
    message = _refused(lambda: api.images.edit(model="painter", image=IMAGE, prompt="a hat"), 400, "model",
                       "model_cannot_edit")  # fmt: skip
    assert "'painter' (openai/dall-e-3) cannot edit images" in message and "editor" in message
    assert not compatible.received


def test_a_bad_mask_or_image_is_a_400_about_it(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    api = client(served)

    def edit(**kwargs: Any) -> Any:
        return lambda: api.images.edit(model="editor", prompt="a hat", **{"image": IMAGE, **kwargs})

    assert "alpha" in _refused(edit(mask=("m.png", IMAGE, "image/png")), 400, "mask")
    assert "8x8" in _refused(edit(mask=("m.png", png(8, 8, alpha=True), "image/png")), 400, "mask")
    assert "not a PNG, JPEG" in _refused(edit(image=("notes.txt", b"hello", "text/plain")), 400, "image")
    assert "takes PNG" in _refused(edit(image=("p.gif", b"GIF89a\x10\x00\x10\x00" + b"\x00" * 20, "image/gif")),
                                   400, "image")  # fmt: skip


def test_form_numbers_are_converted_and_checked(start: Any) -> None:
    served = start(proxy_config(placeholder(), litellm_settings={"drop_params": True}))
    api = client(served)

    def edit(**kwargs: Any) -> Any:
        return lambda: api.images.edit(model="editor", image=IMAGE, prompt="a hat", **kwargs)

    assert "'n' must be an integer, not 'two'" in _refused(edit(n="two"), 400, "n")
    assert "from 1 to 10" in _refused(edit(n=11), 400, "n")
    _refused(edit(output_compression="high"), 400, "output_compression")
    _refused(edit(partial_images="1.5"), 400, "partial_images")
    assert len(edit(n=3, output_compression=50, partial_images=0)().data) == 3  # numbers as text are fine


def test_stream_is_refused_before_any_upstream_call(start: Any, compatible: FakeCompatible) -> None:
    # A GPT image model on an OpenAI-shaped server streams (test_serve_answers.py); the placeholder cannot.
    served = start(proxy_config(placeholder(), on_compatible("gpt", compatible)))
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).images.edit(model="editor", image=IMAGE, prompt="a hat", stream=True)
    assert error_of(caught)["param"] == "stream"
    assert not compatible.received


def test_missing_fields(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    auth = {"authorization": f"Bearer {MASTER_KEY}"}

    def post(data: dict[str, str], files: Any) -> httpx.Response:
        return httpx.post(served.base + EDITS, data=data, files=files, headers=auth)

    image = {"image": ("a.png", IMAGE, "image/png")}
    for data, files, param in (
        ({"model": "editor"}, image, "prompt"), ({"prompt": "x"}, image, "model"),
        ({"model": "editor", "prompt": "x"}, {"mask": ("m.png", MASK, "image/png")}, "image"),
        ({"model": "editor", "prompt": "x"}, {**image, "markup": ("k.png", MASK, "image/png")}, "markup"),
        ({"model": "editor", "prompt": "x", "mask": "not a file"}, image, "mask"),
        ({"model": "editor", "prompt": "x", "n": "1", "svg[model]": "a", "svg": "b"}, image, "svg"),
    ):  # fmt: skip
        reply = post(data, files)
        assert reply.status_code == 400 and reply.json()["error"]["param"] == param, reply.text
    as_json = httpx.post(served.base + EDITS, json={"model": "editor", "prompt": "x"}, headers=auth)
    assert as_json.status_code == 415 and as_json.json()["error"]["code"] == "unsupported_media_type"


def test_the_master_key_is_checked_before_the_body_is_read(start: Any) -> None:
    served = start(proxy_config(placeholder()))
    nobody = openai.OpenAI(base_url=served.base + "/v1", api_key="sk-wrong-key-000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        nobody.images.edit(model="editor", image=IMAGE, prompt="a hat")


def test_a_cross_site_form_post_is_refused(start: Any) -> None:
    # multipart/form-data is what a web page may post to any site without asking: the Origin guard stops it.
    served = start(proxy_config(placeholder()))
    reply = httpx.post(served.base + EDITS, data={"model": "editor", "prompt": "x"},
                       files={"image": ("a.png", IMAGE, "image/png")},
                       headers={"origin": "https://evil.example", "authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "origin_not_allowed"


def test_edits_are_rate_limited_like_generations(start: Any) -> None:
    served = start(proxy_config(placeholder(rpm=1)))
    api = client(served)
    api.images.edit(model="editor", image=IMAGE, prompt="a hat")
    with pytest.raises(openai.RateLimitError) as caught:
        api.images.edit(model="editor", image=IMAGE, prompt="a hat")
    assert int(caught.value.response.headers["retry-after"]) > 10


# Uploads are limited: general_settings.max_upload_size_mb (64 MiB by default), 413 above it.


def test_the_upload_limit_is_a_setting_with_a_default() -> None:
    config = parse(proxy_config(placeholder()))
    assert config.max_upload_bytes == 64 * 1024 * 1024 and config.max_request_bytes == 1024 * 1024
    config = parse(proxy_config(placeholder(), general_settings={"max_upload_size_mb": 0.5}))
    assert config.max_upload_bytes == 512 * 1024
    with pytest.raises(Exception, match="max_upload_size_mb"):
        parse(proxy_config(placeholder(), general_settings={"max_upload_size_mb": "lots"}))


def test_an_upload_over_the_limit_is_a_413(start: Any) -> None:
    served = start(proxy_config(placeholder(), general_settings={"master_key": MASTER_KEY, "max_upload_size_mb": 0.1}))
    big = IMAGE + b"\x00" * 120_000  # still a PNG by its header
    with pytest.raises(openai.APIStatusError) as caught:
        client(served).images.edit(model="editor", image=("big.png", big, "image/png"), prompt="a hat")
    assert caught.value.status_code == 413
    error = error_of(caught)
    assert error["code"] == "request_too_large" and "max_upload_size_mb" in error["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused once the count passes the limit
        boundary = b"--b0undary\r\n"
        yield boundary + b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + IMAGE
        for _ in range(200):
            yield b"\x00" * 4096
        yield b"\r\n--b0undary--\r\n"

    reply = httpx.post(served.base + EDITS, content=chunked(), headers={
        "authorization": f"Bearer {MASTER_KEY}", "content-type": "multipart/form-data; boundary=b0undary"})  # fmt: skip
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
    assert client(served).images.edit(model="editor", image=IMAGE, prompt="a hat").data  # still serving
    assert served.proc.poll() is None


# An OpenAI-compatible server as the upstream: the multipart the provider builds, checked by the fake.


def test_edit_forwarded_to_a_compatible_server(start: Any, compatible: FakeCompatible) -> None:
    served = start(proxy_config(on_compatible("gpt", compatible, model_info={"id": "compat-1"})))
    raw = client(served).images.with_raw_response.edit(
        model="gpt", image=[("a.png", IMAGE, "image/png"), ("b.png", png(20, 20), "image/png")],
        mask=("mask.png", MASK, "image/png"), prompt="a hat", n=2, input_fidelity="high", background="opaque",
        output_format="webp", output_compression=70, size="1024x1024",
    )  # fmt: skip
    assert raw.headers["x-litellm-model-id"] == "compat-1"
    assert len(raw.parse().data) == 2
    (got,) = compatible.received
    assert got.path == "/v1/images/edits"
    assert [p.content for p in got.files("image", "image[]")] == [IMAGE, png(20, 20)]
    assert [p.content for p in got.files("mask")] == [MASK]
    assert got.field("model") == "gpt-image-2" and got.field("prompt") == "a hat" and got.field("n") == "2"
    assert got.field("output_compression") == "70" and got.field("background") == "opaque"
    # gpt-image-2 has none (openai 3.57.0: "omit this parameter"), but a server of the user's decides: sent as
    # given without drop_params (test_serve_openai_suite.py), left out with it
    assert got.field("input_fidelity") == "high"


def test_a_failed_edit_falls_back(start: Any, compatible: FakeCompatible) -> None:
    compatible.fail = [(500, "server_error")]
    served = start(proxy_config(on_compatible("gpt", compatible), placeholder(),
                                router={"fallbacks": [{"gpt": ["editor"]}]}))  # fmt: skip
    raw = client(served).images.with_raw_response.edit(model="gpt", image=IMAGE, prompt="a hat")
    assert raw.status_code == 200 and len(compatible.received) == 1
    assert png_size(decoded(raw.parse())) == (16, 16)


# Variations: forwarded to OpenAI-compatible servers; OpenAI's own endpoint retired them.


def test_a_variation_is_forwarded_to_a_compatible_server(start: Any, compatible: FakeCompatible) -> None:
    served = start(proxy_config(on_compatible("varied", compatible, "openai/my-variation-model")))
    raw = client(served).images.with_raw_response.create_variation(
        model="varied", image=("otter.png", IMAGE, "image/png"), n=2, size="256x256", response_format="b64_json",
        user="user-1",
    )  # fmt: skip
    assert raw.status_code == 200 and raw.headers["x-litellm-model-id"]
    assert len(raw.parse().data) == 2
    (got,) = compatible.received
    assert got.path == "/v1/images/variations" and got.headers["authorization"] == f"Bearer {KEY}"
    (image,) = got.files("image")
    assert (image.filename, image.content_type, image.content) == ("otter.png", "image/png", IMAGE)
    assert {p.name: p.text for p in got.parts if p.filename is None} == {
        "model": "my-variation-model",
        "n": "2",
        "size": "256x256",
        "response_format": "b64_json",
        "user": "user-1",
    }
    assert MASTER_KEY not in str(got.headers)


def test_a_variation_is_retried_on_another_deployment(start: Any, compatible: FakeCompatible) -> None:
    compatible.fail = [(500, "server_error")]
    served = start(proxy_config(
        on_compatible("varied", compatible, "openai/v1", model_info={"id": "first"}),
        on_compatible("varied", compatible, "openai/v1", model_info={"id": "second"}),
        router={"num_retries": 1},
    ))  # fmt: skip
    raw = client(served).images.with_raw_response.create_variation(model="varied", image=IMAGE)
    assert raw.status_code == 200 and len(compatible.received) == 2
    assert raw.headers["x-litellm-model-id"] in ("first", "second")


def test_an_upstream_error_reaches_the_client_in_the_envelope(start: Any, compatible: FakeCompatible) -> None:
    served = start(proxy_config(on_compatible("varied", compatible, "openai/v1")))
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).images.create_variation(model="varied", image=IMAGE, extra_body={"n": "0"})
    assert "'n' must be an integer from 1 to 10" in error_of(caught)["message"]
    compatible.fail = [(400, "invalid_image_file")]
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).images.create_variation(model="varied", image=IMAGE)
    assert "scripted failure" in error_of(caught)["message"]


def test_openais_own_endpoint_has_no_variations(start: Any) -> None:
    served = start(proxy_config(
        deployment("dalle", "openai/dall-e-2", api_key="sk-openai-test-key-0000000"),
        deployment("dalle-base", "openai/dall-e-2", api_key="sk-openai-test-key-0000000",
                   api_base="https://api.openai.com/v1"),
        placeholder(),
    ))  # fmt: skip
    api = client(served)
    for model in ("dalle", "dalle-base"):
        message = _refused(lambda m=model: api.images.create_variation(model=m, image=IMAGE), 400, "model",
                           "model_retired")  # fmt: skip
        assert "retired" in message and "dall-e-2" in message and "/v1/images/edits" in message
    message = _refused(lambda: api.images.create_variation(model="editor", image=IMAGE), 400, "model",
                       "unsupported_model")  # fmt: skip
    assert "OpenAI-compatible" in message


def test_a_variation_takes_only_its_fields(start: Any, compatible: FakeCompatible) -> None:
    served = start(proxy_config(on_compatible("varied", compatible, "openai/v1")))
    api = client(served)
    _refused(lambda: api.images.create_variation(model="varied", image=IMAGE, extra_body={"prompt": "x"}), 400,
             "prompt", "unsupported_parameter")  # fmt: skip
    assert not compatible.received


def test_an_upload_imggen_cannot_read_goes_to_a_compatible_server_as_it_came(
    start: Any, compatible: FakeCompatible
) -> None:
    # An OpenAI-compatible server of one's own decides what it reads (LiteLLM's proxy forwards uploads
    # unread); a known endpoint refuses before sending (test_a_bad_mask_or_image_is_a_400_about_it).
    served = start(proxy_config(on_compatible("varied", compatible, "openai/v1"), on_compatible("gpt", compatible)))
    api = client(served)
    with pytest.raises(openai.BadRequestError) as caught:
        api.images.create_variation(model="varied", image=("a.txt", b"text", "text/plain"))
    assert "Invalid image file" in error_of(caught)["message"]  # the server's answer
    with pytest.raises(openai.BadRequestError):
        api.images.edit(model="gpt", prompt="a hat", image=("b.heic", b"\x00\x00\x00\x18ftypheic", "image/heic"))
    variation, edit = compatible.received
    assert [(p.filename, p.content_type, p.content) for p in variation.files("image")] == [
        ("a.txt", "text/plain", b"text")
    ]
    assert [(p.filename, p.content_type) for p in edit.files("image")] == [("b.heic", "image/heic")]
