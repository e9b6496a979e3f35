"""Black Forest Labs (bfl/): the submit as BFL takes it, polling the polling URL with the key, the
signed result downloaded at once without the key, moderation as a content-filter error, BFL's error
shapes, edits with base64 input images. Against tests/fakebfl.py, in process, polls 10 ms apart."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imggen
from fakebfl import KEY, FakeBfl
from fakeserver import TINY_PNG
from imggen.errors import AuthError, BadResponseError, ContentFilterError, ProviderError


@pytest.fixture
def bfl(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBfl]:
    with FakeBfl() as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("IMGGEN_POLL_INTERVAL", "0.01")
        yield fake


def test_a_job_is_submitted_polled_and_its_result_downloaded_without_the_key(bfl: FakeBfl) -> None:
    bfl.statuses = ["Pending", "Pending"]
    response = imggen.generate("a red fox", model="bfl/flux-2-pro", size="1152x896", seed=7)
    [image] = response.data
    assert image.image_bytes() == TINY_PNG and image.seed == 7 and image.size == "1152x896"
    assert image.cost_usd == pytest.approx(0.03)
    [submit] = bfl.submits()
    assert submit.body == {"prompt": "a red fox", "width": 1152, "height": 896, "seed": 7, "output_format": "png"}
    assert submit.headers["x-key"] == KEY and submit.headers["content-type"] == "application/json"
    polls = bfl.polls()
    assert len(polls) == 3 and all(p.headers.get("x-key") == KEY for p in polls)
    [download] = bfl.downloads()
    assert download.host.startswith("localhost:")  # another host than the API's
    assert "x-key" not in download.headers and "authorization" not in download.headers


def test_aspect_ratio_models_and_provider_params(bfl: FakeBfl) -> None:
    imggen.generate("dunes", model="bfl/flux-pro-1.1-ultra", aspect_ratio="21:9", params={"raw": True,
                    "safety_tolerance": 4})  # fmt: skip
    assert bfl.submits()[0].body == {"prompt": "dunes", "aspect_ratio": "21:9", "output_format": "png", "raw": True,
                                     "safety_tolerance": 4}  # fmt: skip


def test_a_batch_saves_each_image_and_writes_the_job_before_its_first_poll(bfl: FakeBfl, tmp_path: Path) -> None:
    results = list(imggen.run(["otter", "badger", "heron"], model="bfl/flux-pro-1.1", output_dir=tmp_path, n=2))
    assert all(r.ok for r in results) and len(results) == 6
    lines = [json.loads(line) for line in (tmp_path / ".imggen-manifest.jsonl").read_text().splitlines()]
    submitted = [line for line in lines if line["status"] == "submitted"]
    assert len(submitted) == 6 and all(line["job_id"].startswith(bfl.base + "/get_result?id=") for line in submitted)
    for job in submitted:  # each job's line comes before the image it made
        saved = next(i for i, line in enumerate(lines) if line["status"] == "saved" and line["key"] == job["key"]
                     and line["index"] == job["index"])  # fmt: skip
        assert lines.index(job) < saved


def test_moderation_is_a_content_filter_error(bfl: FakeBfl) -> None:
    bfl.moderate = "forbidden"
    with pytest.raises(ContentFilterError, match=r"flagged by Black Forest Labs' moderation: Sexual") as caught:
        imggen.generate("something forbidden", model="bfl/flux-2-pro")
    assert caught.value.code == "Request Moderated" and "Nothing was charged" in (caught.value.hint or "")
    assert not bfl.downloads()


def test_content_moderated_and_error_statuses(bfl: FakeBfl) -> None:
    bfl.statuses = ["Content Moderated"]
    with pytest.raises(ContentFilterError, match="the generated image was flagged"):
        imggen.generate("a fox", model="bfl/flux-pro-1.1")
    bfl.statuses = ["Error"]
    with pytest.raises(ProviderError, match="the job ended with status 'Error'"):
        imggen.generate("a fox", model="bfl/flux-pro-1.1")


def test_bfl_error_answers(bfl: FakeBfl, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderError, match=r"422: colour: Extra inputs are not permitted"):
        imggen.generate("a fox", model="bfl/flux-pro-1.1", params={"colour": "red"})
    monkeypatch.setenv("BFL_API_KEY", "bfl-wrong-key-00000000")
    with pytest.raises(AuthError, match="403: Not authenticated") as caught:
        imggen.generate("a fox", model="bfl/flux-pro-1.1")
    assert "BFL_API_KEY" in (caught.value.hint or "")
    assert len(bfl.submits()) == 2 and not bfl.polls()


def test_a_polling_url_on_another_host_never_gets_the_key(bfl: FakeBfl) -> None:
    bfl.polling_host = "collector.example"
    with pytest.raises(BadResponseError, match=r"polling URL on collector\.example, not one of its hosts"):
        imggen.generate("a fox", model="bfl/flux-2-pro")
    assert [r.path for r in bfl.requests] == ["/v1/flux-2-pro"]


def test_an_expired_result_url_fails_the_image(bfl: FakeBfl) -> None:
    bfl.url_ttl = -5
    with pytest.raises(BadResponseError, match="HTTP 403"):
        imggen.generate("a fox", model="bfl/flux-2-pro", retries=0)


def test_kontext_edits_send_the_images_as_base64(bfl: FakeBfl, tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(TINY_PNG)
    second.write_bytes(TINY_PNG)
    response = imggen.edit("make it blue", [first, second], model="bfl/flux-kontext-pro", aspect_ratio="1:1")
    assert response.data[0].image_bytes() == TINY_PNG
    body = bfl.submits()[0].body
    assert base64.b64decode(body["input_image"]) == TINY_PNG and base64.b64decode(body["input_image_2"]) == TINY_PNG
    assert body["aspect_ratio"] == "1:1" and body["prompt"] == "make it blue"


def test_dry_run_masks_the_key(cli: object) -> None:
    from conftest import run_cli

    result = run_cli("generate", "a fox", "-m", "bfl/flux-2-pro", "--dry-run", env={"BFL_API_KEY": KEY})
    assert result.code == 0, result.stderr
    assert "POST https://api.bfl.ai/v1/flux-2-pro" in result.stdout and KEY not in result.stdout
    assert "x-key:" in result.stdout


def test_behind_imggen_serve(bfl: FakeBfl, start: Any) -> None:
    from servehelp import deployment, proxy_config

    served = start(proxy_config(deployment("flux", "bfl/flux-2-pro", api_key=KEY, api_base=bfl.base)))
    answer = served.post({"model": "flux", "prompt": "a sea otter", "size": "1024x1024"})
    assert answer.status_code == 200, answer.text
    assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == TINY_PNG
    assert bfl.submits()[0].body["width"] == 1024 and KEY not in served.stderr()
    bfl.moderate = "forbidden"
    refused = served.post({"model": "flux", "prompt": "forbidden things"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "content_policy_violation"
    assert "Black Forest Labs' moderation" in refused.json()["error"]["message"]
