"""Edits on the Gemini API and Vertex AI Gemini image models: the prompt and one inline image part per
input image, checked by fakes that take what Google takes (tests/fakegoogle.py), with the Gemini API
key in `x-goog-api-key` and google-auth's token exchange running for real for Vertex AI."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest

import imggen
from conftest import run_cli
from fakegoogle import GEMINI_KEY, google_error
from fakeserver import FakeProvider, Reply
from imggen.api import plan_generation
from imggen.errors import GenerationError, UsageError
from imggen.inputs import load
from imggen.plan import Options
from imggen.providers import get_provider
from test_contract import input_png
from test_google import service_account, vertex_env  # noqa: F401 (a fixture)

MIB = 1024 * 1024


def png(width: int = 16, height: int = 16, *, alpha: bool = False, shade: int = 0) -> bytes:
    return input_png(width, height, alpha, shade)


def jpeg(width: int, height: int) -> bytes:
    """The smallest JPEG header imggen's probe reads (SOI, a baseline frame header, EOI)."""
    frame = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + frame + b"\xff\xd9"


def webp(width: int, height: int) -> bytes:
    """A lossless WebP header (VP8L) with the size in its first bits."""
    bits = struct.pack("<I", (width - 1) | ((height - 1) << 14))
    chunk = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + bits + b"\x00"
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def padded(size: int) -> bytes:
    """A PNG header followed by padding: an image of `size` bytes as far as the checks go."""
    head = png()
    return head + b"\x00" * (size - len(head))


@pytest.fixture
def gemini_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)


@pytest.fixture
def vertex_creds(fake: FakeProvider, service_account: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    for name, value in vertex_env(fake, service_account).items():
        monkeypatch.setenv(name, value)


def sent(fake: FakeProvider) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith(("/v1/projects/", "/v1beta/models/"))]


def parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    (content,) = body["contents"]
    assert content["role"] == "user"
    return content["parts"]


def decoded(part: dict[str, Any]) -> tuple[str, bytes]:
    blob = part["inlineData"]
    assert set(blob) == {"mimeType", "data"}
    return blob["mimeType"], base64.b64decode(blob["data"], validate=True)


