"""The provider contract, without the network: for every provider × task × catalog family, the request
its builder makes and what its parser and error mapping make of recorded answers (tests/contract/
<provider>.json). A change in what is sent or understood shows here as a diff to the recording; run
with IMGGEN_RECORD_CONTRACT=1 to record it again, then read the diff."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from imggen import catalog
from imggen.catalog import ModelInfo, parse_model
from imggen.errors import GenerationError
from imggen.providers import PROVIDERS, ProviderResult, get_provider
from imggen.providers.contract import LOCAL, Pending, map_error
from imggen.settings import resolve
from imggen.types import ImageRequest

FIXTURES = Path(__file__).parent / "contract"
RECORD = os.environ.get("IMGGEN_RECORD_CONTRACT") == "1"
TASKS = ("generate", "edit")  # a recording's sections: "families" (generate) and "edits"
SECTIONS = {"generate": "families", "edit": "edits"}
SETTINGS: dict[str, dict[str, str]] = {
    "openai": {"api_key": "sk-contract-0123456789"},
    "azure": {"api_key": "azure-contract-key-0123", "api_base": "https://contoso.openai.azure.com"},
    "bedrock": {"aws_region_name": "us-east-1"},
    "vertex_ai": {"vertex_project": "contract-project"},
    "gemini": {"api_key": "gemini-contract-key-0123"},
    "placeholder": {},
}


def representatives(task: str) -> list[ModelInfo]:
    """One model per provider and family that does `task`: the first current one, else the first."""
    chosen: dict[tuple[str, str], ModelInfo] = {}
    for info in catalog.all_models():
        if task not in info.tasks:
            continue
        key = (info.provider, info.family)
        if key not in chosen or (_retired(chosen[key]) and not _retired(info)):
            chosen[key] = info
    return list(chosen.values())


def _retired(info: ModelInfo) -> bool:
    return bool(info.lifecycle.get("retired"))


CASES = [(info, task) for task in TASKS for info in representatives(task)]


def input_png(width: int, height: int, alpha: bool, shade: int) -> bytes:
    """A small real PNG: what an edit case sends (its bytes are in the recorded body's base64 or parts)."""
    import struct
    import zlib

    pixel = bytes([shade, 255 - shade, 128] + ([0] if alpha else []))
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def edit_inputs(info: ModelInfo) -> dict[str, Any]:
    """An edit case's inputs: as many images as the model takes, up to two, and a mask when it takes one."""
    from imggen.inputs import load

    rules = info.edit or {}
    count = min(2, int(rules.get("max_images", 1)))
    images = tuple(load(input_png(16, 16, False, 40 * i), f"image {i + 1}") for i in range(count))
    mask = load(input_png(16, 16, True, 0), "mask") if rules.get("mask") else None
    return {"images": images, "mask": mask}


def image_request(info: ModelInfo, task: str = "generate") -> ImageRequest:
    inputs = edit_inputs(info) if task == "edit" else {}
    return ImageRequest(
        "a lighthouse at dusk", parse_model(info.id), n=1,
        size=info.default_size if info.has_field("size") else None,
        aspect_ratio=info.aspect_ratios[0] if info.aspect_ratios else None, **inputs,
    )  # fmt: skip


def recorded_answer(answer: dict[str, Any], url: str) -> httpx.Response:
    return httpx.Response(
        answer["status"], headers=answer["headers"], json=answer["body"], request=httpx.Request("POST", url)
    )


def outcome(result: ProviderResult | Pending | GenerationError) -> dict[str, Any]:
    """What a parse or an error mapping came to, in plain JSON (image bytes as their length)."""
    if isinstance(result, GenerationError):
        return {"error": type(result).__name__, "message": result.message, "hint": result.hint,
                "status": result.status, "code": result.code, "request_id": result.request_id}  # fmt: skip
    if isinstance(result, Pending):
        return {"pending": result.request.url, "wait": result.wait}
    return {
        "images": [
            {
                "index": i.index,
                "size": i.size,
                "seed": i.seed,
                "bytes": len(i.image_bytes()) if i.b64_json else None,
                "url": i.url,
                "revised_prompt": i.revised_prompt,
                "text": i.text,
                "request_id": i.request_id,
            }
            for i in result.images
        ],
        "usage": None if result.usage is None else vars(result.usage),
        "request_id": result.request_id,
        "errors": [f"{type(e).__name__}: {e.message}" for e in result.errors],
    }


def run_case(
    info: ModelInfo, answers: list[dict[str, Any]], task: str = "generate", flags: dict[str, str] | None = None
) -> dict[str, Any]:
    provider = get_provider(info.provider)
    settings = resolve(model=info.id, flags=SETTINGS.get(info.provider, flags or {}), env={})
    request = image_request(info, task)
    http = provider.build_request(request, settings)
    shown = {"method": http.method, "url": http.url, "headers": http.shown_headers(), "body": http.json}
    results: list[dict[str, Any]] = []
    if http.method == LOCAL:
        results.append(outcome(asyncio.run(provider.answer_locally(request))))
    for answer in answers:
        response = recorded_answer(answer, http.url)
        try:
            if response.status_code >= 400:
                results.append(outcome(map_error(response, provider.error_fields(response, settings))))
            else:
                results.append(outcome(provider.parse_response(request, response)))
        except GenerationError as exc:
            results.append(outcome(exc))
    return {"request": shown, "outcomes": results}


@pytest.mark.parametrize(("info", "task"), CASES, ids=[f"{i.provider}-{t}-{i.family}" for i, t in CASES])
def test_builds_and_parses_as_recorded(info: ModelInfo, task: str) -> None:
    path = FIXTURES / f"{info.provider}.json"
    recording = json.loads(path.read_text(encoding="utf-8"))
    family = recording[SECTIONS[task]][info.family]
    got = run_case(info, family["responses"], task, recording.get("settings"))  # a fixture may hold its settings
    if RECORD:
        family["model"], family["task"], family["expected"] = info.id, task, got
        path.write_text(json.dumps(recording, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert family.get("task") == task
    assert got == family["expected"], f"{info.id}: the request or a parse differs from {path.name}"


def test_every_provider_task_and_family_has_a_recording() -> None:
    for task in TASKS:
        families = {(i.provider, i.family) for i in catalog.all_models() if task in i.tasks}
        for name, spec in PROVIDERS.items():
            if spec.module is None:
                continue
            recording = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
            assert {f for p, f in families if p == name} <= set(recording.get(SECTIONS[task], {})), (name, task)


def test_catalog_tasks_agree_with_the_providers() -> None:
    """A model that edits has edit rules, and its provider's module builds edits."""
    for info in catalog.all_models():
        assert ("edit" in info.tasks) == (info.edit is not None), info.id
        assert set(info.tasks) <= set(PROVIDERS[info.provider].tasks), info.id
