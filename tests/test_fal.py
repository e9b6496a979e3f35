"""fal's queue API against its fake (tests/fakequeues.py): submit, status polls, the result, the CDN
download without the key, content filters, cancel and resume. In-process and fast: polls wait 10 ms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import imggen
from conftest import run_cli
from fakequeues import FAL_KEY, SECRETS, Answer, FakeQueues, drive, submitted
from imggen.catalog import parse_model
from imggen.errors import AuthError, BadResponseError, ContentFilterError, NetworkError, ProviderError, UsageError
from imggen.providers import fal, get_provider
from imggen.settings import Resolved, resolve
from imggen.types import ImageRequest

MODEL = "fal/fal-ai/flux/dev"


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQueues]:
    monkeypatch.setattr(fal, "WAIT", 0.01)
    with FakeQueues() as server:
        yield server


def generate(queues: FakeQueues, model: str = MODEL, **kwargs: object) -> imggen.ImageResponse:
    return imggen.generate("a red fox", model, api_key=FAL_KEY, api_base=queues.fal_base, **kwargs)  # type: ignore[arg-type]


def test_submits_polls_and_collects_then_downloads_without_the_key(queues: FakeQueues, tmp_path: Path) -> None:
    response = generate(queues, n=2, size="1024x1024", seed=7)
    submit = queues.calls("POST", "/fal/fal-ai/flux/dev")[0]
    assert submit.headers["authorization"] == f"Key {FAL_KEY}"
    # -n 2 with a seed is two requests of one image each, seeds 7 and 8 (the plan's rule)
    assert sorted(c.body["seed"] for c in queues.calls("POST", "/fal/")) == [7, 8]
    assert submit.body["image_size"] == "square_hd" and submit.body["num_images"] == 1
    statuses = queues.calls("GET", "/status")
    assert statuses and all("/fal/fal-ai/flux/requests/" in s.path for s in statuses)  # owner/app only
    assert len(queues.calls("GET", "/requests/")) - len(statuses) == 2  # one result fetch per job
    assert [i.url.startswith(queues.root + "/cdn/") for i in response.data] == [True, True]
    assert {i.size for i in response.data} == {"1024x768"}
    assert len(queues.calls("GET", "/cdn/")) == 2  # downloaded at once, by the engine (item 9)
    paths = response.save(tmp_path / "out")
    assert len(paths) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    downloads = queues.calls("GET", "/cdn/")
    assert len(downloads) == 2 and all("authorization" not in d.headers for d in downloads)


def test_any_fal_id_passes_through_with_its_size_as_width_and_height(queues: FakeQueues) -> None:
    queues.polls = 0
    response = generate(queues, "fal/fal-ai/hidream-i1-full", size="1000x704", params={"num_inference_steps": 12})
    body = queues.calls("POST", "/fal/fal-ai/hidream-i1-full")[0].body
    assert body["image_size"] == {"width": 1000, "height": 704} and body["num_inference_steps"] == 12
    assert len(response.data) == 1
    with pytest.raises(UsageError, match="not a fal model id"):
        generate(queues, "fal/fal-ai/../../admin")


def test_an_aspect_ratio_model_gets_its_ratio(queues: FakeQueues) -> None:
    queues.polls = 0
    generate(queues, "fal/fal-ai/flux-pro/v1.1-ultra", size="1920x1080")
    body = queues.calls("POST", "/fal/fal-ai/flux-pro/v1.1-ultra")[0].body
    assert body["aspect_ratio"] == "16:9" and "image_size" not in body


def test_flagged_images_and_refused_prompts_are_content_filter_errors(queues: FakeQueues) -> None:
    queues.nsfw = True
    with pytest.raises(ContentFilterError, match="flagged as NSFW"):
        generate(queues)
    queues.nsfw = False
    with pytest.raises(ContentFilterError, match="flagged by a content checker") as refused:
        imggen.generate("flagged prompt", "fal/fal-ai/flux/schnell", api_key=FAL_KEY, api_base=queues.fal_base)
    assert refused.value.status == 422 and refused.value.code == "content_policy_violation"


def test_a_wrong_key_is_an_auth_error_and_never_echoed(queues: FakeQueues) -> None:
    with pytest.raises(AuthError) as caught:
        imggen.generate("x", MODEL, api_key="fal-wrong-key-123456", api_base=queues.fal_base)
    assert "fal-wrong-key-123456" not in str(caught.value) and caught.value.status == 401


def test_poll_urls_on_another_host_are_not_followed(queues: FakeQueues) -> None:
    queues.foreign_urls = True  # the answer points status/response/cancel at 203.0.113.9
    response = generate(queues)
    assert len(response.data) == 1
    assert queues.calls("GET", "/status")  # rebuilt from the request id on the host submitted to


def test_a_rate_limited_poll_is_retried(queues: FakeQueues) -> None:
    queues.script("GET", "/status", Answer(429, {"detail": "Too many requests"}, {"Retry-After": "0"}))
    assert len(generate(queues).data) == 1


def test_the_job_is_held_to_the_timeout(queues: FakeQueues) -> None:
    queues.polls = 10_000
    with pytest.raises(NetworkError, match="within"):
        generate(queues, timeout=0.3, retries=0)


def settings_for(queues: FakeQueues, model: str = MODEL) -> Resolved:
    return resolve(model=model, flags={"api_key": FAL_KEY, "api_base": queues.fal_base}, env={})


def test_a_job_has_an_id_a_status_and_a_cancel_request(queues: FakeQueues) -> None:
    provider, settings = get_provider("fal"), settings_for(queues)
    request = ImageRequest("a red fox", parse_model(MODEL))
    pending = submitted(provider, request, settings)
    assert pending.job_id and pending.status == "queued" and 0 < pending.wait < 0.2
    assert pending.cancel is not None and pending.cancel.method == "PUT"
    assert pending.cancel.url.endswith(f"/fal/fal-ai/flux/requests/{pending.job_id}/cancel")
    assert pending.cancel.headers == {"Authorization": f"Key {FAL_KEY}"}
    answer = httpx.put(pending.cancel.url, headers=pending.cancel.headers)
    assert answer.status_code == 202 and queues.jobs[pending.job_id].status == "canceled"
    with pytest.raises(ProviderError, match="cancelled"):
        drive(provider, request, settings, pending)


def test_resume_collects_a_submitted_job_instead_of_paying_again(queues: FakeQueues) -> None:
    provider, settings = get_provider("fal"), settings_for(queues)
    request = ImageRequest("a red fox", parse_model(MODEL))
    job_id = submitted(provider, request, settings).job_id
    assert job_id
    resumed = provider.resume_job(request, job_id, settings)
    assert resumed is not None and resumed.job_id == job_id and resumed.wait == 0
    result = drive(provider, request, settings, resumed)
    assert len(result.images) == 1 and result.request_id == job_id
    assert len(queues.calls("POST", "/fal/")) == 1  # nothing submitted twice
    queues.forget = True  # fal kept the result an hour; after that the job is gone
    with pytest.raises(ProviderError, match="not found") as gone:
        drive(provider, request, settings, provider.resume_job(request, job_id, settings))  # type: ignore[arg-type]
    assert gone.value.status == 404


def test_an_unknown_status_or_a_result_without_images_is_a_bad_response(queues: FakeQueues) -> None:
    queues.script("GET", "/status", Answer(200, {"status": "EXPLODED"}))
    with pytest.raises(BadResponseError, match="unknown job status"):
        generate(queues, retries=0)
    queues.polls = 0
    queues.script("GET", "/requests/", Answer(200, {"status": "COMPLETED"}), Answer(200, {"images": []}))
    with pytest.raises(BadResponseError, match="no images"):
        generate(queues, retries=0)


def test_cli_dry_run_and_a_run_save_the_images_and_show_no_key(queues: FakeQueues, tmp_path: Path) -> None:
    queues.polls = 0  # one status poll (COMPLETED), at the module's own wait
    env = {"FAL_KEY": FAL_KEY}
    dry = run_cli("generate", "a red fox", "-m", MODEL, "--dry-run", env=env)
    assert dry.code == 0 and "https://queue.fal.run/fal-ai/flux/dev" in dry.stdout
    ran = run_cli("generate", "a red fox", "-m", MODEL, "--api-base", queues.fal_base, "-o", str(tmp_path), env=env)
    assert ran.code == 0, ran.everything()
    assert len(list(tmp_path.glob("*.png"))) == 1
    for secret in SECRETS:
        assert secret not in dry.everything() and secret not in ran.everything()
