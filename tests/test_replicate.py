"""Replicate predictions against the fake (tests/fakequeues.py): `Prefer: wait` first, polling after,
output URLs downloaded without the token, safety failures, cancel and resume. In-process and fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import imggen
from conftest import run_cli
from fakequeues import FAL_KEY, REPLICATE_TOKEN, SECRETS, Answer, FakeQueues, drive, submitted
from imggen.catalog import parse_model
from imggen.errors import AuthError, ContentFilterError, NetworkError, ProviderError, UsageError
from imggen.providers import get_provider, replicate
from imggen.settings import Resolved, resolve
from imggen.types import ImageRequest
from servehelp import deployment, proxy_config

MODEL = "replicate/black-forest-labs/flux-schnell"


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQueues]:
    monkeypatch.setattr(replicate, "WAIT", 0.01)
    with FakeQueues() as server:
        yield server


def generate(queues: FakeQueues, model: str = MODEL, **kwargs: object) -> imggen.ImageResponse:
    return imggen.generate("a red fox", model, api_key=REPLICATE_TOKEN, api_base=queues.replicate_base, **kwargs)  # type: ignore[arg-type]


def settings_for(queues: FakeQueues, model: str = MODEL) -> Resolved:
    return resolve(model=model, flags={"api_key": REPLICATE_TOKEN, "api_base": queues.replicate_base}, env={})


def test_prefer_wait_answers_the_output_at_once(queues: FakeQueues, tmp_path: Path) -> None:
    queues.polls = 0
    response = generate(queues, n=3, size="1792x1024")
    create = queues.calls("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")
    assert len(create) == 1 and create[0].headers["prefer"] == "wait=60"
    assert create[0].headers["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert create[0].body == {"input": {"prompt": "a red fox", "num_outputs": 3, "aspect_ratio": "16:9"}}
    assert not queues.calls("GET", "/v1/predictions/")  # nothing to poll
    assert len(response.data) == 3
    assert len(queues.calls("GET", "/cdn/")) == 3  # downloaded at once: Replicate deletes them in an hour
    paths = response.save(tmp_path / "out")
    assert len(paths) == 3
    assert all("authorization" not in d.headers for d in queues.calls("GET", "/cdn/"))


def test_a_prediction_still_running_is_polled_to_the_end(queues: FakeQueues) -> None:
    queues.polls = 3
    response = generate(queues)
    polls = queues.calls("GET", "/v1/predictions/")
    assert len(polls) == 4 and all(p.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}" for p in polls)
    assert len(response.data) == 1 and response.data[0].request_id == polls[0].path.rsplit("/", 1)[1]


def test_a_version_goes_to_predictions_with_the_version(queues: FakeQueues) -> None:
    queues.polls = 0
    version = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"
    generate(queues, f"replicate/someone/sdxl-variant:{version}", size="1024x768", params={"guidance": 3})
    create = queues.calls("POST", "/replicate/v1/predictions")[0]
    assert create.body == {"version": version, "input": {"prompt": "a red fox", "width": 1024, "height": 768,
                                                         "guidance": 3}}  # fmt: skip
    with pytest.raises(UsageError, match="not a Replicate model"):
        generate(queues, "replicate/just-a-name")


def test_one_uri_output_and_one_image_per_prediction(queues: FakeQueues) -> None:
    queues.polls = 0
    response = generate(queues, "replicate/black-forest-labs/flux-1.1-pro-ultra", n=2)
    creates = queues.calls("POST", "/flux-1.1-pro-ultra/predictions")
    assert len(creates) == 2 and all("num_outputs" not in c.body["input"] for c in creates)
    assert [i.index for i in response.data] == [1, 2]


def test_nsfw_failures_are_content_filter_errors(queues: FakeQueues) -> None:
    queues.polls = 1
    with pytest.raises(ContentFilterError, match="NSFW") as caught:
        imggen.generate("flagged prompt", MODEL, api_key=REPLICATE_TOKEN, api_base=queues.replicate_base)
    assert caught.value.request_id


def test_errors_map_to_imggen_errors_without_the_token(queues: FakeQueues) -> None:
    with pytest.raises(AuthError) as caught:
        imggen.generate("x", MODEL, api_key="r8_wrong_token_123456", api_base=queues.replicate_base)
    assert "r8_wrong_token_123456" not in str(caught.value)
    with pytest.raises(ProviderError, match="Additional property") as invalid:
        generate(queues, params={"nonsense": 1})
    assert invalid.value.status == 422
    queues.script("POST", "/predictions", Answer(402, {"title": "Insufficient credit", "detail": "Add credit"}))
    with pytest.raises(ProviderError, match="credit") as paid:
        generate(queues, retries=0)
    assert paid.value.hint and "credit" in paid.value.hint


def test_poll_urls_on_another_host_are_not_followed(queues: FakeQueues) -> None:
    queues.foreign_urls = True
    assert len(generate(queues).data) == 1


def test_the_job_is_held_to_the_timeout(queues: FakeQueues) -> None:
    queues.polls = 10_000
    with pytest.raises(NetworkError, match="within"):
        generate(queues, timeout=0.3, retries=0)
    hold = queues.calls("POST", "/predictions")[0].headers["prefer"]
    assert hold == "wait=1"  # never held past the run's deadline


def test_a_job_has_an_id_a_status_and_a_cancel_request(queues: FakeQueues) -> None:
    provider, settings = get_provider("replicate"), settings_for(queues)
    request = ImageRequest("a red fox", parse_model(MODEL))
    pending = submitted(provider, request, settings)
    assert pending.job_id and pending.status == "queued" and 0 < pending.wait < 0.2
    assert pending.cancel is not None and pending.cancel.method == "POST"
    assert pending.cancel.url == f"{queues.replicate_base}/v1/predictions/{pending.job_id}/cancel"
    assert pending.cancel.headers == {"Authorization": f"Bearer {REPLICATE_TOKEN}"}
    assert httpx.post(pending.cancel.url, headers=pending.cancel.headers).json()["status"] == "canceled"
    with pytest.raises(ProviderError, match="canceled"):
        drive(provider, request, settings, pending)


def test_resume_reads_the_prediction_again_instead_of_paying_again(queues: FakeQueues) -> None:
    provider, settings = get_provider("replicate"), settings_for(queues)
    request = ImageRequest("a red fox", parse_model(MODEL))
    job_id = submitted(provider, request, settings).job_id
    assert job_id
    resumed = provider.resume_job(request, job_id, settings)
    assert resumed is not None and resumed.request.url.endswith(f"/v1/predictions/{job_id}")
    result = drive(provider, request, settings, resumed)
    assert len(result.images) == 1 and result.request_id == job_id
    assert len(queues.calls("POST", "/predictions")) == 1


def test_cli_run_saves_the_images_and_shows_no_token(queues: FakeQueues, tmp_path: Path) -> None:
    queues.polls = 0
    env = {"REPLICATE_API_TOKEN": REPLICATE_TOKEN}
    ran = run_cli("generate", "a red fox", "-m", MODEL, "-n", "2", "--api-base", queues.replicate_base + "/v1",
                  "-o", str(tmp_path), env=env)  # fmt: skip
    assert ran.code == 0, ran.everything()
    assert len(list(tmp_path.glob("*.png"))) == 2
    assert all(secret not in ran.everything() for secret in SECRETS)


def test_the_proxy_serves_fal_and_replicate_deployments(queues: FakeQueues, start: Any) -> None:
    """`imggen serve` with litellm_params models `fal/…` and `replicate/…`: nothing outside the provider
    modules and the catalog names them. The answers carry the CDN URLs, as LiteLLM's do."""
    queues.polls = 0
    config = proxy_config(
        deployment("fal-dev", "fal/fal-ai/flux/dev", api_key="os.environ/FAL_KEY", api_base=queues.fal_base),
        deployment("schnell", MODEL, api_key="os.environ/REPLICATE_API_TOKEN", api_base=queues.replicate_base),
    )
    served = start(config, env={"FAL_KEY": FAL_KEY, "REPLICATE_API_TOKEN": REPLICATE_TOKEN})
    for name in ("fal-dev", "schnell"):
        answer = served.post({"model": name, "prompt": "a red fox", "size": "1024x1024", "seed": 3})
        assert answer.status_code == 200, answer.text
        (image,) = answer.json()["data"]
        assert image["url"].startswith(queues.root + "/cdn/")
        assert not any(secret in answer.text for secret in SECRETS)
    assert queues.calls("POST", "/fal/fal-ai/flux/dev")[0].body["image_size"] == "square_hd"
    assert queues.calls("POST", "/flux-schnell/predictions")[0].body["input"]["aspect_ratio"] == "1:1"
    assert not any(secret in served.stderr() for secret in SECRETS)
