"""Vertex AI (Imagen and Gemini) and the Gemini API, with google-auth's token exchange running for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import run_cli
from fakegoogle import GEMINI_KEY, REFRESH_TOKEN, google_error
from fakeserver import FakeProvider, Reply

PRIVATE_KEY_MARK = "BEGIN PRIVATE KEY"


@pytest.fixture
def service_account(fake: FakeProvider, tmp_path: Path) -> Path:
    """A service-account file with a fresh RSA key whose token_uri is the fake's token endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fake.google_public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": "sa-project",
        "private_key_id": "key-1",
        "private_key": pem.decode(),
        "client_email": "imggen@sa-project.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": fake.token_uri,
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path


def vertex_env(fake: FakeProvider, service_account: Path) -> dict[str, str]:
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(service_account), "NO_GCE_CHECK": "true"}


def gen(fake: FakeProvider, sa: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("generate", *args, "--api-base", fake.base_url, env={**vertex_env(fake, sa), **(env or {})})


def calls(fake: FakeProvider) -> list:
    return [r for r in fake.requests if r.path.startswith(("/v1/", "/v1beta/"))]


def no_secret(fake: FakeProvider, text: str) -> None:
    assert PRIVATE_KEY_MARK not in text and GEMINI_KEY not in text
    for token in fake.google_tokens:
        assert token not in text


def test_imagen_predict_with_project_from_the_credentials(fake: FakeProvider, service_account: Path) -> None:
    result = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001", "-s", "2048x1152", "-n", "2")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 2
    project, location, model, method, _ = fake.google_calls[0]
    assert (project, location, model, method) == ("sa-project", "us-central1", "imagen-4.0-generate-001", "predict")
    body = calls(fake)[0].json
    assert body == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9", "sampleImageSize": "2K"},
    }
    no_secret(fake, result.everything())


def test_sample_count_fans_out_beyond_four(fake: FakeProvider, service_account: Path) -> None:
    result = gen(fake, service_account, "a fox", "-m", "imagen-3.0-generate-002", "-n", "6")
    assert result.code == 0, result.stderr
    assert sorted(r.json["parameters"]["sampleCount"] for r in calls(fake)) == [2, 4]
    assert len(fake.google_tokens) == 1  # one token for the run, not one per request


def test_seed_turns_the_watermark_off_and_says_so(fake: FakeProvider, service_account: Path) -> None:
    result = gen(
        fake, service_account, "a fox", "-m", "imagen-4.0-generate-001", "--seed", "5", "--negative-prompt", "x"
    )
    assert result.code == 0, result.stderr
    parameters = calls(fake)[0].json["parameters"]
    assert parameters["seed"] == 5 and parameters["addWatermark"] is False and parameters["negativePrompt"] == "x"
    assert "addWatermark" in result.stderr


def test_p_merges_into_parameters(fake: FakeProvider, service_account: Path) -> None:
    result = gen(
        fake, service_account, "a fox", "-m", "imagen-4.0-fast-generate-001", "-p", "personGeneration=dont_allow"
    )
    assert result.code == 0, result.stderr
    assert calls(fake)[0].json["parameters"]["personGeneration"] == "dont_allow"