def test_gemini_api_sends_each_image_then_the_prompt(fake: FakeProvider, gemini_key: None) -> None:
    images = [png(shade=10), jpeg(32, 24), webp(20, 10)]
    api_base = fake.base_url + "/v1beta"
    response = imggen.edit("give the otter a hat", images, model="gemini/gemini-3.1-flash-image", api_base=api_base)
    assert len(response.data) == 1 and response.data[0].image_bytes() == fake.image_bytes
    assert response.data[0].text == "Here is your image."
    (request,) = sent(fake)
    assert request.path == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert request.headers["x-goog-api-key"] == GEMINI_KEY and "key" not in request.query
    assert request.headers["content-type"] == "application/json"
    *inline, text = parts(request.json)
    assert text == {"text": "give the otter a hat"}  # the prompt after the images, as Google advises
    assert [decoded(p) for p in inline] == [("image/png", images[0]), ("image/jpeg", images[1]),
                                            ("image/webp", images[2])]  # fmt: skip
    assert request.json["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "candidateCount": 1}
    assert response.usage.input_tokens == 5 + 3 * 560  # what the fake counts for three input images


def test_vertex_edit_exchanges_a_token_and_goes_to_the_global_location(fake: FakeProvider, vertex_creds: None) -> None:
    images = [png(shade=1), png(shade=2)]
    response = imggen.edit("blend the two", images, model="vertex_ai/gemini-3-pro-image", api_base=fake.base_url)
    assert len(response.data) == 1
    project, location, model, method, token = fake.google_calls[0]
    assert (project, location, model, method) == ("sa-project", "global", "gemini-3-pro-image", "generateContent")
    assert token in fake.google_tokens  # google-auth signed a JWT, the fake checked it and issued this token
    (request,) = sent(fake)
    assert request.headers["authorization"] == f"Bearer {token}"
    *inline, text = parts(request.json)
    assert [decoded(p) for p in inline] == [("image/png", images[0]), ("image/png", images[1])]
    assert text == {"text": "blend the two"}


def test_edit_options_go_in_the_generation_config(fake: FakeProvider, gemini_key: None) -> None:
    api_base = fake.base_url + "/v1beta"
    imggen.edit("wider", png(), model="gemini/gemini-3-pro-image", size="2048x1152", seed=7, temperature=0.4,
                api_base=api_base)  # fmt: skip
    config = sent(fake)[0].json["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert config["seed"] == 7 and config["temperature"] == 0.4


@pytest.mark.parametrize("model", ["gemini/gemini-3.1-flash-image", "vertex_ai/gemini-3.1-flash-image"])
def test_a_mask_or_a_mask_prompt_is_refused_before_sending(fake: FakeProvider, model: str) -> None:
    with pytest.raises(UsageError) as mask:
        imggen.edit("add a hat", png(), mask=png(alpha=True), model=model, api_base=fake.base_url)
    assert mask.value.exit_code == 2 and "takes no mask" in mask.value.message
    assert mask.value.hint == "Say in the prompt what to change."
    with pytest.raises(UsageError) as text:
        imggen.edit("add a hat", png(), mask_prompt="the head", model=model, api_base=fake.base_url)
    assert "takes no --mask-prompt" in text.value.message and text.value.hint == "Say in the prompt what to change."
    assert not sent(fake) and not fake.google_tokens


@pytest.mark.parametrize(
    ("model", "count", "most"),
    [("gemini/gemini-2.5-flash-image", 4, 3), ("vertex_ai/gemini-2.5-flash-image", 4, 3),
     ("gemini/gemini-3.1-flash-image", 15, 14), ("vertex_ai/gemini-3-pro-image", 15, 14)],
)  # fmt: skip
def test_too_many_images_are_refused(fake: FakeProvider, model: str, count: int, most: int) -> None:
    with pytest.raises(UsageError, match=f"takes at most {most} input images; {count} given") as refused:
        imggen.edit("combine them", [png(shade=i) for i in range(count)], model=model, api_base=fake.base_url)
    assert refused.value.exit_code == 2 and not sent(fake)


def test_formats_and_sizes_google_does_not_take_are_refused(fake: FakeProvider) -> None:
    model = "gemini/gemini-3.1-flash-image"
    with pytest.raises(UsageError, match=r"is GIF; gemini/gemini-3\.1-flash-image takes PNG, JPEG, WebP"):
        imggen.edit("animate", gif(8, 8), model=model)
    with pytest.raises(UsageError, match="takes images up to 7 MiB"):
        imggen.edit("shrink", padded(7 * MIB + 1), model=model)
    assert not sent(fake)


def test_the_gemini_apis_inline_total_is_checked_before_sending(fake: FakeProvider) -> None:
    """Fourteen images of almost 7 MiB each pass each image's check, but their base64 (137 MB) is more
    than the Gemini API's 100 MB of inline data; Vertex AI has no such total below what they come to."""
    big = padded(7 * MIB - 1024)
    images = (load(big, f"image {i}") for i in range(14))
    options = Options(images=tuple(images))
    with pytest.raises(UsageError, match=r"come to 137\.0 MB as base64; .* at most 100 MB of inline data") as refused:
        plan_generation("combine", "gemini/gemini-3.1-flash-image", options=options)
    assert refused.value.hint == "Send fewer or smaller images (e.g. JPEG instead of PNG)."
    plan = plan_generation("combine", "vertex_ai/gemini-3.1-flash-image", options=options,
                           flags={"vertex_project": "p"})  # fmt: skip
    assert len(plan.requests[0].images) == 14
    assert not sent(fake)


def test_imagen_cannot_edit(fake: FakeProvider) -> None:
    with pytest.raises(UsageError) as known:
        imggen.edit("add a hat", png(), model="vertex_ai/imagen-4.0-generate-001", allow_retired=True)
    assert "cannot edit images" in known.value.message and "vertex_ai/gemini-" in (known.value.hint or "")
    with pytest.raises(UsageError) as unknown:  # an id the catalog does not know: the provider says so
        imggen.edit("add a hat", png(), model="vertex_ai/imagen-5.0-generate-001", vertex_project="p")
    assert "Imagen's editing API was shut down" in unknown.value.message
    assert not sent(fake)


def test_an_unknown_gemini_id_edits_but_takes_no_mask(fake: FakeProvider, gemini_key: None) -> None:
    """An id like the catalog's image models takes their rules (the catalog's families); any other id
    is checked by the provider: a prompt and images, no mask, no input fidelity."""
    api_base = fake.base_url + "/v1beta"
    with pytest.raises(UsageError, match=r"gemini-4-flash-image takes no --mask-prompt"):  # like 3.1 Flash Image
        imggen.edit("add a hat", png(), mask_prompt="the head", model="gemini/gemini-4-flash-image", api_base=api_base)
    with pytest.raises(UsageError, match=r"gemini-4-omni takes no mask") as refused:  # the provider's own check
        imggen.edit("add a hat", png(), mask_prompt="the head", model="gemini/gemini-4-omni", api_base=api_base)
    assert refused.value.hint == "Say in the prompt what to change."
    response = imggen.edit("add a hat", png(), model="gemini/gemini-4-omni", input_fidelity="high", api_base=api_base)
    assert len(response.data) == 1
    assert any("--input-fidelity not sent" in note for note in response.notes)
    body = sent(fake)[0].body.decode()
    assert "idelity" not in body and [list(p) for p in parts(json.loads(body))] == [["inlineData"], ["text"]]


def test_the_request_shows_images_described_never_their_base64() -> None:
    image = png(shade=99)
    plan = plan_generation("add a hat", "gemini/gemini-3-pro-image", options=Options(images=(load(
        image, "otter.png"),)), flags={"api_key": GEMINI_KEY})  # fmt: skip
    http = get_provider("gemini").build_request(plan.requests[0], plan.settings, dry_run=True)
    shown = json.dumps(http.json)
    b64 = base64.b64encode(image).decode()
    assert b64 not in shown and f"<otter.png, image/png, 16x16, {len(image)} bytes>" in shown
    assert http.content is not None and b64.encode() in http.content  # what is sent holds the image itself
    assert parts(json.loads(http.content))[0] == {"inlineData": {"mimeType": "image/png", "data": b64}}


@pytest.mark.parametrize(
    ("model", "count", "n", "output", "each"),
    [("gemini/gemini-3-pro-image", 2, 1, 0.134, 0.0011), ("vertex_ai/gemini-3.1-flash-image", 3, 1, 0.0672, 0.00056),
     ("gemini/gemini-2.5-flash-image", 3, 2, 0.039, 0.00031),
     ("vertex_ai/gemini-3.1-flash-lite-image", 1, 1, 0.0336, 0.00028)],
)  # fmt: skip
def test_the_cost_estimate_counts_the_input_images(model: str, count: int, n: int, output: float, each: float) -> None:
    images = tuple(load(png(shade=i), f"image {i}") for i in range(count))
    plan = plan_generation("edit", model, options=Options(images=images, n=n), flags={"vertex_project": "p"})
    assert plan.cost_usd == pytest.approx(n * output + n * count * each)  # each request sends every image


def test_an_error_answer_to_an_edit_is_googles_message(fake: FakeProvider, gemini_key: None) -> None:
    fake.script(":generateContent", google_error(Reply, 400, "INVALID_ARGUMENT", "Provided image is not valid."))
    with pytest.raises(GenerationError, match=r"400 INVALID_ARGUMENT: Provided image is not valid\."):
        imggen.edit("add a hat", png(), model="gemini/gemini-3.1-flash-image", api_base=fake.base_url + "/v1beta")


def _gemini_post(fake: FakeProvider, body: Any, model: str = "gemini-3.1-flash-image") -> httpx.Response:
    url = f"{fake.base_url}/v1beta/models/{model}:generateContent"
    return httpx.post(url, json=body, headers={"x-goog-api-key": GEMINI_KEY})


def _body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": list(parts)}], "generationConfig": {"responseModalities": ["IMAGE"]}}


B64 = base64.b64encode(png()).decode()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (_body({"inlineData": {"mimeType": "image/png", "data": B64}}, {"text": "hat"}), None),
        (_body({"inline_data": {"mime_type": "image/png", "data": B64}}, {"text": "hat"}), None),  # the SDK's names
        (_body({"inlineData": {"mimeType": "image/png", "data": B64.rstrip("=")}}), None),  # unpadded base64
        (_body({"inlineData": {"mimeType": "image/png", "data": B64, "detail": "high"}}), 'Unknown name "detail"'),
        (_body({"inlineData": {"mimeType": "image/png", "mime_type": "image/png", "data": B64}}), "Duplicate field"),
        (_body({"image": {"mimeType": "image/png", "data": B64}}), 'Unknown name "image"'),
        (_body({"inlineData": {"mimeType": "image/gif", "data": B64}}), "Unsupported MIME type: image/gif"),
        (_body({"inlineData": {"mimeType": "image/jpeg", "data": B64}}), "Provided image is not valid."),
        (_body({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}), "Base64 decoding failed"),
        (_body({"inlineData": {"data": B64}}), "mime_type: required field"),
        (_body({"text": "hat", "inlineData": {"mimeType": "image/png", "data": B64}}), "required oneof field"),
        (_body(), "must not be empty"),
        ({**_body({"text": "hat"}), "prompt": "hat"}, 'Unknown name "prompt"'),
    ],
)
def test_the_fake_takes_edit_bodies_as_google_does(fake: FakeProvider, body: dict[str, Any], said: str | None) -> None:
    response = _gemini_post(fake, body)
    if said is None:
        assert response.status_code == 200, response.text
        assert response.json()["candidates"][0]["content"]["parts"][1]["inlineData"]["mimeType"] == "image/png"
    else:
        assert response.status_code == 400 and said in response.json()["error"]["message"], response.text


