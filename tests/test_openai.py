"""`imggen generate` against a local stand-in for the OpenAI Images API, as a user runs it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from conftest import OPENAI_KEY, assert_no_secret, openai_env, run_cli
from fakeserver import (
    TINY_JPEG,
    TINY_PNG,
    FakeProvider,
    Reply,
    bad_b64,
    content_policy,
    not_json,
    openai_error,
    rate_limited,
    server_error,
)


def gen(fake: FakeProvider, *args: str, env: dict[str, str] | None = None):
    return run_cli("generate", *args, env={**openai_env(fake), **(env or {})})


def bodies(fake: FakeProvider) -> list[dict]:
    return [r.json for r in fake.requests if r.path.endswith("/images/generations")]


def test_one_image_is_saved_and_its_path_is_the_only_stdout_line(fake: FakeProvider, tmp_path: Path) -> None:
    result = gen(fake, "a sea otter", "-m", "gpt-image-1", "-o", "out")
    assert result.code == 0, result.stderr
    assert len(result.lines) == 1
    path = Path(result.lines[0])
    assert path.parent == Path("out") and path.suffix == ".png"
    assert (tmp_path / path).read_bytes() == TINY_PNG
    request = fake.requests[0]
    assert request.path == "/v1/images/generations"
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.json == {"prompt": "a sea otter", "model": "gpt-image-1", "n": 1}


def test_extension_comes_from_the_bytes_not_the_request(fake: FakeProvider) -> None:
    fake.image_bytes = TINY_JPEG
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 0, result.stderr
    assert result.lines[0].endswith(".jpg")


def test_default_name_is_date_prompt_index(fake: FakeProvider) -> None:
    result = gen(fake, "A Sea Otter!", "-m", "gpt-image-1", "-n", "2")
    assert result.code == 0, result.stderr
    names = sorted(result.lines)
    assert names[0].endswith("-a-sea-otter-1.png") and names[1].endswith("-a-sea-otter-2.png")
    assert len(names[0].split("-")[0]) == 4  # the year of {date}


def test_dall_e_3_n4_fans_out_to_four_requests(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "dall-e-3", "-n", "4", "--name", "{prompt}-{index}.{ext}")
    assert result.code == 0, result.stderr
    assert sorted(result.lines) == [f"otter-{i}.png" for i in range(1, 5)]
    assert [b["n"] for b in bodies(fake)] == [1, 1, 1, 1]


def test_dall_e_asks_for_b64_unless_url_is_requested(fake: FakeProvider) -> None:
    gen(fake, "otter", "-m", "dall-e-3")
    assert bodies(fake)[0]["response_format"] == "b64_json"


def test_url_results_are_downloaded(fake: FakeProvider, tmp_path: Path) -> None:
    result = gen(fake, "otter", "-m", "dall-e-2", "--response-format", "url", "--json", "-o", "out")
    assert result.code == 0, result.stderr
    line = result.json_lines()[0]
    assert line["url"].startswith(fake.base_url + "/files/")
    assert (tmp_path / line["path"]).read_bytes() == TINY_PNG
    assert any(r.path.startswith("/files/") for r in fake.requests)


def test_options_reach_the_body(fake: FakeProvider) -> None:
    args = ["otter", "-m", "dall-e-3", "-s", "1792x1024", "-q", "hd", "--style", "natural", "--user", "u-1"]
    result = gen(fake, *args, "-p", "extra=5", "-p", "flag=true", "-p", "word=hello")
    assert result.code == 0, result.stderr
    body = bodies(fake)[0]
    assert body["size"] == "1792x1024" and body["quality"] == "hd" and body["style"] == "natural"
    assert body["user"] == "u-1"
    assert body["extra"] == 5 and body["flag"] is True and body["word"] == "hello"


def test_an_option_the_model_has_no_field_for_is_not_sent_and_said(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "--style", "vivid", "--seed", "3")
    assert result.code == 0, result.stderr
    body = bodies(fake)[0]
    assert "style" not in body and "seed" not in body
    assert "--style not sent" in result.stderr and "--seed not sent" in result.stderr


def test_size_mapping_is_said_on_stderr(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "dall-e-3", "-s", "512x512")
    assert result.code == 0, result.stderr
    assert bodies(fake)[0]["size"] == "1024x1024"
    assert "1024x1024" in result.stderr


def test_quiet_keeps_stderr_free_of_notes_and_summary(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "--style", "vivid", "--quiet")
    assert result.code == 0 and result.stderr == ""


def test_summary_line_counts_images_and_cost(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "-n", "2")
    assert "saved 2 images" in result.stderr and "$" in result.stderr


def test_json_lines_shape(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "dall-e-3", "--json", "-n", "2")
    assert result.code == 0, result.stderr
    lines = sorted(result.json_lines(), key=lambda x: x["index"])
    keys = {"path", "prompt", "model", "index", "revised_prompt", "url", "seed", "size", "cost_usd", "created"}
    assert all(set(line) >= keys for line in lines)
    assert [line["index"] for line in lines] == [1, 2]
    assert lines[0]["model"] == "openai/dall-e-3" and lines[0]["revised_prompt"] == "revised: otter"
    assert lines[0]["cost_usd"] == 0.04


def test_gpt_image_cost_comes_from_reported_tokens(fake: FakeProvider) -> None:
    line = gen(fake, "otter", "-m", "gpt-image-1", "--json").json_lines()[0]
    assert abs(line["cost_usd"] - (10 * 5e-6 + 4160 * 4e-5)) < 1e-9


def test_metadata_sidecar_beside_each_image(fake: FakeProvider, tmp_path: Path) -> None:
    result = gen(fake, "otter", "-m", "dall-e-3", "--metadata", "--name", "otter-{index}.{ext}")
    assert result.code == 0, result.stderr
    data = json.loads((tmp_path / "otter-1.json").read_text())
    assert data["prompt"] == "otter" and data["revised_prompt"] == "revised: otter"
    assert data["model"] == "openai/dall-e-3" and data["request_id"].startswith("req_")
    assert data["parameters"]["response_format"] == "b64_json"
    assert data["cost_usd"] == 0.04 and data["created"]


def test_existing_files_get_a_suffix_unless_overwrite(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "otter-1.png").write_bytes(b"old")
    first = gen(fake, "otter", "-m", "gpt-image-1", "--name", "otter-{index}.{ext}")
    assert first.lines == ["otter-1-v2.png"]
    assert (tmp_path / "otter-1.png").read_bytes() == b"old"
    second = gen(fake, "otter", "-m", "gpt-image-1", "--name", "otter-{index}.{ext}", "--overwrite")
    assert second.lines == ["otter-1.png"]
    assert (tmp_path / "otter-1.png").read_bytes() == TINY_PNG


def test_a_hostile_prompt_stays_inside_the_output_directory(fake: FakeProvider, tmp_path: Path) -> None:
    prompt = "../../etc/passwd; rm -rf / $(whoami) `id` | cat > x"
    result = gen(fake, prompt, "-m", "gpt-image-1", "-o", "out")
    assert result.code == 0, result.stderr
    path = (tmp_path / result.lines[0]).resolve()
    assert path.parent == (tmp_path / "out").resolve()
    assert set(path.name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")


def test_stdout_output_writes_the_image_bytes(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", "-")
    assert result.code == 0, result.stderr
    assert result.raw == TINY_PNG


def test_stdout_output_with_more_than_one_image_is_refused_before_sending(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", "-", "-n", "2")
    assert result.code == 2 and fake.requests == []
    assert "-o -" in result.stderr


def test_429_with_retry_after_is_retried(fake: FakeProvider) -> None:
    fake.script("/images/generations", rate_limited(retry_after="0.2"), server_error())
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 0, result.stderr
    assert len(bodies(fake)) == 3


def test_retry_after_ms_is_honoured(fake: FakeProvider) -> None:
    fake.script("/images/generations", rate_limited(retry_after="30", retry_after_ms="100"))
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 0, result.stderr


def test_retries_run_out_and_the_error_says_so(fake: FakeProvider) -> None:
    fake.script("/images/generations", server_error(), server_error())
    result = gen(fake, "otter", "-m", "gpt-image-1", "--retries", "1")
    assert result.code == 1
    assert len(bodies(fake)) == 2
    assert "500" in result.stderr and "otter" in result.stderr and "openai/gpt-image-1" in result.stderr


def test_a_plain_400_is_not_retried(fake: FakeProvider) -> None:
    fake.script("/images/generations", openai_error(400, "Invalid size.", code="invalid_value", param="size"))
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 1 and len(bodies(fake)) == 1
    assert "Invalid size." in result.stderr


def test_content_policy_violation_exits_1_with_the_providers_words_and_request_id(fake: FakeProvider) -> None:
    fake.script("/images/generations", content_policy())
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 1
    assert "content_policy_violation" in result.stderr and "safety system" in result.stderr
    assert "request id req_" in result.stderr
    assert result.stdout == ""


def test_a_rejected_key_exits_3(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", env={"OPENAI_API_KEY": "sk-wrong-key-000000000"})
    assert result.code == 3
    assert "401" in result.stderr and "sk-wrong-key-000000000" not in result.stderr


def test_a_missing_key_on_openai_itself_exits_3_before_sending() -> None:
    result = run_cli("generate", "otter", "-m", "gpt-image-2")
    assert result.code == 3
    assert "OPENAI_API_KEY" in result.stderr


def test_a_response_that_is_not_json_exits_1(fake: FakeProvider) -> None:
    fake.script("/images/generations", not_json())
    result = gen(fake, "otter", "-m", "gpt-image-1")
    assert result.code == 1 and "not JSON" in result.stderr


def test_b64_that_does_not_decode_exits_1_and_leaves_no_file(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/images/generations", bad_b64())
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", "out")
    assert result.code == 1 and "b64" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".imggen-manifest.jsonl"]  # no image, no partial file


def test_a_url_that_returns_an_html_page_exits_1_and_leaves_no_file(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/files/", Reply(status=200, body="<html>Error</html>", headers={"Content-Type": "text/html"}))
    result = gen(fake, "otter", "-m", "dall-e-2", "--response-format", "url", "-o", "out")
    assert result.code == 1 and "text/html" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".imggen-manifest.jsonl"]  # no image, no partial file


def test_some_saved_some_failed_exits_4(fake: FakeProvider) -> None:
    fake.script("/images/generations", content_policy())
    result = gen(fake, "otter", "-m", "dall-e-3", "-n", "3", "-j", "1", "--json")
    assert result.code == 4
    lines = result.json_lines()
    assert len([line for line in lines if "path" in line]) == 2
    failure = next(line for line in lines if "error" in line)
    assert failure["error"]["status"] == 400 and failure["error"]["type"] == "content_filter"
    assert failure["prompt"] == "otter" and failure["model"] == "openai/dall-e-3"


def test_timeout_is_a_network_error_after_retries(fake: FakeProvider) -> None:
    fake.script("/images/generations", Reply(delay=2.0), Reply(delay=2.0))
    result = gen(fake, "otter", "-m", "gpt-image-1", "--timeout", "0.5", "--retries", "1")
    assert result.code == 1 and "0.5 s" in result.stderr


def test_an_output_directory_that_cannot_be_created_exits_2_before_sending(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", "file/sub")
    assert result.code == 2 and fake.requests == []


def test_a_key_echoed_by_the_provider_is_redacted_from_every_output(fake: FakeProvider) -> None:
    fake.script("/images/generations", openai_error(401, f"Incorrect API key provided: {OPENAI_KEY}."))
    result = gen(fake, "otter", "-m", "gpt-image-1", "--json")
    assert result.code == 3
    assert "Incorrect API key provided" in result.everything()
    assert_no_secret(result.everything())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory_is_refused(fake: FakeProvider, tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    result = gen(fake, "otter", "-m", "gpt-image-1", "-o", str(out))
    assert result.code == 2


def test_aspect_ratio_picks_the_models_native_size(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-1", "--aspect-ratio", "3:2")
    assert result.code == 0, result.stderr
    assert bodies(fake)[0]["size"] == "1536x1024"


def test_negative_prompt_without_a_field_is_not_sent_and_said(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-2", "--negative-prompt", "blur")
    assert result.code == 0, result.stderr
    assert "negative_prompt" not in bodies(fake)[0]
    assert "--negative-prompt not sent" in result.stderr


def test_concurrency_bounds_the_requests_in_flight(fake: FakeProvider) -> None:
    fake.script("/images/generations", *[Reply(delay=0.3) for _ in range(4)])
    result = gen(fake, "otter", "-m", "dall-e-3", "-n", "4", "-j", "1")
    assert result.code == 0 and len(result.lines) == 4
    assert fake.max_in_flight == 1
    fake.script("/images/generations", *[Reply(delay=0.3) for _ in range(4)])
    result = gen(fake, "otter", "-m", "dall-e-3", "-n", "4", "-j", "3")
    assert result.code == 0 and fake.max_in_flight == 3


def test_a_failed_download_is_retried(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/files/", server_error())
    result = gen(fake, "otter", "-m", "dall-e-2", "--response-format", "url", "-o", "out")
    assert result.code == 0, result.stderr
    assert (tmp_path / result.lines[0]).read_bytes() == TINY_PNG
    assert len([r for r in fake.requests if r.path.startswith("/files/")]) == 2


def test_user_is_sent_as_safety_identifier_to_openais_gpt_image_models() -> None:
    result = run_cli("generate", "otter", "-m", "openai/gpt-image-2", "--user", "user-42", "--dry-run",
                     env={"OPENAI_API_KEY": OPENAI_KEY})  # fmt: skip
    assert result.code == 0, result.stderr
    assert '"safety_identifier": "user-42"' in result.stdout and '"user"' not in result.stdout


def test_user_stays_user_for_an_openai_compatible_server(fake: FakeProvider) -> None:
    result = gen(fake, "otter", "-m", "gpt-image-2", "--user", "user-42")
    assert result.code == 0, result.stderr
    assert bodies(fake)[0]["user"] == "user-42" and "safety_identifier" not in bodies(fake)[0]


def test_dall_e_keeps_user_on_openai() -> None:
    from imggen.catalog import parse_model
    from imggen.providers.openai import PROVIDER
    from imggen.settings import resolve
    from imggen.types import ImageRequest

    for model, field in (("openai/dall-e-3", "user"), ("openai/gpt-image-2", "safety_identifier")):
        settings = resolve(model=model, env={"OPENAI_API_KEY": OPENAI_KEY})
        body = PROVIDER.build_request(ImageRequest("otter", parse_model(model), user="u"), settings).json
        assert body[field] == "u" and not ({"user", "safety_identifier"} - {field}) & set(body)


def test_the_size_the_response_reports_is_the_size_recorded(fake: FakeProvider, tmp_path: Path) -> None:
    b64 = base64.b64encode(TINY_PNG).decode()
    answer = {"created": 1, "data": [{"b64_json": b64}], "size": "1536x1024", "quality": "high"}
    fake.script("/images/generations", Reply(json=answer))
    result = gen(fake, "otter", "-m", "gpt-image-2", "-s", "auto", "--json", "--metadata")
    assert result.code == 0, result.stderr
    assert bodies(fake)[0]["size"] == "auto"
    line = result.json_lines()[0]
    assert line["size"] == "1536x1024"
    assert json.loads(Path(line["path"]).with_suffix(".json").read_text())["size"] == "1536x1024"


def test_a_response_without_a_size_records_the_size_asked(fake: FakeProvider) -> None:
    b64 = base64.b64encode(TINY_PNG).decode()
    fake.script("/images/generations", Reply(json={"created": 1, "data": [{"b64_json": b64}], "size": 7}))
    result = gen(fake, "otter", "-m", "gpt-image-2", "-s", "1024x1536", "--json")
    assert result.code == 0, result.stderr
    assert result.json_lines()[0]["size"] == "1024x1536"
