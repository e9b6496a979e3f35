"""Edits on OpenAI, Azure OpenAI (deployment route and v1) and OpenAI-compatible servers: `imggen.edit`
and `imggen edit` against the local fake, which takes only the multipart body the real
`/images/edits` takes; the official openai client's body as the reference; prices of input images."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

import imggen
from conftest import AZURE_KEY, OPENAI_KEY, azure_env, openai_env, run_cli
from fakeserver import FakeProvider, Recorded
from imggen.catalog import input_cost, lookup, usage_cost
from imggen.errors import UsageError
from imggen.inputs import load
from imggen.types import ImageRequest, ModelRef, Usage
from test_edit import jpeg_head, png

A = png(64, 64)
B = png(64, 32, shade=10)
MASK = png(64, 64, alpha=True, transparent=True)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, data in (("a.png", A), ("b.png", B), ("mask.png", MASK)):
        (tmp_path / name).write_bytes(data)
    return tmp_path


def edits(fake: FakeProvider) -> list[Recorded]:
    return [r for r in fake.requests if r.path.endswith("/images/edits")]


def parts(request: Recorded) -> list[tuple[str, str, bytes]]:
    assert request.files is not None
    return [(name, kind, data) for name, _, kind, data in request.files]


# -- OpenAI ---------------------------------------------------------------------------------------------


def test_one_image_is_the_field_image(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in openai_env(fake).items():
        monkeypatch.setenv(key, value)
    response = imggen.edit("add a red hat", A, model="openai/gpt-image-2", quality="low")
    assert len(response.data) == 1 and response.data[0].image_bytes() == fake.image_bytes
    [request] = edits(fake)
    assert request.path == "/v1/images/edits" and request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.form == {"prompt": "add a red hat", "model": "gpt-image-2", "n": "1", "quality": "low"}
    assert parts(request) == [("image", "image/png", A)]


def test_several_images_and_a_mask(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in openai_env(fake).items():
        monkeypatch.setenv(key, value)
    response = imggen.edit("both, in one picture", [A, B], mask=MASK, model="gpt-image-1.5", n=2,
                           size="1536x1024", output_format="jpeg", output_compression=80)  # fmt: skip
    assert [image.index for image in response.data] == [1, 2]
    [request] = edits(fake)
    assert parts(request) == [("image[]", "image/png", A), ("image[]", "image/png", B), ("mask", "image/png", MASK)]
    assert request.form == {
        "prompt": "both, in one picture", "model": "gpt-image-1.5", "n": "2", "size": "1536x1024",
        "output_format": "jpeg", "output_compression": "80",
    }  # fmt: skip
    # The cost comes from the usage: text in, the input images' tokens at the image-input rate, image out.
    rates = lookup("openai/gpt-image-1.5").price["tokens"]  # type: ignore[index]
    images_in = 2 * 194  # one 512 px tile each (the fake's count, as OpenAI's rule gives for these sizes)
    text_in = len(["both,", "in", "one", "picture"]) + 6
    expected = text_in * rates["text_in"] + images_in * rates["image_in"] + 2 * 1056 * rates["image_out"]
    assert response.cost_usd == pytest.approx(expected)
    assert response.usage.input_image_tokens == images_in


def test_what_we_send_is_what_the_openai_client_sends(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The official client (openai 3.57.0) and imggen, one request each: the same fields and files."""
    import openai

    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=fake.openai_base, max_retries=0)
    image_a, image_b, mask = (load(data, name) for data, name in ((A, "a"), (B, "b"), (MASK, "mask")))
    client.images.edit(image=[("a.png", A, "image/png"), ("b.png", B, "image/png")], prompt="hat",
                       mask=("mask.png", MASK, "image/png"), model="gpt-image-1.5", n=2, input_fidelity="high",
                       background="opaque")  # fmt: skip
    client.images.edit(image=("a.png", A, "image/png"), prompt="hat", model="gpt-image-2", n=1)
    for key, value in openai_env(fake).items():
        monkeypatch.setenv(key, value)
    imggen.edit("hat", [image_a, image_b], mask=mask, model="gpt-image-1.5", n=2, input_fidelity="high",
                background="opaque")  # fmt: skip
    imggen.edit("hat", image_a, model="gpt-image-2")
    sdk_many, sdk_one, ours_many, ours_one = edits(fake)
    assert ours_many.form == sdk_many.form and ours_one.form == sdk_one.form
    assert parts(ours_many) == parts(sdk_many) and parts(ours_one) == parts(sdk_one)