def test_the_fake_counts_images_per_model(fake: FakeProvider) -> None:
    four = _body(*[{"inlineData": {"mimeType": "image/png", "data": B64}}] * 4, {"text": "combine"})
    assert _gemini_post(fake, four, "gemini-2.5-flash-image").status_code == 400
    assert _gemini_post(fake, four, "gemini-3-pro-image").status_code == 200
    text = httpx.post(f"{fake.base_url}/v1beta/models/gemini-3-pro-image:generateContent", content=json.dumps(four),
                      headers={"x-goog-api-key": GEMINI_KEY, "Content-Type": "text/plain"})  # fmt: skip
    assert text.status_code == 400


# `imggen edit` as a user runs it (a real process).


def edit_cli(fake: FakeProvider, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("edit", *args, env={"GEMINI_API_KEY": GEMINI_KEY, **(env or {})})


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_cli_edit_on_the_gemini_api(fake: FakeProvider, tmp_path: Path) -> None:
    a, b = write(tmp_path, "otter.png", png(shade=5)), write(tmp_path, "hat.jpg", jpeg(40, 30))
    result = edit_cli(fake, "put the hat on the otter", a, b, "-m", "gemini/gemini-3.1-flash-image", "--api-base",
                      fake.base_url + "/v1beta", "-o", str(tmp_path / "out"), "--json", "--metadata", "-v")  # fmt: skip
    assert result.code == 0, result.stderr
    (line,) = result.json_lines()
    assert Path(line["path"]).read_bytes() == fake.image_bytes
    metadata = json.loads(Path(line["path"]).with_suffix(".json").read_text())
    assert hashlib.sha256(png(shade=5)).hexdigest() in json.dumps(metadata)  # each input recorded by its hash
    (request,) = sent(fake)
    *inline, text = parts(request.json)
    assert [decoded(p)[0] for p in inline] == ["image/png", "image/jpeg"] and text["text"] == "put the hat on the otter"
    everything = result.everything()
    assert base64.b64encode(png(shade=5)).decode() not in everything and GEMINI_KEY not in everything
    assert "<otter.png, image/png, 16x16" in result.stderr  # -v shows the request, its images described


def test_cli_edit_on_vertex_ai(fake: FakeProvider, service_account: Path, tmp_path: Path) -> None:  # noqa: F811
    images = [write(tmp_path, f"{i}.webp", webp(24, 24)) for i in range(3)]
    result = run_cli("edit", "merge these", *images, "-m", "vertex_ai/gemini-2.5-flash-image", "--api-base",
                     fake.base_url, "-o", str(tmp_path / "out"), env=vertex_env(fake, service_account))  # fmt: skip
    assert result.code == 0, result.stderr
    project, location, model, method, token = fake.google_calls[0]
    assert (project, location, model, method) == (
        "sa-project",
        "us-central1",
        "gemini-2.5-flash-image",
        "generateContent",
    )
    assert token in fake.google_tokens and token not in result.everything()
    assert [decoded(p)[0] for p in parts(sent(fake)[0].json)[:-1]] == ["image/webp"] * 3


def test_cli_refuses_a_mask_and_too_many_images_with_exit_2(fake: FakeProvider, tmp_path: Path) -> None:
    a, mask = write(tmp_path, "a.png", png()), write(tmp_path, "m.png", png(alpha=True))
    masked = edit_cli(fake, "add a hat", a, "--mask", mask, "-m", "gemini/gemini-3-pro-image")
    assert masked.code == 2 and "gemini/gemini-3-pro-image takes no mask" in masked.stderr
    assert "Say in the prompt what to change." in masked.stderr
    worded = edit_cli(fake, "add a hat", a, "--mask-prompt", "the head", "-m", "gemini/gemini-3-pro-image")
    assert worded.code == 2 and "takes no --mask-prompt" in worded.stderr
    four = [write(tmp_path, f"{i}.png", png(shade=i)) for i in range(4)]
    many = edit_cli(fake, "combine", *four, "-m", "gemini/gemini-2.5-flash-image")
    assert many.code == 2 and "takes at most 3 input images; 4 given" in many.stderr
    imagen = edit_cli(fake, "add a hat", a, "-m", "vertex_ai/imagen-4.0-generate-001", "--allow-retired")
    assert imagen.code == 2 and "cannot edit images" in imagen.stderr and "imggen models --task edit" in imagen.stderr
    assert not sent(fake)


def test_cli_dry_run_describes_the_images_and_prices_them(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a.png", png(shade=1)), write(tmp_path, "b.png", png(shade=2))
    result = run_cli("edit", "blend", a, b, "-m", "gemini/gemini-3-pro-image", "--dry-run")  # no key needed
    assert result.code == 0, result.stderr
    assert '"data": "<a.png, image/png, 16x16, ' in result.stdout and '"text": "blend"' in result.stdout
    assert result.stdout.index("<a.png") < result.stdout.index("<b.png") < result.stdout.index('"text": "blend"')
    for image in (png(shade=1), png(shade=2)):
        assert base64.b64encode(image).decode() not in result.stdout
    assert "# estimated cost: $0.1362 for 1 image" in result.stdout  # $0.134 out + 2 x $0.0011 in
    over = run_cli("edit", "blend", a, b, "-m", "gemini/gemini-3-pro-image", "--dry-run", "--max-cost", "0.135")
    assert over.code == 2 and "estimated cost $0.1362 is above --max-cost $0.135" in over.stderr
    vertex = run_cli("edit", "blend", a, "-m", "vertex_ai/gemini-3.1-flash-image", "--dry-run", "--json",
                     env={"VERTEXAI_PROJECT": "p"})  # fmt: skip
    assert vertex.code == 0, vertex.stderr
    (line,) = vertex.json_lines()
    assert line["url"].startswith("https://aiplatform.googleapis.com/v1/projects/p/locations/global/")
    assert line["cost_usd"] == pytest.approx(0.0672 + 0.00056)
