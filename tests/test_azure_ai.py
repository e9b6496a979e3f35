"""Azure AI Foundry (`azure_ai/`): the Image API for FLUX.1, the BFL route for FLUX.2, the MAI route;
api-key, Bearer key or Entra token; edits; errors; --dry-run, models, config, the proxy. Against the
fake Foundry resource on 127.0.0.1 (fakeazureai.py), through the Python API where it can be."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import imggen
from conftest import run_cli
from fakeazureai import KEY, TOKEN, Act, FakeAzureAI, error
from fakeserver import TINY_PNG
from imggen.errors import AuthError, BadResponseError, ContentFilterError, ProviderError, UsageError
from imggen.proxy.config import parse
from servehelp import deployment, proxy_config


@pytest.fixture
def foundry() -> Iterator[FakeAzureAI]:
    with FakeAzureAI() as server:
        yield server


def gen(foundry: FakeAzureAI, model: str, **kw: Any) -> Any:
    kw.setdefault("api_key", KEY)
    return imggen.generate("a red fox", f"azure_ai/{model}", api_base=foundry.base_url, retries=0, **kw)


def test_flux_1_goes_to_the_image_api_with_api_key_and_no_model(foundry: FakeAzureAI) -> None:
    result = gen(foundry, "FLUX-1.1-pro", size="1024x768")
    assert len(result.data) == 1 and result.data[0].image_bytes() == TINY_PNG
    seen = foundry.requests[0]
    assert seen.path == "/openai/deployments/FLUX-1.1-pro/images/generations"
    assert seen.query == {"api-version": "preview"} and seen.headers["api-key"] == KEY
    assert seen.json == {"prompt": "a red fox", "n": 1, "size": "1024x768"}
    assert "authorization" not in seen.headers


def test_flux_2_goes_to_the_bfl_route_with_width_height_and_a_bearer_key(foundry: FakeAzureAI) -> None:
    gen(foundry, "FLUX.2-pro", size="1024x768", seed=7, output_format="jpeg")
    gen(foundry, "FLUX.2-flex", guidance=4.5, steps=20)
    pro, flex = foundry.requests
    assert pro.path == "/providers/blackforestlabs/v1/flux-2-pro" and pro.query == {"api-version": "preview"}
    assert pro.headers["authorization"] == f"Bearer {KEY}" and "api-key" not in pro.headers
    assert pro.json == {"model": "FLUX.2-pro", "prompt": "a red fox", "width": 1024, "height": 768,
                        "num_images": 1, "seed": 7, "output_format": "jpeg"}  # fmt: skip
    assert flex.path == "/providers/blackforestlabs/v1/flux-2-flex"
    assert flex.json["guidance"] == 4.5 and flex.json["steps"] == 20


def test_mai_route_takes_the_deployment_in_the_body_and_bounds_its_size(foundry: FakeAzureAI) -> None:
    gen(foundry, "MAI-Image-2.6", size="1024x1024", web_grounding=True)
    seen = foundry.requests[0]
    assert seen.path == "/mai/v1/images/generations" and seen.headers["api-key"] == KEY
    assert seen.json == {"model": "MAI-Image-2.6", "prompt": "a red fox", "width": 1024, "height": 1024,
                         "web_grounding": True}  # fmt: skip
    with pytest.raises(UsageError):  # under 768 px: refused before sending, as MAI would refuse it
        gen(foundry, "MAI-Image-2.6", size="512x512")
    gen(foundry, "MAI-Image-2.6", n=2)  # one image a request: two requests, no count in either
    assert len(foundry.requests) == 3 and all("n" not in r.json for r in foundry.requests)


def test_deployment_names_take_the_route_their_name_implies(foundry: FakeAzureAI) -> None:
    gen(foundry, "my-kontext")
    gen(foundry, "MAI-Image-2.5-Flash")
    with pytest.raises(ProviderError) as missing:
        gen(foundry, "FLUX.2-flex-eu")  # a FLUX.2 name (not deployed here): the flex path
    assert missing.value.status == 404
    paths = [r.path for r in foundry.requests]
    assert paths == ["/openai/deployments/my-kontext/images/generations", "/mai/v1/images/generations",
                     "/providers/blackforestlabs/v1/flux-2-flex"]  # fmt: skip


def test_entra_token_is_a_bearer_on_every_route(foundry: FakeAzureAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AD_TOKEN", TOKEN)
    for model in ("FLUX-1.1-pro", "FLUX.2-pro", "MAI-Image-2.6"):
        gen(foundry, model, api_key=None)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" and "api-key" not in r.headers
               for r in foundry.requests)  # fmt: skip


def test_environment_variables_are_litellms(foundry: FakeAzureAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_AI_API_BASE", foundry.base_url)
    imggen.generate("a red fox", "azure_ai/FLUX.1-Kontext-pro", retries=0)
    assert foundry.requests[0].headers["api-key"] == KEY


def test_edits_on_each_route(foundry: FakeAzureAI) -> None:
    def edit(model: str, images: list[bytes], **kw: Any) -> Any:
        return imggen.edit("make it night", images, model=f"azure_ai/{model}", api_key=KEY,
                           api_base=foundry.base_url, retries=0, **kw)  # fmt: skip

    assert edit("FLUX.1-Kontext-pro", [TINY_PNG]).data[0].image_bytes() == TINY_PNG
    edit("FLUX.2-pro", [TINY_PNG, TINY_PNG])
    edit("MAI-Image-2.6", [TINY_PNG])
    kontext, flux2, mai = foundry.requests
    assert kontext.path == "/openai/deployments/FLUX.1-Kontext-pro/images/edits"
    assert [(f[0], f[3]) for f in kontext.files or []] == [("image", TINY_PNG)] and kontext.form[
        "prompt"
    ] == "make it night"
    assert "model" not in kontext.form
    assert {"input_image", "input_image_2"} <= set(flux2.json) and flux2.json["model"] == "FLUX.2-pro"
    assert mai.path == "/mai/v1/images/edits" and [(f[0], f[3]) for f in mai.files or []] == [("image", TINY_PNG)]
    assert mai.form == {"prompt": "make it night", "model": "MAI-Image-2.6"}
    with pytest.raises(UsageError):  # Kontext takes one image; FLUX-1.1-pro edits nothing
        edit("FLUX.1-Kontext-pro", [TINY_PNG, TINY_PNG])
    with pytest.raises(UsageError):
        edit("FLUX-1.1-pro", [TINY_PNG])
    assert len(foundry.requests) == 3


def test_content_filter_auth_and_misbehaviour(foundry: FakeAzureAI) -> None:
    with pytest.raises(ContentFilterError):
        imggen.generate("a forbidden thing", "azure_ai/FLUX.2-pro", api_key=KEY, api_base=foundry.base_url, retries=0)
    with pytest.raises(AuthError) as refused:
        gen(foundry, "FLUX-1.1-pro", api_key="azure-ai-wrong-key-000000000")
    assert "azure-ai-wrong-key" not in str(refused.value)
    with pytest.raises(ProviderError) as unknown:  # a field the Image API does not take
        gen(foundry, "FLUX-1.1-pro", guidance=3)
    assert unknown.value.status == 400
    foundry.script("/mai/", Act(raw=b"<html>upstream</html>"))
    with pytest.raises(BadResponseError):
        gen(foundry, "MAI-Image-2.6")
    foundry.script("/providers/", Act(200, {"data": [{"b64_json": "x" * 40}]}, cut=True))
    with pytest.raises(Exception):  # noqa: B017 - truncated: a transport or response error, never a hang
        gen(foundry, "FLUX.2-pro")
    foundry.script("/providers/", error(429, "429", "Rate limit exceeded."), Act(200, {"data": []}))
    with pytest.raises(ProviderError):
        gen(foundry, "FLUX.2-pro")


def test_cost_comes_from_the_catalog(foundry: FakeAzureAI) -> None:
    from imggen.catalog import estimate_cost, lookup

    assert estimate_cost(lookup("azure_ai/FLUX-1.1-pro"), 3, "1024x1024", None) == pytest.approx(0.12)
    assert estimate_cost(lookup("azure_ai/MAI-Image-2.5-Flash"), 1, "1024x1024", None) == pytest.approx(0.02)
    assert estimate_cost(lookup("azure_ai/FLUX.2-flex"), 1, "1024x1024", None) is None  # no per-image price


def test_proxy_reads_litellm_azure_ai_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOUNDRY_KEY", KEY)
    config = parse(proxy_config(
        deployment("flux", "azure_ai/FLUX.2-pro", api_base="https://x.services.ai.azure.com",
                   api_key="os.environ/FOUNDRY_KEY"),
        deployment("kontext", "azure_ai/FLUX.1-Kontext-pro", api_base="https://x.services.ai.azure.com",
                   api_key="k-0123456789abcdef", api_version="2025-04-01-preview"),
        deployment("chat", "azure_ai/claude-sonnet-4-5", api_base="https://x.services.ai.azure.com", api_key="k"),
    ))  # fmt: skip
    flux, kontext = config.deployments
    assert flux.settings.get("api_key") == KEY and flux.settings.get("api_base") == "https://x.services.ai.azure.com"
    assert flux.settings.model.info is not None and flux.settings.model.info.family == "flux-2"
    assert kontext.settings.get("api_version") == "2025-04-01-preview"
    assert [(s.group, s.reason) for s in config.skipped] == [("chat", "a chat, embedding or audio model")]


def test_proxy_serves_an_azure_ai_deployment(foundry: FakeAzureAI, start: Any) -> None:
    served = start(proxy_config(deployment("flux", "azure_ai/FLUX.2-pro", api_base=foundry.base_url, api_key=KEY)))
    answer = served.post({"model": "flux", "prompt": "a red fox", "size": "1024x1024"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["b64_json"]
    assert foundry.requests[0].json["width"] == 1024 and foundry.requests[0].path.endswith("/flux-2-pro")
    refused = served.post({"model": "flux", "prompt": "a forbidden thing"})
    assert refused.status_code == 400 and KEY not in refused.text


def test_cli_dry_run_models_and_config(tmp_path: Any) -> None:
    env = {"AZURE_AI_API_KEY": KEY, "AZURE_AI_API_BASE": "https://x.services.ai.azure.com"}
    dry = run_cli("generate", "a fox", "-m", "azure_ai/FLUX.2-pro", "--dry-run", env=env)
    assert dry.code == 0, dry.stderr
    assert KEY not in dry.stdout + dry.stderr and "Bearer ****" in dry.stdout
    assert "https://x.services.ai.azure.com/providers/blackforestlabs/v1/flux-2-pro?api-version=preview" in dry.stdout
    models = run_cli("models", env=env)
    assert "azure_ai/FLUX.1-Kontext-pro" in models.stdout and "azure_ai/MAI-Image-2.6" in models.stdout
    setup = run_cli("config", "set", "foundry", "api_base", "https://x.services.ai.azure.com/", env=env)
    assert setup.code == 0 and "azure_ai" in setup.stderr, setup.stderr
    explain = run_cli("config", "explain", "-m", "azure_ai/FLUX-1.1-pro", env=env)
    assert explain.code == 0 and "AZURE_AI_API_KEY" in explain.stdout + explain.stderr
    assert KEY not in explain.stdout + explain.stderr