def test_input_fidelity_where_the_model_takes_it(fake: FakeProvider, files: Path) -> None:
    env = openai_env(fake)
    sent = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-1.5", "--input-fidelity", "high", env=env)
    assert sent.code == 0, sent.stderr
    assert edits(fake)[-1].form["input_fidelity"] == "high"  # type: ignore[index]
    # gpt-image-2: "omit this parameter" (openai 3.57.0): not sent, and said so
    omitted = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "--input-fidelity", "high", env=env)
    assert omitted.code == 0, omitted.stderr
    assert "input_fidelity" not in edits(fake)[-1].form  # type: ignore[operator]
    assert "no input fidelity field: --input-fidelity not sent" in omitted.stderr
    # gpt-image-1-mini takes only low
    refused = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-1-mini", "--input-fidelity", "high",
                      "--allow-retired", env=env)  # fmt: skip
    assert refused.code == 2 and "Allowed: low" in refused.stderr and len(edits(fake)) == 2


def test_safety_identifier_on_openai_user_elsewhere(fake: FakeProvider, files: Path) -> None:
    own = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "--user", "u-7", "--dry-run",
                  env={"OPENAI_API_KEY": OPENAI_KEY})  # fmt: skip
    assert own.code == 0, own.stderr
    assert '"safety_identifier": "u-7"' in own.stdout and '"user"' not in own.stdout
    compatible = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "--user", "u-7",
                         env=openai_env(fake))  # fmt: skip
    assert compatible.code == 0, compatible.stderr
    assert edits(fake)[-1].form["user"] == "u-7"  # type: ignore[index]


def test_cli_edit_saves_the_result(fake: FakeProvider, files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "--mask", str(files / "mask.png"),
                     "-m", "gpt-image-2", "-o", str(files / "out"), "--json", "--metadata",
                     env=openai_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    line = result.json_lines()[0]
    assert Path(line["path"]).read_bytes() == fake.image_bytes
    assert [name for name, _, _ in parts(edits(fake)[0])] == ["image[]", "image[]", "mask"]
    sidecar = json.loads(Path(line["path"]).with_suffix(".json").read_text())
    assert [i["name"] for i in sidecar["parameters"]["images"]] == ["a.png", "b.png"]


def test_dry_run_shows_the_form_with_files_described_never_their_bytes(files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "--mask", str(files / "mask.png"),
                     "-m", "gpt-image-2", "-q", "low", "-p", "background=opaque", "--dry-run",
                     env={"OPENAI_API_KEY": OPENAI_KEY})  # fmt: skip
    assert result.code == 0, result.stderr
    assert "POST https://api.openai.com/v1/images/edits\n" in result.stdout
    described = (f"<a.png, image/png, {len(A)} bytes>", f"<b.png, image/png, {len(B)} bytes>",
                 f'"mask": "<mask.png, image/png, {len(MASK)} bytes>"')  # fmt: skip
    for shown in ('"image[]": [', *described, '"background": "opaque"', '"n": "1"'):
        assert shown in result.stdout, shown
    for data in (A, B, MASK):
        assert base64.b64encode(data).decode()[:40] not in result.stdout
    assert b"IHDR" not in result.raw and OPENAI_KEY not in result.stdout
    one = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "--dry-run",
                  env={"OPENAI_API_KEY": OPENAI_KEY})  # fmt: skip
    assert f'"image": "<a.png, image/png, {len(A)} bytes>"' in one.stdout


def test_params_that_are_no_form_field_are_usage_errors(files: Path) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    listed = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "-p", "stop=[1,2]", "--dry-run", env=env)
    assert listed.code == 2 and "a list cannot be sent as a multipart form field" in listed.stderr
    as_file = run_cli(
        "edit", "hat", str(files / "a.png"), "-m", "gpt-image-2", "-p", "mask=x.png", "--dry-run", env=env
    )
    assert as_file.code == 2 and "mask is a file field" in as_file.stderr
    nested = run_cli("edit", "hat", str(files / "a.png"), "-m", "gpt-image-2.5-flare", "-p", "output_format=svg",
                     "-p", 'svg={"model": "author-1", "reasoning": {"effort": "low"}}', "--dry-run",
                     env=env)  # fmt: skip
    assert nested.code == 0, nested.stderr
    assert '"svg[model]": "author-1"' in nested.stdout and '"svg[reasoning][effort]": "low"' in nested.stdout


