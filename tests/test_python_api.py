"""The Python API where Python people use it: inside a running event loop (an asyncio program, a
Jupyter kernel), type-checked by mypy, and shown short by repr and as thumbnails in a notebook."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import imggen
from conftest import OPENAI_KEY, assert_no_secret
from fakeserver import TINY_PNG, FakeProvider, Reply


def run_script(source: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = cwd / "script.py"
    script.write_text(textwrap.dedent(source))
    import os

    return subprocess.run([sys.executable, str(script)], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


# 5: generate() and save() inside a running event loop; await response.asave()


def test_generate_and_save_work_inside_an_asyncio_program(fake: FakeProvider, tmp_path: Path) -> None:
    result = run_script(
        """
        import asyncio, json, sys
        import imggen

        async def main():
            asyncio.get_running_loop()  # the caller's loop is running: the old generate() refused here
            placeholder = imggen.generate("otter", model="placeholder", n=2)
            saved = placeholder.save("out", name="p-{index}.{ext}")
            again = await placeholder.asave("out", name="a-{index}.{ext}")
            url = imggen.generate("heron", model="dall-e-2", response_format="url")
            downloaded = url.save("out", name="u.{ext}")  # a download on the worker thread's loop
            awaited = await imggen.agenerate("crane", model="placeholder")
            print(json.dumps([str(p) for p in saved + again + downloaded] + [repr(awaited)]))

        asyncio.run(main())
        """,
        tmp_path,
        {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.openai_base},
    )
    assert result.returncode == 0, result.stderr
    *paths, shown = json.loads(result.stdout)
    assert [Path(p).name for p in paths] == ["p-1.png", "p-2.png", "a-1.png", "a-2.png", "u.png"]
    assert (tmp_path / "out" / "u.png").read_bytes() == TINY_PNG
    assert all((tmp_path / p).stat().st_size > 0 for p in paths)
    assert shown.startswith("<ImageResponse placeholder/default: 1 image")
    assert_no_secret(result.stdout + result.stderr)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(p).name for p in paths)


def test_an_interrupt_inside_a_running_loop_stops_the_work_too(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("/images/generations", Reply(delay=60))
    result = run_script(
        """
        import _thread, asyncio, threading
        import httpx, imggen

        imggen.generate("warm-up", model="placeholder")  # imports done: the 1 s below is the wait for the answer

        async def main():
            threading.Timer(1.0, _thread.interrupt_main).start()  # Ctrl-C while generate() waits
            imggen.generate("otter", model="gpt-image-1")

        try:
            asyncio.run(main())
        except KeyboardInterrupt:  # asyncio.run turns Ctrl-C into a cancelled main(), then this
            print("interrupted", [t.name for t in threading.enumerate() if t.name.startswith("imggen")])
        """,
        tmp_path,
        {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.openai_base},
    )
    # The 60 s answer was not waited for (the subprocess limit is 120 s): the work was cancelled.
    assert result.returncode == 0 and result.stdout.strip() == "interrupted []", result.stdout + result.stderr
    assert len(fake.requests) == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "script.py"]


def test_asave_takes_the_same_options_as_save(tmp_path: Path) -> None:
    response = imggen.generate("otter", model="placeholder", n=2)

    async def main() -> list[Path]:
        return await response.asave(tmp_path / "out", name="x.{ext}", metadata=True)

    paths = asyncio.run(main())
    assert [p.name for p in paths] == ["x.png", "x-v2.png"]
    assert json.loads((tmp_path / "out" / "x.json").read_text())["prompt"] == "otter"
    with pytest.raises(imggen.errors.UsageError):
        asyncio.run(response.asave(tmp_path / "out", name="{nope}.png"))


NOTEBOOK_CELLS = [
    'import imggen\nresponse = imggen.generate("otter <b>", model="placeholder", n=2, seed=7)\nresponse',
    'paths = response.save("out")\nprint(sorted(p.name for p in paths))',
    'paths = await response.asave("out2", name="nb-{index}.{ext}")\nprint([p.name for p in paths])',
    'try:\n    imggen.generate("otter", model="placeholder", sizee="256x256")\n'
    "except TypeError as exc:\n    print(exc)",
    'try:\n    imggen.generate("otter", model="placeholder", n=11)\nexcept imggen.ImggenError as exc:\n    print(exc)',
]


def test_a_jupyter_kernel_generates_saves_and_shows_thumbnails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # A kernel spec of our own that runs this interpreter (the venv's), found first on JUPYTER_PATH.
    spec = tmp_path / "jupyter" / "kernels" / "imggen-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "imggen", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(notebook, kernel_name="imggen-test", timeout=60,
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    shown, saved, awaited, typo, usage = (cell.outputs for cell in notebook.cells)
    data = shown[0]["data"]
    assert data["text/plain"].startswith("<ImageResponse placeholder/default: 2 images 1024x1024, $0")
    assert len(data["text/plain"]) < 200
    html = data["text/html"]
    assert html.count("<img src='data:image/png;base64,") == 2 and "max-width:256px" in html
    assert "otter &lt;b&gt;" in html and "<b>" not in html
    assert saved[0]["text"].strip().startswith("['") and saved[0]["text"].count(".png") == 2
    assert awaited[0]["text"].strip() == "['nb-1.png', 'nb-2.png']"
    assert typo[0]["text"].strip() == "generate() got an unexpected keyword argument 'sizee'; did you mean 'size'?"
    assert usage[0]["text"].strip().startswith("n=11 is out of range")
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["nb-1.png", "nb-2.png"]
    assert len([p for p in (tmp_path / "out").iterdir() if p.suffix == ".png"]) == 2


# 6: generate() is typed like agenerate(); near-miss keywords name the right one


def test_mypy_catches_a_wrong_type_in_a_user_script(tmp_path: Path) -> None:
    (tmp_path / "wrong.py").write_text('import imggen\n\nimggen.generate("otter", n="2")\n')
    (tmp_path / "right.py").write_text(
        "import imggen\n\n"
        'response = imggen.generate("otter", model="placeholder", n=2, size="1024x1024", seed=3,\n'
        '                           background="transparent", params={"output_format": "png"})\n'
        "paths: list[str] = [str(p) for p in response.save('out')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / ".cache"),
         "wrong.py", "right.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 1 and errors[0].startswith("wrong.py:3:") and '"n"' in errors[0], errors


def test_generate_has_the_signature_of_agenerate() -> None:
    import inspect

    sync, coro = inspect.signature(imggen.generate), inspect.signature(imggen.agenerate)
    assert list(sync.parameters.values()) == list(coro.parameters.values())
    assert sync.return_annotation == coro.return_annotation == "ImageResponse"
    named = [name for name, p in sync.parameters.items() if p.kind is not p.VAR_KEYWORD and name != "prompt"]
    assert sorted(imggen.api.KEYWORDS) == sorted(named)  # the did-you-mean list follows the signature


@pytest.mark.parametrize(
    ("keyword", "right"),
    [("sizee", "size"), ("qualty", "quality"), ("apikey", "api_key"), ("negative_promt", "negative_prompt"),
     ("aspectratio", "aspect_ratio"), ("seeds", "seed"), ("timout", "timeout"), ("concurrrency", "concurrency")],
)  # fmt: skip
def test_a_near_miss_keyword_is_a_type_error_naming_the_right_one(fake: FakeProvider, keyword: str, right: str) -> None:
    with pytest.raises(TypeError) as caught:
        imggen.generate("otter", model="placeholder", **{keyword: "1"})
    assert str(caught.value) == f"generate() got an unexpected keyword argument '{keyword}'; did you mean '{right}'?"

    async def main() -> None:
        await imggen.agenerate("otter", model="placeholder", **{keyword: "1"})

    with pytest.raises(TypeError, match=f"^agenerate\\(\\) got an unexpected keyword argument '{keyword}'"):
        asyncio.run(main())


def test_provider_parameters_pass_as_keywords_or_params(fake: FakeProvider) -> None:
    from imggen.proxy.router import OPENAI_FIELDS

    given: dict[str, Any] = {key: 1 if kind is int else "x" for key, kind in OPENAI_FIELDS.items() if kind is not dict}
    # Every field of OpenAI's images API is a provider parameter, never mistaken for a typo of ours.
    imggen.api.check_keywords("generate", given)
    imggen.api.check_keywords("generate", {"aws_region_name": "us-east-1", "style_preset": "anime", "steps": 30})
    imggen.generate("otter", model="gpt-image-1", api_key=OPENAI_KEY, api_base=fake.openai_base,
                    background="transparent", params={"moderation": "low", "output_format": "png"})  # fmt: skip
    body = fake.requests[0].json
    assert (body["background"], body["moderation"], body["output_format"]) == ("transparent", "low", "png")
    with pytest.raises(imggen.errors.UsageError, match="params= must be a dict"):
        imggen.generate("otter", model="placeholder", params=["background"])  # type: ignore[arg-type]


# 7: short reprs; thumbnails in a notebook


def test_reprs_are_short_and_never_show_base64() -> None:
    response = imggen.generate("otter", model="placeholder", n=2, size="512x512")
    assert repr(response) == "<ImageResponse placeholder/default: 2 images 512x512, $0>"
    image = response.data[0]
    assert image.b64_json and image.b64_json[:40] not in repr(image) and len(repr(image)) < 200
    assert repr(image).startswith("ImageData(index=1, size='512x512', b64_json=<")
    from imggen.errors import ProviderError
    from imggen.types import ImageData, ImageResponse

    signed = ImageData(url="https://example.test/i.png?sig=SECRETSIG", size="1024x1024", index=1, cost_usd=0.042)
    other = ImageData(url="https://example.test/j.png", size="1536x1024", index=2, cost_usd=0.042)
    mixed = ImageResponse(created=1, data=[signed, other], model="openai/gpt-image-1", prompt="x", cost_usd=0.084,
                          errors=[ProviderError("boom", status=500)])  # fmt: skip
    assert repr(mixed) == "<ImageResponse openai/gpt-image-1: 2 images 1024x1024, 1536x1024, $0.084, 1 error>"
    assert "SECRETSIG" not in repr(signed) and "+query" in repr(signed)
    html = mixed._repr_html_()
    assert "src='https://example.test/j.png'" in html and "error: boom" in html


def test_html_thumbnails_escape_text_and_read_spilled_files(tmp_path: Path) -> None:
    from imggen.types import ImageData, ImageResponse

    (tmp_path / "a.png").write_bytes(TINY_PNG)
    images = [ImageData(file=tmp_path / "a.png", index=1), ImageData(b64_json="bm90IGFuIGltYWdl", index=2)]
    response = ImageResponse(created=1, data=images, model="m/x", prompt="<script>alert(1)</script>'\"")
    html = response._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert f"data:image/png;base64,{base64.b64encode(TINY_PNG).decode()}" in html
    assert "(image 2: not viewable)" in html
    assert images[0]._repr_html_().startswith("<img src='data:image/png;base64,")  # one image shows alone too


# 8: one error, worded as a parameter (Python), a flag (CLI) and a body field (proxy)

WORDINGS = [
    # (Python keywords, CLI flags, proxy body, Python says, CLI says, proxy says)
    ({"n": 11}, ["-n", "11"], {"n": 11}, "n=11 is out of range: give a whole number from 1 to 10",
     "-n 11 is out of range: give a whole number from 1 to 10", None),
    ({"seed": -1}, ["--seed", "-1"], {"seed": -1}, "seed=-1 is out of range",
     "--seed -1 is out of range", "'seed': -1 is out of range"),
    ({"size": "big"}, ["-s", "big"], {"size": "big"}, "size='big' is not WIDTHxHEIGHT. e.g. size='1024x1024'.",
     "-s 'big' is not WIDTHxHEIGHT. e.g. -s 1024x1024.",
     "'size': \"big\" is not WIDTHxHEIGHT. e.g. 'size': \"1024x1024\"."),
    ({"size": "1024x1024", "aspect_ratio": "1:1"}, ["-s", "1024x1024", "--aspect-ratio", "1:1"],
     {"size": "1024x1024", "aspect_ratio": "1:1"}, "size and aspect_ratio were both given",
     "-s and --aspect-ratio were both given", "'size' and 'aspect_ratio' were both given"),
    ({"quality": "ultra"}, ["-q", "ultra"], {"quality": "ultra"}, "openai/gpt-image-1 does not take quality='ultra'",
     "openai/gpt-image-1 does not take -q 'ultra'", "openai/gpt-image-1 does not take 'quality': \"ultra\""),
    ({"sampleCount": 4}, ["-p", "sampleCount=4"], None, "sampleCount=4: imggen plans sampleCount itself; use n",
     "-p sampleCount=4: imggen plans sampleCount itself; use -n", None),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "flags", "body", "python", "cli", "proxy"), WORDINGS)
def test_one_error_is_worded_for_python_the_cli_and_the_proxy(
    fake: FakeProvider, tmp_path: Path, kwargs: dict[str, Any], flags: list[str], body: dict[str, Any] | None,
    python: str, cli: str, proxy: str | None,
) -> None:  # fmt: skip
    from conftest import openai_env, run_cli

    with pytest.raises(imggen.errors.UsageError) as caught:
        imggen.generate("otter", model="gpt-image-1", api_key=OPENAI_KEY, api_base=fake.openai_base, **kwargs)
    assert str(caught.value).startswith(python), str(caught.value)
    result = run_cli("generate", "otter", "-m", "gpt-image-1", *flags, "-o", "out", env=openai_env(fake))
    assert result.code == 2 and result.stderr.startswith(f"error: {cli}"), result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()
    if proxy is not None:
        assert body is not None
        _refused_by_the_proxy(fake, tmp_path, body, proxy, next(iter(body)))
    assert fake.requests == []


def _refused_by_the_proxy(fake: FakeProvider, tmp_path: Path, body: dict[str, Any], says: str, param: str) -> None:
    from servehelp import Served, deployment, proxy_config

    # placeholder takes a seed, which gpt-image-1 has no field for (the proxy would refuse it as such)
    model = "placeholder/default" if "seed" in body else "openai/gpt-image-1"
    config = proxy_config(deployment("img", model, api_base=fake.openai_base, api_key=OPENAI_KEY))
    (tmp_path / "serve").mkdir(exist_ok=True)
    served = Served(tmp_path / "serve", config)
    try:
        reply = served.post({"model": "img", "prompt": "otter", **body})
        error = reply.json()["error"]
        assert reply.status_code == 400 and error["message"].startswith(says), error
        assert error["param"] == param and "--" not in error["message"] and "=" not in error["message"], error
    finally:
        served.stop()


def test_a_jsonl_line_keeps_its_place_in_the_cli_wording(fake: FakeProvider, tmp_path: Path) -> None:
    from conftest import openai_env, run_cli

    (tmp_path / "p.jsonl").write_text('{"prompt": "otter", "n": 11}\n')
    result = run_cli("generate", "--prompts-file", "p.jsonl", "-m", "gpt-image-1", "-o", "out", env=openai_env(fake))
    assert result.code == 2 and "error: p.jsonl line 1: -n 11 is out of range" in result.stderr, result.stderr
