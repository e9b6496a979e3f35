"""AWS Bedrock with boto3's credential chain and SigV4 running for real against a local stand-in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET, BEDROCK_TOKEN, aws_error
from fakeserver import TINY_PNG, FakeProvider, Reply, server_error

SECRETS = (AWS_SECRET, BEDROCK_TOKEN)
TITAN_BLOCKED = "This request has been blocked by our content filters."
FAMILIES = [
    ("stability.stable-diffusion-xl-v1", "text_prompts"),
    ("stability.sd3-large-v1:0", "mode"),
    ("amazon.titan-image-generator-v1", "taskType"),
    ("amazon.nova-canvas-v1:0", "taskType"),
]


def aws_env(fake: FakeProvider, region: str | None = "us-west-2") -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url,
    }
    if region:
        env["AWS_REGION"] = region
    return env


def gen(fake: FakeProvider, *args: str, env: dict[str, str] | None = None):
    return run_cli("generate", *args, env={**aws_env(fake), **(env or {})})


def invokes(fake: FakeProvider) -> list:
    return [r for r in fake.requests if r.path.endswith("/invoke")]


def no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_nova_canvas_signed_request_and_body(fake: FakeProvider, tmp_path: Path) -> None:
    fake.expect_region = "us-west-2"
    args = ["a lighthouse", "-m", "bedrock/amazon.nova-canvas-v1:0", "-s", "1280x720", "-q", "premium"]
    result = gen(fake, *args, "--seed", "7", "--negative-prompt", "fog", "-p", "cfgScale=6.5", "-o", "out")
    assert result.code == 0, result.stderr
    assert (tmp_path / result.lines[0]).read_bytes() == TINY_PNG
    request = invokes(fake)[0]
    assert request.path == "/model/amazon.nova-canvas-v1:0/invoke"
    assert request.json == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse", "negativeText": "fog"},
        "imageGenerationConfig": {
            "numberOfImages": 1,
            "width": 1280,
            "height": 720,
            "quality": "premium",
            "seed": 7,
            "cfgScale": 6.5,
        },
    }
    no_secret(result.everything())


def test_titan_n7_fans_out_5_plus_2(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "amazon.titan-image-generator-v2:0", "-n", "7", "--json")
    assert result.code == 0, result.stderr
    assert sorted(r.json["imageGenerationConfig"]["numberOfImages"] for r in invokes(fake)) == [2, 5]
    assert sorted(line["index"] for line in result.json_lines()) == list(range(1, 8))


def test_sdxl_body_style_negative_prompt_and_seed_back(fake: FakeProvider) -> None:
    args = ["otter", "-m", "stability.stable-diffusion-xl-v1", "--style", "anime", "--negative-prompt", "blur"]
    result = gen(fake, *args, "-s", "1344x768", "-n", "2", "--json")
    assert result.code == 0, result.stderr
    bodies = [r.json for r in invokes(fake)]
    assert len(bodies) == 2
    assert bodies[0]["text_prompts"] == [{"text": "otter", "weight": 1.0}, {"text": "blur", "weight": -1.0}]
    assert bodies[0]["style_preset"] == "anime" and (bodies[0]["width"], bodies[0]["height"]) == (1344, 768)
    assert {line["seed"] for line in result.json_lines()} == {4242}


def test_sd3_takes_an_aspect_ratio_and_reports_the_seed(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "stability.sd3-5-large-v1:0", "-s", "1920x1080", "--seed", "99", "--json")
    assert result.code == 0, result.stderr
    body = invokes(fake)[0].json
    assert body == {"prompt": "otter", "mode": "text-to-image", "aspect_ratio": "16:9", "seed": 99}
    assert result.json_lines()[0]["seed"] == 99
    assert "16:9" in result.stderr


def test_inference_profile_id_is_in_the_url(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "us.amazon.nova-canvas-v1:0")
    assert result.code == 0, result.stderr
    assert invokes(fake)[0].path == "/model/us.amazon.nova-canvas-v1:0/invoke"


def test_a_size_no_family_value_is_near_is_a_usage_error(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "stability.sd3-large-v1:0", "-s", "4000x500")
    assert result.code == 2 and invokes(fake) == []
    assert "21:9" in result.stderr


def test_an_unknown_nova_param_is_refused_not_sent_top_level(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "amazon.nova-canvas-v1:0", "-p", "bogus=1")
    assert result.code == 2 and invokes(fake) == []


def test_extraneous_key_gets_bedrocks_validation_message(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "stability.sd3-large-v1:0", "-p", "bogus=1")
    assert result.code == 1
    assert "ValidationException" in result.stderr and "extraneous key [bogus]" in result.stderr


@pytest.mark.parametrize(
    ("model", "payload", "words"),
    [
        (
            "stability.stable-diffusion-xl-v1",
            {"result": "success", "artifacts": [{"seed": 1, "base64": "", "finishReason": "CONTENT_FILTERED"}]},
            "CONTENT_FILTERED",
        ),
        (
            "stability.sd3-large-v1:0",
            {"seeds": [1], "finish_reasons": ["Filter reason: prompt"], "images": []},
            "Filter reason: prompt",
        ),
        ("amazon.titan-image-generator-v1", {"images": [], "error": TITAN_BLOCKED}, "content filters"),
    ],
)
def test_a_filtered_success_is_an_error_not_silence(fake: FakeProvider, model: str, payload: dict, words: str) -> None:
    fake.script("/invoke", Reply(json=payload))
    result = gen(fake, "otter", "-m", model, "--json")
    assert result.code == 1
    assert words in result.stderr
    assert result.json_lines()[0]["error"]["type"] == "content_filter"


def test_some_filtered_some_saved_exits_4(fake: FakeProvider) -> None:
    fake.script("/invoke", Reply(json={"seeds": [1], "finish_reasons": ["Filter reason: output image"], "images": []}))
    result = gen(fake, "otter", "-m", "stability.sd3-large-v1:0", "-n", "3", "-j", "1")
    assert result.code == 4 and len(result.lines) == 2


def test_access_denied_exits_3_with_a_hint(fake: FakeProvider) -> None:
    message = "You don't have access to the model with the specified model ID."
    fake.script("/invoke", aws_error(Reply, 403, "AccessDeniedException", message))
    result = gen(fake, "otter", "-m", "amazon.nova-canvas-v1:0")
    assert result.code == 3
    assert "AccessDeniedException" in result.stderr and "Bedrock console" in result.stderr
    assert len(invokes(fake)) == 1


def test_wrong_secret_is_rejected_by_the_signature_check(fake: FakeProvider) -> None:
    result = gen(
        fake, "otter", "-m", "amazon.nova-canvas-v1:0", env={"AWS_SECRET_ACCESS_KEY": "wrong-secret-0000000000"}
    )
    assert result.code == 3 and "signature does not match" in result.stderr
    assert "wrong-secret-0000000000" not in result.everything()


def test_throttling_and_server_errors_are_retried_once_each_not_stacked(fake: FakeProvider) -> None:
    throttled = aws_error(Reply, 429, "ThrottlingException", "Too many requests, please wait before trying again.")
    not_ready = aws_error(Reply, 429, "ModelNotReadyException", "Model is not ready.")
    fake.script("/invoke", throttled, not_ready, server_error())
    result = gen(fake, "otter", "-m", "amazon.nova-canvas-v1:0", "--retries", "3")
    assert result.code == 0, result.stderr
    assert len(invokes(fake)) == 4


def test_retries_exhausted_exit_1(fake: FakeProvider) -> None:
    fake.script("/invoke", *[aws_error(Reply, 503, "ServiceUnavailableException", "Service unavailable")] * 2)
    result = gen(fake, "otter", "-m", "amazon.nova-canvas-v1:0", "--retries", "1")
    assert result.code == 1 and len(invokes(fake)) == 2 and "ServiceUnavailable" in result.stderr


def test_missing_credentials_exit_3_before_sending(fake: FakeProvider) -> None:
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_EC2_METADATA_DISABLED": "true"}
    result = run_cli("generate", "otter", "-m", "amazon.nova-canvas-v1:0", env=env)
    assert result.code == 3 and invokes(fake) == []
    assert "AWS" in result.stderr


def region_of(*args: str, env: dict[str, str]) -> tuple[str, str]:
    result = run_cli("config", "explain", "--json", *args, env=env)
    assert result.code == 0, result.stderr
    rows = {row["setting"]: (row["value"], row["source"]) for row in json.loads(result.stdout)}
    return rows["aws_region_name"]


def test_region_precedence(tmp_path: Path) -> None:
    aws = tmp_path / "home" / ".aws"
    aws.mkdir()
    (aws / "config").write_text("[profile work]\nregion = eu-central-1\n[default]\nregion = ap-south-1\n")
    model = ("-m", "amazon.nova-canvas-v1:0")
    assert region_of(*model, env={"AWS_PROFILE": "work"}) == ("eu-central-1", "aws-config:work")
    assert region_of(*model, env={}) == ("ap-south-1", "aws-config:default")
    assert region_of(*model, env={"AWS_DEFAULT_REGION": "us-west-1"}) == ("us-west-1", "env:AWS_DEFAULT_REGION")
    assert region_of(*model, env={"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "x"}) == (
        "us-east-2",
        "env:AWS_REGION",
    )
    run_cli("config", "set", "bedrock", "aws_region_name", "ca-central-1")
    assert region_of(*model, env={"AWS_REGION": "us-east-2"}) == ("us-east-2", "env:AWS_REGION")
    run_cli("config", "set", "mine", "provider", "bedrock")
    run_cli("config", "set", "mine", "aws_region_name", "sa-east-1")
    assert region_of(*model, "--profile", "mine", env={"AWS_REGION": "us-east-2"}) == ("sa-east-1", "profile:mine")


def test_region_falls_back_to_where_the_model_lives() -> None:
    env = {"AWS_CONFIG_FILE": "/nonexistent"}
    assert region_of("-m", "stability.sd3-large-v1:0", env=env) == ("us-west-2", "catalog")
    assert region_of("-m", "amazon.nova-canvas-v1:0", env=env) == ("us-east-1", "catalog")


def test_requests_are_signed_for_the_resolved_region(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "stability.sd3-large-v1:0", env={"AWS_REGION": "eu-west-3"})
    assert result.code == 0, result.stderr
    assert fake.signed_regions == ["eu-west-3"]


def test_aws_profile_credentials_from_the_shared_file(fake: FakeProvider, tmp_path: Path) -> None:
    aws = tmp_path / "home" / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(f"[art]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n")
    run_cli("config", "set", "bedrock", "aws_profile_name", "art")
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-east-1"}
    result = run_cli("generate", "otter", "-m", "amazon.nova-canvas-v1:0", env=env)
    assert result.code == 0, result.stderr


def test_unknown_aws_profile_is_a_config_error(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "amazon.nova-canvas-v1:0", env={"AWS_PROFILE": "nope"})
    assert result.code == 3 and "nope" in result.stderr


def test_dry_run_bodies_for_every_family_and_the_region() -> None:
    for model, key in FAMILIES:
        # every family's body, SDXL's included: on a day all four were still served
        env = {"AWS_CONFIG_FILE": "/nonexistent", "IMGGEN_TODAY": "2025-05-01"}
        result = run_cli("generate", "otter", "-m", model, "--dry-run", env=env)
        assert result.code == 0, result.stderr
        assert f'"{key}"' in result.stdout and "/invoke" in result.stdout
        assert "# aws_region_name:" in result.stdout and "(from catalog)" in result.stdout
        assert "Authorization: AWS4-HMAC-SHA256 (added when sent)" in result.stdout


def test_bedrock_api_key_is_sent_as_bearer_over_https_only(fake: FakeProvider) -> None:
    env = {"AWS_BEARER_TOKEN_BEDROCK": BEDROCK_TOKEN, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url}
    refused = run_cli("generate", "otter", "-m", "amazon.nova-canvas-v1:0", env=env)
    assert refused.code == 3 and "HTTPS" in refused.stderr and invokes(fake) == []
    no_secret(refused.everything())
    dry = run_cli("generate", "otter", "-m", "amazon.nova-canvas-v1:0", "--dry-run", env=env)
    assert "Authorization: Bearer ****" + BEDROCK_TOKEN[-4:] in dry.stdout
    no_secret(dry.everything())


def test_bedrock_api_key_over_tls(tls_fake: FakeProvider, tmp_path: Path) -> None:
    env = {
        "AWS_BEARER_TOKEN_BEDROCK": BEDROCK_TOKEN,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": tls_fake.base_url,
        "AWS_CA_BUNDLE": str(tls_fake.ca_file),
    }
    result = run_cli("generate", "otter", "-m", "amazon.nova-canvas-v1:0", env=env)
    assert result.code == 0, result.stderr
    assert invokes(tls_fake)[0].headers["authorization"] == f"Bearer {BEDROCK_TOKEN}"
    no_secret(result.everything())


def test_boto3_is_not_imported_for_openai_or_help() -> None:
    code = "import sys, imggen.commands, imggen.api; print('boto3' in sys.modules or 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.stdout.strip() == "False"


def test_titan_images_beside_an_error_are_kept_and_the_missing_ones_fail(fake: FakeProvider, tmp_path: Path) -> None:
    b64 = base64.b64encode(TINY_PNG).decode()
    partial = {"images": [b64, b64], "error": "Some images were blocked by our content filters."}
    fake.script("/invoke", Reply(json=partial))
    result = gen(fake, "otter", "-m", "amazon.titan-image-generator-v2:0", "-n", "4", "--json", "-o", "out")
    assert result.code == 4, result.stderr
    lines = result.json_lines()
    saved = [line for line in lines if "path" in line]
    failed = [line["error"] for line in lines if "error" in line]
    assert len(saved) == 2 and all(Path(line["path"]).read_bytes() == TINY_PNG for line in saved)
    assert len(failed) == 2 and {e["type"] for e in failed} == {"content_filter"}
    assert "Bedrock returned 2 of 4 images: Some images were blocked" in failed[0]["message"]
    assert "saved 2 images · 2 failed" in result.stderr
    manifest = [json.loads(line) for line in (tmp_path / "out" / ".imggen-manifest.jsonl").read_text().splitlines()]
    assert sorted(record["status"] for record in manifest) == ["failed", "failed", "saved", "saved"]


def test_stability_keeps_the_images_whose_finish_reason_is_null() -> None:
    import httpx

    from imggen.catalog import parse_model
    from imggen.errors import ContentFilterError
    from imggen.providers.bedrock import PROVIDER
    from imggen.types import ImageRequest

    b64 = base64.b64encode(TINY_PNG).decode()
    payload = {"seeds": [11, 22, 33], "finish_reasons": [None, "Filter reason: output image", None],
               "images": [b64, b64, b64]}  # fmt: skip
    request = ImageRequest("otter", parse_model("bedrock/stability.sd3-5-large-v1:0"), n=3)
    result = PROVIDER.parse_response(request, httpx.Response(200, json=payload))
    assert [(image.index, image.seed) for image in result.images] == [(1, 11), (2, 33)]
    assert len(result.errors) == 1 and isinstance(result.errors[0], ContentFilterError)
    assert "2 of 3 images: Filter reason: output image" in result.errors[0].message