def test_gemini_on_vertex_keeps_the_text_part(fake: FakeProvider, service_account: Path) -> None:
    args = ["a fox", "-m", "vertex_ai/gemini-2.5-flash-image", "--aspect-ratio", "3:2", "--json", "--metadata"]
    result = gen(fake, service_account, *args, "-p", "temperature=0.5")
    assert result.code == 0, result.stderr
    line = result.json_lines()[0]
    assert line["text"] == "Here is your image."
    assert json.loads(Path(line["path"]).with_suffix(".json").read_text())["text"] == "Here is your image."
    config = calls(fake)[0].json["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "3:2"} and config["temperature"] == 0.5
    assert fake.google_calls[0][3] == "generateContent"


def test_rai_filtered_predictions_are_errors(fake: FakeProvider, service_account: Path) -> None:
    filtered = {"raiFilteredReason": "Your current safety filter threshold filtered out 1 generated image."}
    fake.script(
        ":predict", Reply(json={"predictions": [{"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "x"}, filtered]})
    )
    partial = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001", "-n", "2", "--json")
    assert partial.code == 4 and "safety filter" in partial.stderr
    fake.script(":predict", Reply(json={"predictions": [filtered]}))
    none = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001")
    assert none.code == 1 and "filtered" in none.stderr


def test_gemini_image_safety_is_an_error(fake: FakeProvider, service_account: Path) -> None:
    candidate = {"content": {"parts": [{"text": "I can't make that."}]}, "finishReason": "IMAGE_SAFETY"}
    fake.script(":generateContent", Reply(json={"candidates": [candidate]}))
    result = gen(fake, service_account, "a fox", "-m", "vertex_ai/gemini-2.5-flash-image", "--json")
    assert result.code == 1
    assert "IMAGE_SAFETY" in result.stderr and result.json_lines()[0]["error"]["type"] == "content_filter"


def test_permission_denied_exits_3_with_the_gcloud_hint(fake: FakeProvider, service_account: Path) -> None:
    fake.script(
        ":predict", google_error(Reply, 403, "PERMISSION_DENIED", "Permission denied on resource project sa-project.")
    )
    result = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001")
    assert result.code == 3
    assert "PERMISSION_DENIED" in result.stderr and "gcloud auth application-default login" in result.stderr


def test_resource_exhausted_and_5xx_are_retried(fake: FakeProvider, service_account: Path) -> None:
    exhausted = google_error(Reply, 429, "RESOURCE_EXHAUSTED", "Quota exceeded.")
    fake.script(":predict", exhausted, google_error(Reply, 503, "UNAVAILABLE", "Try again."))
    result = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001")
    assert result.code == 0, result.stderr
    assert len(calls(fake)) == 3


def test_invalid_argument_exits_1_with_googles_message(fake: FakeProvider, service_account: Path) -> None:
    fake.script(":predict", google_error(Reply, 400, "INVALID_ARGUMENT", "Image generation failed with the prompt."))
    result = gen(fake, service_account, "a fox", "-m", "imagen-4.0-generate-001")
    assert result.code == 1 and "INVALID_ARGUMENT" in result.stderr and "failed with the prompt" in result.stderr


def test_a_token_that_expires_mid_run_is_refreshed(fake: FakeProvider, service_account: Path) -> None:
    fake.token_lifetime = 227  # google-auth refreshes 225 s early: this token is good for about 2 s
    fake.script(":generateContent", *[Reply(delay=1.5) for _ in range(3)])
    result = gen(fake, service_account, "a fox", "-m", "vertex_ai/gemini-2.5-flash-image", "-n", "3", "-j", "1")
    assert result.code == 0, result.stderr
    used = [call[4] for call in fake.google_calls]
    assert len(fake.google_tokens) >= 2 and used[0] != used[-1]


def test_a_bad_key_file_is_a_config_error(fake: FakeProvider, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = run_cli(
        "generate",
        "a fox",
        "-m",
        "imagen-4.0-generate-001",
        "--api-base",
        fake.base_url,
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(bad), "VERTEXAI_PROJECT": "p", "NO_GCE_CHECK": "true"},
    )
    assert result.code == 3 and calls(fake) == []


def test_profile_vertex_credentials_and_project_precedence(fake: FakeProvider, service_account: Path) -> None:
    run_cli("config", "set", "vertex_ai", "vertex_credentials", str(service_account))
    env = {"NO_GCE_CHECK": "true"}

    def explain(*extra: str, more: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
        out = run_cli(
            "config", "explain", "--json", "-m", "imagen-4.0-generate-001", *extra, env={**env, **(more or {})}
        )
        return {row["setting"]: (row["value"], row["source"]) for row in json.loads(out.stdout)}

    assert explain()["vertex_project"] == ("sa-project", "credentials")
    assert explain(more={"VERTEXAI_PROJECT": "env-project"})["vertex_project"] == (
        "env-project",
        "env:VERTEXAI_PROJECT",
    )
    run_cli("config", "set", "vertex_ai", "vertex_project", "profile-project")
    assert explain(more={"VERTEXAI_PROJECT": "env-project"})["vertex_project"] == (
        "env-project",
        "env:VERTEXAI_PROJECT",
    )
    run_cli("config", "set", "mine", "provider", "vertex_ai")
    run_cli("config", "set", "mine", "vertex_project", "named-project")
    assert explain("--profile", "mine", more={"VERTEXAI_PROJECT": "e"})["vertex_project"] == (
        "named-project",
        "profile:mine",
    )
    assert explain()["vertex_location"] == ("us-central1", "default")
    assert explain(more={"VERTEXAI_LOCATION": "europe-west4"})["vertex_location"] == (
        "europe-west4",
        "env:VERTEXAI_LOCATION",
    )
    result = run_cli("generate", "a fox", "-m", "imagen-4.0-generate-001", "--api-base", fake.base_url, env=env)
    assert result.code == 0, result.stderr
    assert fake.google_calls[0][0] == "profile-project"


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_location_builds_the_host(location: str, host: str) -> None:
    env = {"VERTEXAI_PROJECT": "p", "VERTEXAI_LOCATION": location, "NO_GCE_CHECK": "true"}
    result = run_cli("generate", "a fox", "-m", "vertex_ai/gemini-2.5-flash-image", "--dry-run", env=env)
    expected = (
        f"{host}/v1/projects/p/locations/{location}/publishers/google/models/gemini-2.5-flash-image:generateContent"
    )
    assert f"POST {expected}\n" in result.stdout


def test_gemini_api_key_goes_in_a_header(fake: FakeProvider) -> None:
    env = {"GEMINI_API_KEY": GEMINI_KEY}
    result = run_cli(
        "generate",
        "a fox",
        "-m",
        "gemini/gemini-2.5-flash-image",
        "--api-base",
        fake.base_url + "/v1beta",
        "-n",
        "2",
        env=env,
    )
    assert result.code == 0, result.stderr
    request = calls(fake)[0]
    assert request.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert request.headers["x-goog-api-key"] == GEMINI_KEY and "key" not in request.query
    assert len(calls(fake)) == 2
    no_secret(fake, result.everything())


def test_gemini_api_without_a_key_exits_3() -> None:
    result = run_cli("generate", "a fox", "-m", "gemini/gemini-2.5-flash-image")
    assert result.code == 3 and "GEMINI_API_KEY" in result.stderr


def test_dry_run_every_route_without_credentials() -> None:
    # the Imagen route too: on a day before Google shut Imagen down (2026-08-17)
    env = {"NO_GCE_CHECK": "true", "GEMINI_API_KEY": GEMINI_KEY, "IMGGEN_TODAY": "2026-08-01"}
    for model, route in [
        ("imagen-4.0-generate-001", ":predict"),
        ("vertex_ai/gemini-3.1-flash-image", ":generateContent"),
        ("gemini/gemini-3.1-flash-image", ":generateContent"),
    ]:
        result = run_cli("generate", "a fox", "-m", model, "--dry-run", "--allow-retired", env=env)
        assert result.code == 0, result.stderr
        assert route in result.stdout
        assert GEMINI_KEY not in result.everything()
    assert "x-goog-api-key: ****" + GEMINI_KEY[-4:] in result.stdout


def test_authorized_user_credentials_refresh_at_googles_token_host(fake: FakeProvider, tmp_path: Path) -> None:
    ca_file = fake.enable_proxy(tmp_path)
    user = {
        "type": "authorized_user",
        "client_id": "cid.apps.googleusercontent.com",
        "client_secret": "csecret-123456",
        "refresh_token": REFRESH_TOKEN,
        "quota_project_id": "user-project",
    }
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(user))
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(path),
        "NO_GCE_CHECK": "true",
        "HTTPS_PROXY": fake.base_url,
        "REQUESTS_CA_BUNDLE": str(ca_file),
        "NO_PROXY": "127.0.0.1",
    }
    result = run_cli(
        "generate",
        "a fox",
        "-m",
        "imagen-4.0-generate-001",
        "--api-base",
        fake.base_url,
        "-p",
        "vertex_project=user-project",
        env=env,
    )
    assert result.code == 0, result.stderr
    assert fake.tunnels == ["oauth2.googleapis.com:443"]
    assert fake.google_calls[0][0] == "user-project"
    assert REFRESH_TOKEN not in result.everything() and "csecret-123456" not in result.everything()


def test_google_auth_is_not_imported_for_other_providers() -> None:
    code = "import sys, imggen.commands, imggen.api; print('google.auth' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.stdout.strip() == "False"


def test_credentials_json_given_inline_work_and_are_masked(fake: FakeProvider, service_account: Path) -> None:
    inline = service_account.read_text()
    assert run_cli("config", "set", "vertex_ai", "vertex_credentials", "-", input=inline.encode()).code == 0
    shown = run_cli("config", "show", "vertex_ai")
    assert shown.code == 0 and PRIVATE_KEY_MARK not in shown.everything()
    result = run_cli("generate", "otter", "-m", "vertex_ai/imagen-4.0-generate-001", "--api-base", fake.base_url,
                     env={"NO_GCE_CHECK": "true"})  # fmt: skip
    assert result.code == 0, result.stderr
    assert PRIVATE_KEY_MARK not in result.everything()


def gemini_api(fake: FakeProvider, *args: str, key: str = GEMINI_KEY):
    env = {"GEMINI_API_KEY": key}
    return run_cli("generate", *args, "--api-base", fake.base_url + "/v1beta", env=env)


def test_a_rejected_gemini_api_key_exits_3_like_any_rejected_key(fake: FakeProvider) -> None:
    wrong = "gemini-wrong-key-ZYXWVUTS9876"
    result = gemini_api(fake, "a fox", "-m", "gemini/gemini-2.5-flash-image", "-n", "2", "-j", "1", key=wrong)
    assert result.code == 3, result.stderr
    assert "400 INVALID_ARGUMENT: API key not valid" in result.stderr
    assert "Check the Gemini API key" in result.stderr
    assert len(calls(fake)) == 1  # the second request is not sent with a key already refused
    assert wrong not in result.everything()


def test_imggen_serve_answers_an_upstream_key_refusal_as_its_own_failure_not_the_clients() -> None:
    """A 400 that refuses the upstream key (API_KEY_INVALID) must not reach a proxy client as a 400,
    which would blame the client's request: it is the gateway's failure (502), as an upstream 401 is."""
    import httpx

    from imggen.errors import AuthError, GenerationError
    from imggen.providers import contract, google_wire
    from imggen.proxy.router import upstream_error

    def map_error(response: httpx.Response, hint: str) -> GenerationError:
        return contract.map_error(response, google_wire.error_fields(response, hint))

    body = {
        "error": {
            "code": 400,
            "message": "API key not valid.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    error = map_error(httpx.Response(400, json=body), "hint")
    assert isinstance(error, AuthError) and error.exit_code == 3
    deployment = type("D", (), {"id": "g1"})()
    assert upstream_error(error, deployment).status == 502  # type: ignore[arg-type]
    plain = map_error(
        httpx.Response(400, json={"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}), ""
    )
    assert not isinstance(plain, AuthError) and upstream_error(plain, deployment).status == 400  # type: ignore[arg-type]


def gemini_reply(*candidates: dict, **extra: object) -> Reply:
    return Reply(json={"candidates": list(candidates), **extra})


def no_image(reason: str, text: str = "I can't make that.") -> dict:
    return {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": reason}


@pytest.mark.parametrize(
    ("model", "reason", "hint"),
    [
        ("gemini/gemini-2.5-flash-image", "IMAGE_RECITATION", "recitation"),
        ("gemini/gemini-2.5-flash-image", "RECITATION", "recitation"),
        ("vertex_ai/gemini-2.5-flash-image", "PROHIBITED_CONTENT", "prohibited content"),
        ("vertex_ai/gemini-3-pro-image-preview", "MODEL_ARMOR", "Model Armor"),
    ],
)
def test_gemini_filter_finish_reasons_are_content_filter_errors(
    fake: FakeProvider, service_account: Path, model: str, reason: str, hint: str
) -> None:
    fake.script(":generateContent", gemini_reply(no_image(reason)))
    if model.startswith("gemini/"):
        result = gemini_api(fake, "a fox", "-m", model, "--json")
    else:
        result = gen(fake, service_account, "a fox", "-m", model, "--json")
    assert result.code == 1, result.stderr
    error = result.json_lines()[0]["error"]
    assert error["type"] == "content_filter" and f"finishReason {reason}" in error["message"]
    assert hint in result.stderr


def test_a_blocked_prompt_names_its_block_reason(fake: FakeProvider) -> None:
    fake.script(":generateContent", Reply(json={"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    result = gemini_api(fake, "a fox", "-m", "gemini/gemini-2.5-flash-image", "--json")
    assert result.code == 1
    error = result.json_lines()[0]["error"]
    assert error["type"] == "content_filter" and "blockReason PROHIBITED_CONTENT" in error["message"]


def test_one_image_filtered_one_made_exits_4(fake: FakeProvider) -> None:
    fake.script(":generateContent", gemini_reply(no_image("IMAGE_RECITATION")))
    result = gemini_api(fake, "a fox", "-m", "gemini/gemini-2.5-flash-image", "-n", "2", "-j", "1", "--json")
    assert result.code == 4, result.stderr
    lines = result.json_lines()
    assert sorted("error" in line for line in lines) == [False, True]
    assert "1 failed" in result.stderr


@pytest.mark.parametrize(
    ("env", "location", "host"),
    [
        ({}, "global", "https://aiplatform.googleapis.com"),
        ({"VERTEXAI_LOCATION": "us-east5"}, "us-east5", "https://us-east5-aiplatform.googleapis.com"),
    ],
)
def test_gemini_3_on_vertex_goes_to_global_unless_a_location_is_set(env: dict, location: str, host: str) -> None:
    env = {"VERTEXAI_PROJECT": "p", "NO_GCE_CHECK": "true", **env}
    result = run_cli("generate", "a fox", "-m", "vertex_ai/gemini-3-pro-image-preview", "--dry-run", env=env)
    assert result.code == 0, result.stderr
    path = f"/v1/projects/p/locations/{location}/publishers/google/models/gemini-3-pro-image-preview:generateContent"
    assert f"POST {host}{path}\n" in result.stdout


def test_the_catalog_location_is_shown_as_its_source_and_a_profile_overrides_it() -> None:
    env = {"NO_GCE_CHECK": "true"}

    def location() -> list:
        out = run_cli("config", "explain", "--json", "-m", "vertex_ai/gemini-3-pro-image-preview", env=env)
        return next([r["value"], r["source"]] for r in json.loads(out.stdout) if r["setting"] == "vertex_location")

    assert location() == ["global", "catalog"]
    run_cli("config", "set", "vertex_ai", "vertex_location", "europe-west4")
    assert location()[0] == "europe-west4" and location()[1] != "catalog"


def test_a_models_catalog_location_is_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from imggen import catalog
    from imggen.providers.vertex import PROVIDER
    from imggen.settings import resolve
    from imggen.types import ImageRequest

    known = catalog.lookup("vertex_ai/gemini-2.5-flash-image")
    assert known is not None
    test_model = replace(known, id="vertex_ai/test-only-image", location="europe-west9")
    monkeypatch.setattr(catalog, "lookup", lambda name: test_model if name == test_model.id else None)
    env = {"VERTEXAI_PROJECT": "p"}
    settings = resolve(model=test_model.id, env=env)
    request = ImageRequest("a fox", settings.model)
    assert "://europe-west9-aiplatform.googleapis.com/" in PROVIDER.build_request(request, settings).url
    assert "/locations/europe-west9/" in PROVIDER.build_request(request, settings).url
    moved = resolve(model=test_model.id, env={**env, "VERTEXAI_LOCATION": "asia-east1"})
    assert moved.get("vertex_location") == "asia-east1"
    plain = resolve(model="vertex_ai/gemini-2.5-flash-image", env=env)
    assert (plain.values["vertex_location"].value, plain.values["vertex_location"].source) == ("us-central1", "default")