def test_inputs_are_checked_against_the_model_before_sending(fake: FakeProvider, files: Path) -> None:
    (files / "anim.gif").write_bytes(b"GIF89a\x10\x00\x10\x00\x00\x00\x00;")
    gif = run_cli("edit", "hat", str(files / "anim.gif"), "-m", "gpt-image-2", env=openai_env(fake))
    assert gif.code == 2 and "takes PNG, JPEG, WebP" in gif.stderr
    many = run_cli("edit", "hat", *[str(files / "a.png")] * 17, "-m", "gpt-image-2", env=openai_env(fake))
    assert many.code == 2 and "at most 16 input images; 17 given" in many.stderr
    (files / "mask.jpg").write_bytes(jpeg_head(64, 64))
    mask = run_cli("edit", "hat", str(files / "a.png"), "--mask", str(files / "mask.jpg"), "-m", "gpt-image-2",
                   env=openai_env(fake))  # fmt: skip
    assert mask.code == 2 and "must be a PNG with an alpha channel" in mask.stderr
    assert edits(fake) == []


def test_dall_e_cannot_edit() -> None:
    with pytest.raises(UsageError, match="cannot edit images"):
        imggen.edit("hat", A, model="openai/dall-e-2", api_key=OPENAI_KEY, allow_retired=True)


# -- OpenAI-compatible servers ----------------------------------------------------------------------------


def test_an_openai_compatible_server_gets_the_same_form(fake: FakeProvider, files: Path) -> None:
    fake.require_key = False
    result = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "-m", "openai/flux-kontext-dev",
                     "--api-base", fake.openai_base, "-n", "2", "-s", "1024x1024")  # fmt: skip
    assert result.code == 0, result.stderr
    [request] = edits(fake)
    assert "authorization" not in request.headers
    assert request.form == {"prompt": "hat", "model": "flux-kontext-dev", "n": "2", "size": "1024x1024"}
    assert [name for name, _, _ in parts(request)] == ["image[]", "image[]"]


def test_a_file_imggen_cannot_read_goes_to_a_compatible_server_as_it_is(fake: FakeProvider, tmp_path: Path) -> None:
    # A server of one's own may read what imggen cannot (TIFF, HEIC, …): it decides. OpenAI's own refuses first.
    tiff = b"II*\x00" + b"\x00" * 60
    (tmp_path / "scan.tiff").write_bytes(tiff)
    fake.require_key, fake.prism = False, True
    response = imggen.edit("hat", [tmp_path / "scan.tiff", b"Example data"], mask=b"Example data",
                           model="openai/gpt-image-2", api_base=fake.openai_base)  # fmt: skip
    assert len(response.data) == 1
    [request] = edits(fake)
    assert request.files == [("image[]", "scan.tiff", "image/tiff", tiff),
                             ("image[]", "images[1]", "application/octet-stream", b"Example data"),
                             ("mask", "mask", "application/octet-stream", b"Example data")]  # fmt: skip
    shown = run_cli("edit", "hat", str(tmp_path / "scan.tiff"), "-m", "openai/gpt-image-2", "--api-base",
                    fake.openai_base, "--dry-run")  # fmt: skip
    assert shown.code == 0, shown.stderr
    assert f'"image": "<scan.tiff, image/tiff, {len(tiff)} bytes>"' in shown.stdout and "II*" not in shown.stdout
    with pytest.raises(UsageError, match=r"images\[1\] is not a PNG, JPEG, WebP or GIF image") as caught:
        imggen.edit("hat", [A, b"Example data"], model="openai/gpt-image-2", api_key=OPENAI_KEY)
    assert caught.value.param == "images"
    with pytest.raises(UsageError, match="mask is not a PNG"):
        imggen.edit("hat", A, mask=b"Example data", model="openai/gpt-image-2", api_key=OPENAI_KEY)
    assert len(edits(fake)) == 1


# -- Azure ------------------------------------------------------------------------------------------------


