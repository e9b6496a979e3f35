"""Bedrock edits (the Stability AI Image Services and SD3.5 Large image-to-image) with boto3's SigV4
signing running for real against the local fake, which takes each service's body only as Bedrock would."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import imggen
from conftest import run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakeserver import TINY_PNG, FakeProvider, Reply, png_of, solid_png
from imggen.errors import ContentFilterError, UsageError
from imggen.providers.placeholder_png import decode_png

INPAINT = "bedrock/us.stability.stable-image-inpaint-v1:0"
REPLACE = "bedrock/us.stability.stable-image-search-replace-v1:0"
RECOLOR = "bedrock/us.stability.stable-image-search-recolor-v1:0"
REMOVE_BG = "bedrock/us.stability.stable-image-remove-background-v1:0"
OUTPAINT = "bedrock/us.stability.stable-outpaint-v1:0"
STYLE_TRANSFER = "bedrock/us.stability.stable-style-transfer-v1:0"
SD35 = "bedrock/stability.sd3-5-large-v1:0"


def half_mask(width: int, height: int) -> bytes:
    """Transparent (change) on the left half, opaque (keep) on the right."""
    row = b"\x00" + b"\x00\x00\x00\x00" * (width // 2) + b"\x00\x00\x00\xff" * (width - width // 2)
    return png_of(width, height, row * height, alpha=True)


PHOTO = solid_png(64, 64, False, b"\x10\x80\xf0")


@pytest.fixture
def aws(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    for key, value in aws_env(fake).items():
        monkeypatch.setenv(key, value)
    fake.expect_region = "us-west-2"
    return fake


def aws_env(fake: FakeProvider) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.base_url, "AWS_REGION": "us-west-2"}  # fmt: skip


def sent(fake: FakeProvider) -> list[dict]:
    return [r.json for r in fake.requests if r.path.endswith("/invoke")]


def test_inpaint_with_a_mask_is_signed_and_sends_a_white_on_black_mask(aws: FakeProvider) -> None:
    result = imggen.edit("a red hat", PHOTO, mask=half_mask(64, 64), model=INPAINT, seed=7, negative_prompt="fog",
                         grow_mask=10)  # fmt: skip
    assert result.data[0].image_bytes() == TINY_PNG
    request = next(r for r in aws.requests if r.path.endswith("/invoke"))
    assert request.path == "/model/us.stability.stable-image-inpaint-v1:0/invoke"
    assert aws.signed_regions == ["us-west-2"]
    body = request.json
    assert set(body) == {"image", "mask", "prompt", "seed", "negative_prompt", "grow_mask"}
    assert base64.b64decode(body["image"]) == PHOTO
    assert (body["prompt"], body["seed"], body["negative_prompt"], body["grow_mask"]) == ("a red hat", 7, "fog", 10)
    width, height, channels, rows = decode_png(base64.b64decode(body["mask"]))  # type: ignore[misc]
    assert (width, height, channels) == (64, 64, 1)
    assert rows[5][0] == 255 and rows[5][63] == 0  # transparent -> white (change), opaque -> black (keep)


def test_search_and_replace_takes_the_mask_prompt_as_search_prompt(aws: FakeProvider) -> None:
    imggen.edit("a leather jacket", PHOTO, model=REPLACE, mask_prompt="the sweater")
    body = sent(aws)[0]
    assert set(body) == {"image", "prompt", "search_prompt"}
    assert (body["prompt"], body["search_prompt"]) == ("a leather jacket", "the sweater")


def test_search_and_recolor_takes_it_as_select_prompt(aws: FakeProvider) -> None:
    imggen.edit("pink", PHOTO, model=RECOLOR, mask_prompt="the jacket", grow_mask=3)
    assert sent(aws)[0]["select_prompt"] == "the jacket"


def test_a_text_mask_service_without_mask_prompt_is_refused_before_sending(aws: FakeProvider) -> None:
    with pytest.raises(UsageError, match="needs --mask-prompt"):
        imggen.edit("a leather jacket", PHOTO, model=REPLACE)
    assert sent(aws) == []


def test_a_mask_where_the_service_takes_none_is_refused(aws: FakeProvider) -> None:
    with pytest.raises(UsageError, match="takes no mask"):
        imggen.edit("x", PHOTO, mask=half_mask(64, 64), model=REPLACE)


def test_remove_background_sends_only_the_image(aws: FakeProvider) -> None:
    result = imggen.edit("remove the background", PHOTO, model=REMOVE_BG, output_format="png")
    assert result.data[0].image_bytes() == TINY_PNG
    assert set(sent(aws)[0]) == {"image", "output_format"}


def test_an_unknown_service_parameter_is_refused_with_the_known_ones(aws: FakeProvider) -> None:
    with pytest.raises(UsageError, match="-p strength is not a") as info:
        imggen.edit("x", PHOTO, model=REMOVE_BG, strength=0.5)
    assert "output_format" in (info.value.hint or "")


def test_outpaint_needs_a_direction(aws: FakeProvider) -> None:
    with pytest.raises(UsageError, match="how far to extend"):
        imggen.edit("more sky", PHOTO, model=OUTPAINT)
    imggen.edit("more sky", PHOTO, model=OUTPAINT, up=200, left=64)
    assert {k: sent(aws)[0][k] for k in ("up", "left", "prompt")} == {"up": 200, "left": 64, "prompt": "more sky"}


def test_style_transfer_sends_two_images(aws: FakeProvider) -> None:
    style = solid_png(32, 32, False, b"\xff\x00\x00")
    imggen.edit("statue", [PHOTO, style], model=STYLE_TRANSFER)
    body = sent(aws)[0]
    assert base64.b64decode(body["init_image"]) == PHOTO and base64.b64decode(body["style_image"]) == style
    with pytest.raises(UsageError, match="takes 2 input images"):
        imggen.edit("statue", PHOTO, model=STYLE_TRANSFER)


def test_sd35_image_to_image(aws: FakeProvider) -> None:
    imggen.edit("as a watercolour", PHOTO, model=SD35, seed=3, strength=0.4)
    body = sent(aws)[0]
    assert body["mode"] == "image-to-image" and body["strength"] == 0.4 and body["seed"] == 3
    assert "aspect_ratio" not in body and base64.b64decode(body["image"]) == PHOTO
    imggen.edit("as a watercolour", PHOTO, model=SD35)
    assert sent(aws)[1]["strength"] == 0.7


def test_sd35_still_generates_from_text(aws: FakeProvider) -> None:
    imggen.generate("a lighthouse", model=SD35)
    assert sent(aws)[0] == {"prompt": "a lighthouse", "mode": "text-to-image"}


def test_a_filtered_edit_is_a_content_filter_error(aws: FakeProvider) -> None:
    aws.script("/invoke", Reply(json={"finish_reasons": ["Filter reason: input image"]},
                                headers={"x-amzn-RequestId": "aws-f"}))  # fmt: skip
    with pytest.raises(ContentFilterError, match="Filter reason: input image"):
        imggen.edit("a red hat", PHOTO, model=INPAINT)


def test_n_fans_out_one_image_per_call(aws: FakeProvider) -> None:
    result = imggen.edit("a red hat", PHOTO, model=INPAINT, n=3)
    assert len(result.data) == 3 and len(sent(aws)) == 3


def test_an_edit_only_model_cannot_generate(aws: FakeProvider) -> None:
    with pytest.raises(UsageError, match="only edits images"):
        imggen.generate("a lighthouse", model=INPAINT)
    assert sent(aws) == []


def edit_cli(fake: FakeProvider, *args: str):
    return run_cli("edit", *args, env=aws_env(fake))


def test_cli_inpaint_with_a_mask(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PHOTO)
    (tmp_path / "mask.png").write_bytes(half_mask(64, 64))
    result = edit_cli(fake, "a red hat", "photo.png", "--mask", "mask.png", "-m", INPAINT, "-o", "out", "--json")
    assert result.code == 0, result.stderr
    assert (tmp_path / result.json_lines()[0]["path"]).read_bytes() == TINY_PNG
    body = sent(fake)[0]
    assert set(body) == {"image", "mask", "prompt"} and base64.b64decode(body["image"]) == PHOTO
    assert fake.signed_regions == ["us-west-2"]


def test_cli_search_and_replace_and_remove_background(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PHOTO)
    result = edit_cli(fake, "a leather jacket", "photo.png", "--mask-prompt", "the sweater", "-m", REPLACE,
                      "-p", "grow_mask=5", "-o", "out")  # fmt: skip
    assert result.code == 0, result.stderr
    assert sent(fake)[0]["search_prompt"] == "the sweater" and sent(fake)[0]["grow_mask"] == 5
    result = edit_cli(fake, "cut out", "photo.png", "-m", REMOVE_BG, "-o", "out2")
    assert result.code == 0, result.stderr
    assert set(sent(fake)[1]) == {"image"}


def test_cli_sd35_image_to_image(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PHOTO)
    result = edit_cli(fake, "as a watercolour", "photo.png", "-m", SD35, "-p", "strength=0.5", "-o", "out")
    assert result.code == 0, result.stderr
    assert sent(fake)[0]["mode"] == "image-to-image" and sent(fake)[0]["strength"] == 0.5


def test_cli_content_filter(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PHOTO)
    fake.script("/invoke", Reply(json={"finish_reasons": ["Filter reason: prompt"]}))
    result = edit_cli(fake, "a red hat", "photo.png", "-m", INPAINT, "-o", "out", "--json")
    assert result.code != 0
    assert result.json_lines()[0]["error"]["type"] == "content_filter"


def test_cli_edit_only_model_with_generate_is_exit_2(fake: FakeProvider) -> None:
    result = run_cli("generate", "a lighthouse", "-m", INPAINT, env=aws_env(fake))
    assert result.code == 2 and "only edits images" in result.stderr
    assert fake.requests == []


def test_cli_dry_run_describes_the_images_and_never_shows_base64(fake: FakeProvider, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PHOTO)
    (tmp_path / "mask.png").write_bytes(half_mask(64, 64))
    result = edit_cli(fake, "a red hat", "photo.png", "--mask", "mask.png", "-m", INPAINT, "--dry-run")
    assert result.code == 0, result.stderr
    assert "photo.png, image/png, 64x64" in result.stdout and "white-on-black" in result.stdout
    assert base64.b64encode(PHOTO).decode()[:40] not in result.everything()
    assert fake.requests == []


def test_built_request_holds_the_bytes_it_does_not_show(tmp_path: Path) -> None:
    from imggen.catalog import parse_model
    from imggen.inputs import load
    from imggen.providers import get_provider
    from imggen.settings import resolve
    from imggen.types import ImageRequest

    (tmp_path / "photo.png").write_bytes(PHOTO)
    request = ImageRequest("a red hat", parse_model(INPAINT), images=(load(tmp_path / "photo.png", "image"),))
    settings = resolve(model=INPAINT, flags={"aws_region_name": "us-west-2"}, env={})
    built = get_provider("bedrock").build_request(request, settings, dry_run=True)
    encoded = base64.b64encode(PHOTO).decode()
    assert encoded not in json.dumps(built.json) and encoded.encode() in (built.content or b"")
