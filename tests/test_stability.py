"""stability/: Stability AI's platform API against a real HTTP fake on 127.0.0.1 (tests/fakestability.py),
which takes only the forms the real API takes. In-process through the Python API, with a few CLI runs
(--dry-run, models, config explain) and one `imggen serve`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import imggen
from conftest import assert_no_secret, run_cli
from fakeserver import solid_png
from fakestability import (
    KEY,
    MODERATED,
    NO_CREDITS,
    RATE_LIMITED,
    SERVER_ERROR,
    Answer,
    FakeStability,
    image,
)
from imggen.catalog import estimate_cost, lookup, parse_model
from imggen.errors import AuthError, BadResponseError, ContentFilterError, GenerationError, ProviderError, UsageError
from imggen.providers import get_provider
from imggen.providers import stability as module
from imggen.settings import resolve
from imggen.types import ImageRequest

PHOTO = solid_png(64, 64, False, b"\x10\x80\xf0")
MASK = solid_png(64, 64, True, b"\x00\x00\x00\x00")  # all transparent: change everything


def failure(prompt: str, **keywords: Any) -> GenerationError:
    """The error a one-request run raises."""
    with pytest.raises(GenerationError) as caught:
        imggen.generate(prompt, retries=0, **keywords)
    return caught.value


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStability]:
    monkeypatch.setattr(module, "POLL_WAIT", 0.01)
    with FakeStability() as server:
        monkeypatch.setenv("STABILITY_API_KEY", KEY)
        monkeypatch.setenv("STABILITY_API_BASE", server.url)
        yield server


def test_core_sends_a_multipart_form_and_reads_the_image_and_its_seed(fake: FakeStability) -> None:
    result = imggen.generate("a red fox", model="stability/stable-image-core", size="1792x1024", style="anime",
                             seed=5, negative_prompt="blur")  # fmt: skip
    assert not result.errors and len(result.data) == 1
    sent = fake.posts()[0]
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.headers["accept"] == "image/*" and sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.fields == {"prompt": "a red fox", "aspect_ratio": "16:9", "seed": "5", "negative_prompt": "blur",
                           "style_preset": "anime"}  # fmt: skip
    picture = result.data[0]
    assert picture.seed == 5 and picture.size == "16:9" and picture.image_bytes().startswith(b"\x89PNG")
    assert result.cost_usd == pytest.approx(0.03)
    assert any("aspect ratio 16:9" in note for note in result.notes)


def test_the_seed_stability_chose_is_kept(fake: FakeStability) -> None:
    result = imggen.generate("a red fox", model="stability/stable-image-ultra", n=2)
    assert [image.seed for image in result.data] == [1234567, 1234567]
    assert len(fake.posts()) == 2  # one image per request
    assert result.cost_usd == pytest.approx(0.16)


def test_sd3_models_go_to_generate_sd3_with_their_model_field(fake: FakeStability) -> None:
    imggen.generate("a red fox", model="stability/sd3.5-medium", aspect_ratio="9:16", cfg_scale=4)
    sent = fake.posts()[0]
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.fields == {"model": "sd3.5-medium", "prompt": "a red fox", "aspect_ratio": "9:16", "cfg_scale": "4"}


def test_the_turbo_model_is_sent_no_negative_prompt(fake: FakeStability) -> None:
    result = imggen.generate("a fox", model="stability/sd3.5-large-turbo", negative_prompt="blur")
    assert not result.errors
    assert "negative_prompt" not in fake.posts()[0].fields
    assert any("--negative-prompt not sent" in note for note in result.notes)


def test_an_sd3_id_the_catalog_lacks_follows_the_family(fake: FakeStability) -> None:
    ref = parse_model("stability/sd3.5-large-next")
    assert ref.info is not None and ref.info.price is None
    error = failure("a fox", model="stability/sd3.5-large-next")
    # sent to generate/sd3 as its model, which the fake (as Stability) does not know
    assert error.status == 400 and error.message.startswith("400 bad_request: model: must be one of")
    assert fake.posts()[0].fields["model"] == "sd3.5-large-next"


def test_an_unknown_parameter_or_service_is_refused_before_sending(fake: FakeStability) -> None:
    with pytest.raises(UsageError, match="-p steps is not a stability/stable-image-core parameter"):
        imggen.generate("a fox", model="stability/stable-image-core", steps=30)
    with pytest.raises(UsageError, match="not a Stability AI service"):
        imggen.generate("a fox", model="stability/stable-video")
    assert fake.seen == []


def test_a_blurred_image_is_a_content_filter_error(fake: FakeStability) -> None:
    error = failure("a blurry thing", model="stability/stable-image-core")
    assert isinstance(error, ContentFilterError) and error.code == "CONTENT_FILTERED"


def test_moderation_credits_and_bad_requests_map_to_imggens_errors(fake: FakeStability) -> None:
    error = failure("something forbidden", model="stability/stable-image-core")
    assert isinstance(error, ContentFilterError) and error.status == 403 and error.code == "content_moderation"
    assert error.request_id == "err4030123456789abcdef"
    fake.script(NO_CREDITS)
    error = failure("a fox", model="stability/stable-image-core")
    assert type(error) is ProviderError and error.status == 402 and "credits" in (error.hint or "")
    error = failure("a fox", model="stability/stable-image-core", api_key="sk-wrong-key-0000")
    assert isinstance(error, AuthError) and error.status == 401
    error = failure("a fox", model="stability/stable-image-core", output_format="gif")
    assert error.status == 400 and "output_format" in error.message


def test_rate_limits_and_server_errors_are_retried(fake: FakeStability, monkeypatch: pytest.MonkeyPatch) -> None:
    from imggen import transport

    monkeypatch.setattr(transport, "backoff", lambda attempt: 0.01)
    fake.script(RATE_LIMITED, SERVER_ERROR)
    result = imggen.generate("a fox", model="stability/stable-image-core", retries=2)
    assert not result.errors and len(result.data) == 1 and len(fake.posts()) == 3


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, {"content-type": "image/png", "finish-reason": "SUCCESS"}, b"\x89PNG" + b"\0" * 99, truncate=4),
        Answer(200, {"content-type": "text/html"}, b"<html>gateway</html>"),
        Answer(200, {"content-type": "image/png", "finish-reason": "ERROR"}, b"\x89PNG"),
        Answer(200, {"content-type": "application/json"}, b'{"unexpected": true}'),
    ],
    ids=["truncated", "html", "finish-reason-error", "json-without-image"],
)
def test_a_hostile_answer_fails_that_request_alone(fake: FakeStability, answer: Answer) -> None:
    fake.script(answer, image(seed=3))
    result = imggen.generate("a fox", model="stability/stable-image-core", retries=0, n=2)
    assert len(result.data) == 1 and len(result.errors) == 1 and result.data[0].seed == 3
    assert isinstance(result.errors[0], GenerationError)


def test_inpaint_sends_the_mask_white_where_to_change(fake: FakeStability) -> None:
    result = imggen.edit("a cat", PHOTO, mask=MASK, model="stability/inpaint", grow_mask=10)
    assert not result.errors, result.errors
    sent = fake.posts()[0]
    assert sent.path == "/v2beta/stable-image/edit/inpaint"
    assert sent.fields == {"prompt": "a cat", "grow_mask": "10"}
    assert sent.files["image"][2] == PHOTO
    from imggen.providers.placeholder_png import decode_png

    decoded = decode_png(sent.files["mask"][2])
    assert decoded is not None and decoded[2] == 1 and set(decoded[3][0]) == {255}


def test_search_and_replace_takes_the_mask_prompt_as_search_prompt(fake: FakeStability) -> None:
    with pytest.raises(UsageError, match="needs --mask-prompt"):
        imggen.edit("a cat", PHOTO, model="stability/search-and-replace")
    imggen.edit("a cat", PHOTO, model="stability/search-and-replace", mask_prompt="the dog")
    assert fake.posts()[0].fields == {"prompt": "a cat", "search_prompt": "the dog"}


def test_erase_and_remove_background_send_no_prompt(fake: FakeStability) -> None:
    imggen.edit("ignored", PHOTO, model="stability/remove-background", output_format="webp")
    imggen.edit("ignored", PHOTO, mask=MASK, model="stability/erase")
    first, second = fake.posts()
    assert first.fields == {"output_format": "webp"} and set(first.files) == {"image"}
    assert second.fields == {} and set(second.files) == {"image", "mask"}


def test_outpaint_needs_a_direction(fake: FakeStability) -> None:
    with pytest.raises(UsageError, match="how far to extend"):
        imggen.edit("a beach", PHOTO, model="stability/outpaint")
    imggen.edit("a beach", PHOTO, model="stability/outpaint", left=200)
    assert fake.posts()[0].fields == {"prompt": "a beach", "left": "200"}


def test_image_to_image_on_sd3_and_ultra(fake: FakeStability) -> None:
    imggen.edit("as a painting", PHOTO, model="stability/sd3.5-large")
    imggen.edit("as a painting", PHOTO, model="stability/stable-image-ultra", strength=0.3)
    sd3, ultra = fake.posts()
    assert sd3.fields == {"model": "sd3.5-large", "prompt": "as a painting", "mode": "image-to-image",
                          "strength": "0.7"}  # fmt: skip
    assert ultra.path.endswith("/generate/ultra") and ultra.fields == {"prompt": "as a painting", "strength": "0.3"}


def test_relight_is_a_job_polled_until_its_image(fake: FakeStability) -> None:
    result = imggen.edit("a sunset beach", [PHOTO, PHOTO], model="stability/replace-background-and-relight")
    assert not result.errors, result.errors
    assert result.data[0].seed == 99
    post, *polls = fake.seen
    assert post.fields == {"background_prompt": "a sunset beach"}
    assert set(post.files) == {"subject_image", "background_reference"}
    assert [p.method for p in polls] == ["GET"] * 3  # two 202s, then the image
    assert all(p.headers["authorization"] == f"Bearer {KEY}" and p.headers["accept"] == "image/*" for p in polls)


def test_a_job_is_resumed_from_its_id(fake: FakeStability) -> None:
    provider = get_provider("stability")
    settings = resolve(model="stability/replace-background-and-relight", flags={}, env=None)
    request = ImageRequest("x", parse_model("stability/replace-background-and-relight"))
    fake.jobs["job0001"] = 0
    job = provider.resume_job(request, "job0001", settings)
    assert job is not None and job.job_id == "job0001"
    assert job.request.url == f"{fake.url}/v2beta/results/job0001"
    response = httpx.get(job.request.url, headers=job.request.headers)
    result = provider.parse_image(request, response)
    assert result.images[0].seed == 99
    response = httpx.get(job.request.url, headers=job.request.headers)  # collected: gone
    assert response.status_code == 404


def test_a_json_answer_is_read_too() -> None:
    provider = get_provider("stability")
    request = ImageRequest("x", parse_model("stability/stable-image-core"))
    body = {"image": "iVBORw0KGgo=", "finish_reason": "CONTENT_FILTERED", "seed": 3}
    response = httpx.Response(200, json=body, request=httpx.Request("POST", "https://api.stability.ai/v2beta/x"))
    with pytest.raises(ContentFilterError):
        provider.parse_response(request, response)
    response = httpx.Response(200, json=[1], request=httpx.Request("POST", "https://api.stability.ai/v2beta/x"))
    with pytest.raises(BadResponseError):
        provider.parse_response(request, response)


def test_the_request_is_built_the_same_each_time() -> None:
    provider = get_provider("stability")
    settings = resolve(model="stability/stable-image-core", flags={"api_key": KEY}, env={})
    request = ImageRequest("a fox", parse_model("stability/stable-image-core"), aspect_ratio="1:1")
    first, second = (provider.build_request(request, settings) for _ in range(2))
    assert first.content == second.content and first.headers == second.headers
    assert KEY not in json.dumps(first.shown_headers())


def test_no_key_is_a_config_error_and_a_dry_run_shows_none() -> None:
    from imggen.errors import ConfigError

    provider = get_provider("stability")
    settings = resolve(model="stability/stable-image-core", flags={}, env={})
    request = ImageRequest("a fox", parse_model("stability/stable-image-core"))
    with pytest.raises(ConfigError, match="Stability AI API key"):
        provider.build_request(request, settings)
    assert "authorization" not in provider.build_request(request, settings, dry_run=True).headers


def test_catalog_prices_and_rules() -> None:
    core = lookup("stability/stable-image-core")
    assert core is not None and estimate_cost(core, 4, None, None) == pytest.approx(0.12)
    assert all(lookup(f"stability/{m}") is not None for m in module.SERVICES)
    assert set(module.SERVICES) == {m.model_id for m in imggen.catalog.all_models() if m.provider == "stability"}


def test_cli_dry_run_models_and_config_explain(tmp_path: Any) -> None:
    env = {"STABILITY_API_KEY": KEY}
    (tmp_path / "in.png").write_bytes(PHOTO)
    (tmp_path / "mask.png").write_bytes(MASK)
    dry = run_cli("edit", "a cat", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                  "-m", "stability/inpaint", "--dry-run", env=env)  # fmt: skip
    assert dry.code == 0, dry.everything()
    assert "/v2beta/stable-image/edit/inpaint" in dry.stdout and "<in.png, image/png, " in dry.stdout
    assert_no_secret(dry.everything())
    assert KEY not in dry.everything()
    models = run_cli("models", env=env)
    assert models.code == 0 and "stability/stable-image-ultra" in models.stdout, models.everything()
    explain = run_cli("config", "explain", "-m", "stability/sd3.5-large", env=env)
    assert explain.code == 0, explain.everything()
    assert "STABILITY_API_KEY" in explain.everything() and KEY not in explain.everything()


def test_imggen_serve_answers_openai_shaped_b64_json(fake: FakeStability, start: Any) -> None:
    from servehelp import MASTER_KEY, deployment, proxy_config

    served = start(
        proxy_config(
            deployment("sd", "stability/stable-image-core", api_key=KEY, api_base=fake.url),
            deployment("sd-edit", "stability/sd3.5-large", api_key=KEY, api_base=fake.url),
        )
    )
    answer = served.post({"model": "sd", "prompt": "a fox", "size": "1024x1024"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert len(data) == 1 and data[0]["b64_json"].startswith("iVBOR")
    assert fake.posts()[0].fields["aspect_ratio"] == "1:1"
    edited = httpx.post(served.base + "/v1/images/edits", data={"model": "sd-edit", "prompt": "as a painting"},
                        files={"image": ("in.png", PHOTO, "image/png")},
                        headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"][0]["b64_json"].startswith("iVBOR")
    assert fake.posts()[1].fields["mode"] == "image-to-image" and fake.posts()[1].files["image"][2] == PHOTO
    assert KEY not in served.stderr()


def test_concurrent_requests_are_independent(fake: FakeStability) -> None:
    async def many() -> list[Any]:
        return await asyncio.gather(*(imggen.agenerate(f"fox {i}", model="stability/stable-image-core", seed=i + 1)
                                      for i in range(6)))  # fmt: skip

    results = asyncio.run(many())
    assert sorted(r.data[0].seed for r in results) == [1, 2, 3, 4, 5, 6]
    assert MODERATED.status == 403  # the fake's scripted answers stay importable for other tests