def test_azure_deployment_route(fake: FakeProvider, files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), "--mask", str(files / "mask.png"), "-m", "azure/gpt-image-2",
                     "-q", "high", env=azure_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    [request] = edits(fake)
    assert request.path == "/openai/deployments/gpt-image-2/images/edits"
    assert request.query == {"api-version": "2025-04-01-preview"} and request.headers["api-key"] == AZURE_KEY
    assert request.form == {"prompt": "hat", "n": "1", "quality": "high"}  # the route names the model
    assert parts(request) == [("image", "image/png", A), ("mask", "image/png", MASK)]


def test_azure_v1_surface_names_the_deployment_in_the_form(fake: FakeProvider, files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "-m", "azure/my-images",
                     "--api-version", "v1", "--user", "u-1", env=azure_env(fake))  # fmt: skip
    assert result.code == 0, result.stderr
    [request] = edits(fake)
    assert request.path == "/openai/v1/images/edits" and request.query == {}
    assert request.form == {"prompt": "hat", "model": "my-images", "n": "1", "user": "u-1"}


def test_azure_edit_with_an_older_api_version_is_refused_before_sending(fake: FakeProvider, files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), "-m", "azure/gpt-image-1.5", "--api-version", "2024-10-21",
                     env=azure_env(fake))  # fmt: skip
    assert result.code == 2 and "2025-04-01-preview or later; 2024-10-21 is set" in result.stderr
    assert fake.requests == []
    later = run_cli("edit", "hat", str(files / "a.png"), "-m", "azure/gpt-image-1.5", "--api-version",
                    "2025-07-01-preview", env=azure_env(fake))  # fmt: skip
    assert later.code == 0, later.stderr


def test_azure_webp_output_is_refused_for_edits_too(fake: FakeProvider, files: Path) -> None:
    result = run_cli("edit", "hat", str(files / "a.png"), "-m", "azure/gpt-image-2", "-p", "output_format=webp",
                     env=azure_env(fake))  # fmt: skip
    assert result.code == 2 and fake.requests == []


# -- costs ------------------------------------------------------------------------------------------------


def _estimate(stdout: str) -> float:
    line = next(line for line in stdout.splitlines() if line.startswith("# estimated cost: $"))
    return float(line.split("$", 1)[1].split()[0])


def test_the_estimate_adds_the_input_images_tokens(files: Path) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    generate = run_cli("generate", "hat", "-m", "gpt-image-1.5", "-q", "high", "-s", "1024x1024", "--dry-run",
                       env=env)  # fmt: skip
    low = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "-m", "gpt-image-1.5", "-q", "high",
                  "-s", "1024x1024", "--dry-run", env=env)  # fmt: skip
    high = run_cli("edit", "hat", str(files / "a.png"), str(files / "b.png"), "-m", "gpt-image-1.5", "-q", "high",
                   "-s", "1024x1024", "--input-fidelity", "high", "--dry-run", env=env)  # fmt: skip
    assert generate.code == low.code == high.code == 0, low.stderr
    rate = 8e-06  # gpt-image-1.5's image input, per token
    assert _estimate(low.stdout) == pytest.approx(_estimate(generate.stdout) + 2 * 194 * rate, abs=1e-4)
    # high fidelity: 4,160 more for the square image, 6,240 for the other
    assert _estimate(high.stdout) == pytest.approx(_estimate(low.stdout) + (4160 + 6240) * rate, abs=1e-4)


def test_input_tokens_follow_openais_tile_rule() -> None:
    info = lookup("openai/gpt-image-1")
    ref = ModelRef("openai", "gpt-image-1", info)

    def cost(width: int, height: int, fidelity: str | None = None) -> float | None:
        image = load(png(width, height), "x")
        return input_cost(info, ImageRequest("x", ref, images=(image,), input_fidelity=fidelity), 1)

    rate = 1e-05
    assert cost(1024, 1024) == pytest.approx(194 * rate)  # scaled to 512x512: one tile
    assert cost(1024, 1025) == pytest.approx(194 * rate)  # 512x512.5, rounded down: one tile
    assert cost(512, 513) == pytest.approx((65 + 2 * 129) * rate)  # not scaled: two tiles
    assert cost(4096, 1024) == pytest.approx((65 + 4 * 129) * rate)  # 2048x512: four tiles
    assert cost(1024, 1024, "high") == pytest.approx((194 + 4160) * rate)
    assert cost(1536, 1024, "high") == pytest.approx((65 + 2 * 129 + 6240) * rate)
    # gpt-image-2 reads inputs at high fidelity whatever is asked
    two = lookup("openai/gpt-image-2")
    request = ImageRequest("x", ModelRef("openai", "gpt-image-2", two), images=(load(png(8, 8), "x"),))
    assert input_cost(two, request, 3) == pytest.approx(3 * (194 + 4160) * 8e-06)


def test_usage_prices_the_input_image_tokens() -> None:
    info = lookup("openai/gpt-image-2")
    usage = Usage(input_tokens=8762, output_tokens=1756, total_tokens=10518, input_text_tokens=54,
                  input_image_tokens=8708)  # fmt: skip
    assert usage_cost(info, usage) == pytest.approx(54 * 5e-06 + 8708 * 8e-06 + 1756 * 3e-05)
    # no details: the input tokens less the image tokens are text
    assert usage_cost(info, Usage(input_tokens=100, output_tokens=10, input_image_tokens=60)) == pytest.approx(
        40 * 5e-06 + 60 * 8e-06 + 10 * 3e-05
    )


def test_max_cost_refuses_an_edit_whose_inputs_push_it_over(fake: FakeProvider, files: Path) -> None:
    args = ("hat", str(files / "a.png"), str(files / "b.png"), "-m", "gpt-image-2", "-q", "low", "-s", "1024x1024")
    dry = run_cli("edit", *args, "--dry-run", env=openai_env(fake))
    estimate = _estimate(dry.stdout)
    assert estimate > 0.006  # the output alone (low, 1024x1024) is $0.006
    refused = run_cli("edit", *args, "--max-cost", "0.01", env=openai_env(fake))
    assert refused.code == 2 and "above --max-cost" in refused.stderr and fake.requests == []
    allowed = run_cli("edit", *args, "--max-cost", f"{estimate + 0.001:.4f}", env=openai_env(fake))
    assert allowed.code == 0, allowed.stderr


# -- the fake takes only what the real endpoint takes -------------------------------------------------------


def test_the_fake_refuses_what_the_real_endpoint_refuses(fake: FakeProvider) -> None:
    url, auth = fake.openai_base + "/images/edits", {"Authorization": f"Bearer {OPENAI_KEY}"}
    image = ("a.png", A, "image/png")

    def post(data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]) -> httpx.Response:
        return httpx.post(url, headers=auth, data=data, files=files)

    as_json = httpx.post(url, headers=auth, json={"prompt": "x", "image": base64.b64encode(A).decode()})
    assert as_json.status_code == 400 and "multipart/form-data" in as_json.json()["error"]["message"]
    assert post({"prompt": "x", "model": "gpt-image-2", "moderation": "low"}, [("image", image)]).status_code == 400
    assert post({"model": "gpt-image-2"}, [("image", image)]).json()["error"]["param"] == "prompt"
    mask_only = post({"prompt": "x", "model": "gpt-image-2"}, [("mask", ("m.png", MASK, "image/png"))])
    assert mask_only.json()["error"]["param"] == "image"
    too_many = post({"prompt": "x", "model": "gpt-image-2"}, [("image[]", image)] * 17)
    assert "at most 16" in too_many.json()["error"]["message"]
    jpeg_mask = post({"prompt": "x", "model": "gpt-image-2"}, [("image", image), ("mask", ("m.jpg", jpeg_head(4, 4),
                                                                                          "image/jpeg"))])  # fmt: skip
    assert jpeg_mask.json()["error"]["param"] == "mask"
    fidelity = post({"prompt": "x", "model": "gpt-image-2", "input_fidelity": "high"}, [("image", image)])
    assert fidelity.json()["error"]["param"] == "input_fidelity"
    ok = post({"prompt": "x", "model": "gpt-image-2", "n": "2"}, [("image[]", image), ("image[]", image)])
    assert ok.status_code == 200 and len(ok.json()["data"]) == 2
    assert ok.json()["usage"]["input_tokens_details"]["image_tokens"] == 2 * (194 + 4160)


def test_an_unlisted_gpt_image_id_edits_by_its_familys_rules() -> None:
    from imggen.catalog import parse_model

    info = parse_model("openai/gpt-image-9").info
    assert info is not None and info.from_family is not None
    assert "edit" in info.tasks and info.edit == lookup("openai/gpt-image-2").edit  # type: ignore[union-attr]
