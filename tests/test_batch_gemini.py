"""`imggen batch` against the Gemini API's batch mode (tests/fakegeminibatch.py on 127.0.0.1): the service
module (inline and file submissions, every state the service reports, partial failures, cancel, expired
result files, a restart between submit and collect) and the commands end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakegeminibatch import FakeGeminiBatch
from fakegoogle import GEMINI_KEY
from fakeserver import TINY_PNG
from imggen.batches import gemini
from imggen.batches.gemini import GeminiBatches
from imggen.batches.ledger import Part
from imggen.batches.service import BatchLine, Limits
from imggen.catalog import parse_model
from imggen.errors import AuthError, ContentFilterError, GenerationError, ProviderError, UsageError
from imggen.settings import resolve
from imggen.transport import Transport
from imggen.types import ImageRequest

MODEL = "gemini/gemini-3.1-flash-image"


@pytest.fixture
def fake() -> Iterator[FakeGeminiBatch]:
    with FakeGeminiBatch() as server:
        yield server


def settings(fake: FakeGeminiBatch, key: str = GEMINI_KEY) -> Any:
    return resolve(model=MODEL, env={"GEMINI_API_KEY": key, "GEMINI_API_BASE": fake.api_base})


def request(prompt: str, model: str = MODEL, **fields: Any) -> ImageRequest:
    return ImageRequest(prompt, parse_model(model), **fields)


def lines(count: int, **fields: Any) -> dict[str, ImageRequest]:
    return {f"{n}-1": request(f"prompt number {n}", **fields) for n in range(1, count + 1)}


async def stream(requests: dict[str, ImageRequest]) -> AsyncIterator[BatchLine]:
    for custom_id, req in requests.items():
        yield BatchLine(custom_id, req)


async def submit(service: GeminiBatches, fake: FakeGeminiBatch, requests: dict[str, ImageRequest]) -> list[Part]:
    """The parts as the ledger keeps them (what status, cancel and results are given)."""
    async with Transport(timeout=10, retries=0) as transport:
        sent = [p async for p in service.submit(stream(requests), settings(fake), transport)]
    return [Part("b_x", n, p.provider_batch_id, p.input_file_id, "validating", p.request_count, p.first_index)
            for n, p in enumerate(sent)]  # fmt: skip


async def poll(service: GeminiBatches, fake: FakeGeminiBatch, part: Part, times: int) -> list[Any]:
    async with Transport(timeout=10, retries=0) as transport:
        states = [await service.status(part, settings(fake), transport) for _ in range(times)]
    part.output_file_id = states[-1].output_file_id
    return states


async def collect(
    service: GeminiBatches, fake: FakeGeminiBatch, part: Part, requests: dict[str, ImageRequest],
    spill: Path | None = None,
) -> list[Any]:  # fmt: skip
    async with Transport(timeout=10, retries=0) as transport:
        transport.spill_dir = spill
        return [r async for r in service.results(part, settings(fake), transport, requests.__getitem__)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_inline_batch_walks_pending_running_succeeded_and_collects_images(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches()
    requests = lines(3, aspect_ratio="16:9", seed=7)
    [part] = run(submit(service, fake, requests))
    assert part.provider_batch_id.startswith("batches/") and part.input_file_id is None
    assert (part.request_count, part.first_index) == (3, 0)
    method, path, headers = fake.requests[-1]
    assert (method, path) == ("POST", "/v1beta/models/gemini-3.1-flash-image:batchGenerateContent")
    assert headers["x-goog-api-key"] == GEMINI_KEY
    job = fake.batches[part.provider_batch_id.removeprefix("batches/")]
    assert job.inline and job.keys == ["1-1", "2-1", "3-1"] and job.display_name == "imggen"
    sent = job.requests[0]
    assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"} and sent["generationConfig"]["seed"] == 7

    states = run(poll(service, fake, part, 3))
    assert [s.state for s in states] == ["validating", "in_progress", "completed"]
    assert (states[-1].total, states[-1].completed, states[-1].failed) == (3, 3, 0)

    results = run(collect(service, fake, part, requests))
    assert [r.custom_id for r in results] == ["1-1", "2-1", "3-1"]
    assert all(r.error is None and r.images[0].image_bytes() == TINY_PNG for r in results)
    assert results[0].images[0].seed == 7 and results[0].images[0].text == "Here it is."


def test_large_batch_uploads_a_jsonl_file_in_resumable_chunks(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches(Limits(1000, 10_000_000, inline_bytes=2_000), chunk=1024)
    requests = lines(40)
    [part] = run(submit(service, fake, requests))
    assert part.input_file_id is not None and part.input_file_id.startswith("files/")
    uploaded = fake.files[part.input_file_id.removeprefix("files/")]
    first = json.loads(uploaded.splitlines()[0])
    assert set(first) == {"key", "request"} and first["key"] == "1-1"
    assert first["request"]["contents"][0]["parts"] == [{"text": "prompt number 1"}]
    assert len(fake.chunk_sizes) > 1 and all(size == 1024 for size in fake.chunk_sizes[:-1])
    start = next(h for m, p, h in fake.requests if p == "/upload/v1beta/files" and "x-goog-upload-protocol" in h)
    assert start["x-goog-upload-header-content-length"] == str(len(uploaded))
    assert start["x-goog-upload-header-content-type"] == "application/jsonl"
    job = fake.batches[part.provider_batch_id.removeprefix("batches/")]
    assert not job.inline and len(job.keys) == 40

    run(poll(service, fake, part, 3))
    results = run(collect(service, fake, part, requests))
    assert len(results) == 40 and all(r.images for r in results)
    downloads = [p for m, p, h in fake.requests if p.endswith(":download")]
    assert downloads == [f"/v1beta/{part.output_file_id}:download"]


def test_lines_past_the_file_limit_split_into_parts(fake: FakeGeminiBatch) -> None:
    one = len(gemini._line_text(BatchLine("1-1", request("prompt number 1"))))
    service = GeminiBatches(Limits(1000, one * 3 + 10, inline_bytes=0))
    parts = run(submit(service, fake, lines(7)))
    assert [(p.request_count, p.first_index) for p in parts] == [(3, 0), (3, 3), (1, 6)]
    assert len({p.input_file_id for p in parts}) == 3
    assert [job.display_name for job in fake.batches.values()] == ["imggen", "imggen-2", "imggen-3"]
    by_count = GeminiBatches(Limits(2, 10_000_000, inline_bytes=20_000_000))
    assert [p.request_count for p in run(submit(by_count, fake, lines(5)))] == [2, 2, 1]


def test_partial_failures_come_back_per_request(fake: FakeGeminiBatch) -> None:
    fake.outcomes = {"2-1": "error", "3-1": "blocked", "4-1": "text"}
    service = GeminiBatches()
    requests = lines(4)
    [part] = run(submit(service, fake, requests))
    state = run(poll(service, fake, part, 3))[-1]
    assert (state.total, state.completed, state.failed) == (4, 3, 1)
    results = {r.custom_id: r for r in run(collect(service, fake, part, requests))}
    assert results["1-1"].images and results["1-1"].error is None
    assert isinstance(results["2-1"].error, ProviderError) and "RESOURCE_EXHAUSTED" in results["2-1"].error.message
    assert isinstance(results["3-1"].error, ContentFilterError) and results["3-1"].error.code == "PROHIBITED_CONTENT"
    assert isinstance(results["4-1"].error, ContentFilterError) and "IMAGE_SAFETY" in results["4-1"].error.message


@pytest.mark.parametrize(("final", "word"), [("FAILED", "failed"), ("EXPIRED", "expired"), ("CANCELLED", "cancelled")])
def test_terminal_states_without_results(fake: FakeGeminiBatch, final: str, word: str) -> None:
    fake.script = ["PENDING", "RUNNING", final]
    service = GeminiBatches()
    requests = lines(2)
    [part] = run(submit(service, fake, requests))
    states = run(poll(service, fake, part, 4))
    assert [s.state for s in states] == ["validating", "in_progress", word, word]
    if final == "FAILED":
        assert states[-1].errors == ["The batch failed: internal error."]
    assert run(collect(service, fake, part, requests)) == []


def test_cancel_goes_through_cancelling_to_cancelled(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches()
    [part] = run(submit(service, fake, lines(2)))

    async def cancel() -> str:
        async with Transport(timeout=10, retries=0) as transport:
            return (await service.cancel(part, settings(fake), transport)).state

    assert run(cancel()) == "cancelling"
    assert ("POST", f"/v1beta/{part.provider_batch_id}:cancel") in [r[:2] for r in fake.requests]
    assert [s.state for s in run(poll(service, fake, part, 1))] == ["cancelled"]
    with pytest.raises(ProviderError, match="already CANCELLED"):
        run(cancel())


def test_results_before_the_end_are_refused(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches()
    requests = lines(1)
    [part] = run(submit(service, fake, requests))
    with pytest.raises(UsageError, match="not ready"):
        run(collect(service, fake, part, requests))


def test_a_restart_between_submit_and_collect(fake: FakeGeminiBatch) -> None:
    """What a ledger keeps (the batch and file names) is all collect needs: a new service, a new part."""
    requests = lines(3)
    [part] = run(submit(GeminiBatches(Limits(1000, 10_000_000, inline_bytes=0)), fake, requests))
    kept = Part("b_x", 0, part.provider_batch_id, part.input_file_id, "validating", 3, 0)
    again = GeminiBatches()
    assert run(poll(again, fake, kept, 3))[-1].state == "completed"
    fresh = Part("b_x", 0, kept.provider_batch_id, kept.input_file_id, "completed", 3, 0)
    results = run(collect(again, fake, fresh, requests))
    assert [r.custom_id for r in results] == ["1-1", "2-1", "3-1"] and all(r.images for r in results)


def test_an_expired_responses_file_says_so(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches(Limits(1000, 10_000_000, inline_bytes=0))
    requests = lines(2)
    [part] = run(submit(service, fake, requests))
    state = run(poll(service, fake, part, 3))[-1]
    assert state.output_file_id is not None
    fake.expire_file(state.output_file_id)
    with pytest.raises(GenerationError) as caught:
        run(collect(service, fake, part, requests))
    assert caught.value.status == 404 and "48 hours" in (caught.value.hint or "")


def test_refused_before_anything_is_sent(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches()
    with pytest.raises(UsageError, match="Gemini image models only"):
        run(submit(service, fake, {"1-1": request("x", "gemini/imagen-4.0-generate-001")}))
    mixed = {"1-1": request("x"), "2-1": request("y", "gemini/gemini-2.5-flash-image")}
    with pytest.raises(UsageError, match="same model"):
        run(submit(service, fake, mixed))
    assert fake.batches == {} and fake.files == {}


def test_a_wrong_key_is_an_auth_error_and_never_in_a_url(fake: FakeGeminiBatch) -> None:
    service = GeminiBatches()
    bad = "wrong-key-0000000000"

    async def go() -> None:
        async with Transport(timeout=10, retries=0) as transport:
            [p async for p in service.submit(stream(lines(1)), settings(fake, bad), transport)]

    with pytest.raises(AuthError):
        run(go())
    assert all(bad not in path for _, path, _ in fake.requests)


def test_a_create_is_retried_only_when_google_refused_it(fake: FakeGeminiBatch) -> None:
    """A 429 made nothing: sent again. A 500 after the batch was made is not sent again (it would run
    and be billed twice): the error says to look before submitting again."""
    fake.create_failures = [429]

    async def go() -> list[Any]:
        async with Transport(timeout=10, retries=2) as transport:
            return [p async for p in GeminiBatches().submit(stream(lines(1)), settings(fake), transport)]

    assert len(run(go())) == 1 and len(fake.batches) == 1
    fake.create_failures = [500]
    with pytest.raises(GenerationError) as caught:
        run(go())
    assert len(fake.batches) == 2 and "did not send it twice" in (caught.value.hint or "")


def test_the_fake_refuses_what_google_refuses(fake: FakeGeminiBatch) -> None:
    """The fake is strict: an unknown field, a key in the URL or an upload at the wrong offset fail."""
    import httpx

    url = f"{fake.api_base}/models/gemini-3.1-flash-image:batchGenerateContent"
    headers = {"x-goog-api-key": GEMINI_KEY, "Content-Type": "application/json"}
    good = {"request": {"contents": [{"parts": [{"text": "a"}]}]}, "metadata": {"key": "1"}}
    body = {"batch": {"displayName": "t", "inputConfig": {"requests": {"requests": [good]}}}}
    assert httpx.post(url, headers=headers, json=body).status_code == 200
    assert httpx.post(f"{url}?key={GEMINI_KEY}", json=body).status_code == 400
    body["batch"]["display_name_typo"] = "x"
    assert httpx.post(url, headers=headers, json=body).status_code == 400
    bad_request = {"request": {"contents": [{"parts": [{"txt": "a"}]}]}}
    body = {"batch": {"displayName": "t", "inputConfig": {"requests": {"requests": [bad_request]}}}}
    assert httpx.post(url, headers=headers, json=body).status_code == 400


@pytest.mark.parametrize("inline_bytes", [20_000_000, 0])
def test_images_stream_to_the_spill_directory_as_they_arrive(
    fake: FakeGeminiBatch, tmp_path: Any, inline_bytes: int
) -> None:
    """With a spill directory (as collect sets it), each image is decoded to a file while its answer
    is read: memory never holds the result's base64."""
    fake.image = TINY_PNG + b"\0" * 200_000  # long enough to be spilled
    service = GeminiBatches(Limits(1000, 10_000_000, inline_bytes=inline_bytes))
    requests = lines(3)
    [part] = run(submit(service, fake, requests))
    run(poll(service, fake, part, 3))

    results = run(collect(service, fake, part, requests, spill=tmp_path))
    images = [image for result in results for image in result.images]
    assert len(images) == 3 and all(image.file is not None and image.b64_json is None for image in images)
    assert all(image.image_bytes() == fake.image for image in images)


# -- the commands --------------------------------------------------------------------------------

CLI_MODEL = "gemini/gemini-2.5-flash-image"


def _env(tmp_path: Any, fake: FakeGeminiBatch, **extra: str) -> dict[str, str]:
    return {"GEMINI_API_KEY": GEMINI_KEY, "GEMINI_API_BASE": fake.api_base, "IMGGEN_POLL_INTERVAL": "0",
            "IMGGEN_BATCH_LEDGER": str(tmp_path / "data" / "batches.sqlite"), **extra}  # fmt: skip


def _prompts(tmp_path: Any, *prompts: str) -> Any:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    return path


def _pngs(folder: Any) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.exists() else []


def test_cli_submit_then_status_and_collect_in_new_processes(cli: Any, tmp_path: Any, fake: FakeGeminiBatch) -> None:
    """Every command is a new process (a restart between each): the ledger is all they share. Collect
    run twice writes nothing twice."""
    fake.outcomes = {"2-1": "error"}
    env = _env(tmp_path, fake)
    prompts = _prompts(tmp_path, "an otter", "a heron", "a crane")
    submitted = cli("batch", "submit", "--prompts-file", str(prompts), "-m", CLI_MODEL, "--seed", "7",
                    "-o", "out", "--name", "{line}-{seed}.{ext}", env=env)  # fmt: skip
    assert submitted.code == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert "estimated" in submitted.stderr and "at batch prices (50% of the price)" in submitted.stderr
    [job] = fake.batches.values()
    assert job.inline and job.keys == ["1-1", "2-1", "3-1"] and job.requests[0]["generationConfig"]["seed"] == 7
    collect_in_new_processes(cli, batch_id, env, tmp_path / "out")
    assert (tmp_path / "out" / "1-7.png").read_bytes() == TINY_PNG


def collect_in_new_processes(cli: Any, batch_id: str, env: dict[str, str], out: Path) -> Any:
    """After a submit of three prompts with --seed 7 whose second request fails: collect before the end
    says so (exit 1), status moves on to completed, collect saves lines 1 and 3 and reports line 2
    (exit 4), and collect run again writes nothing twice. Each command is a new process."""
    early = cli("batch", "collect", batch_id, env=env)
    assert early.code == 1 and "not finished" in early.stderr
    states = [json.loads(cli("batch", "status", batch_id, "--json", env=env).stdout)["state"] for _ in range(2)]
    assert states == ["in_progress", "completed"]
    collected = cli("batch", "collect", batch_id, "--json", env=env)
    assert collected.code == 4, collected.stderr  # the second request failed
    assert _pngs(out) == ["1-7.png", "3-7.png"]  # named as generate names them, with the seed sent
    lines = {line.get("line"): line for line in collected.json_lines()}
    assert set(lines) == {1, 2, 3} and "RESOURCE_EXHAUSTED" in json.dumps(lines[2])
    again = cli("batch", "collect", batch_id, "--json", env=env)
    assert again.stdout == "" and again.code == 4
    assert _pngs(out) == ["1-7.png", "3-7.png"]
    return collected


def test_cli_file_mode_split_from_stdin_with_wait(cli: Any, tmp_path: Any, fake: FakeGeminiBatch) -> None:
    env = _env(tmp_path, fake, IMGGEN_BATCH_LIMITS="2,1000000,0")  # 2 requests a part, never inline
    result = cli("batch", "submit", "--prompts-file", "-", "-m", CLI_MODEL, "-o", "out", "--wait", env=env,
                 input=b"one\ntwo\nthree\nfour\nfive\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert [len(job.keys) for job in fake.batches.values()] == [2, 2, 1]
    assert not any(job.inline for job in fake.batches.values()) and len(fake.files) == 3 + 3  # inputs, outputs
    assert len(_pngs(tmp_path / "out")) == 5
    [row] = cli("batch", "list", "--json", env=env).json_lines()
    assert len(row["provider_batches"]) == 3 and row["state"] == "collected"


def test_cli_cancel_then_list(cli: Any, tmp_path: Any, fake: FakeGeminiBatch) -> None:
    env = _env(tmp_path, fake)
    batch_id = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, "a", "b")), "-m", CLI_MODEL,
                   env=env).stdout.strip()  # fmt: skip
    cancelled = cli("batch", "cancel", batch_id, env=env)
    assert cancelled.code == 0 and "cancelling" in cancelled.stdout
    assert [row["state"] for row in cli("batch", "list", "--json", env=env).json_lines()] == ["cancelled"]
    collected = cli("batch", "collect", batch_id, env=env)
    assert collected.code != 0 and _pngs(tmp_path) == []  # nothing ran: each request reported, the reason once
    said = [line for line in collected.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "cancelled before this request ran" in said[0], collected.stderr


def test_cli_max_cost_at_half_price(cli: Any, tmp_path: Any, fake: FakeGeminiBatch) -> None:
    from imggen.catalog import estimate_cost, lookup

    full = estimate_cost(lookup(CLI_MODEL), 1, None, None)
    assert full is not None
    prompts = _prompts(tmp_path, "an otter")
    env = _env(tmp_path, fake)
    refused = cli("batch", "submit", "--prompts-file", str(prompts), "-m", CLI_MODEL, "--max-cost",
                  f"{full * 0.49:.6f}", env=env)  # fmt: skip
    assert refused.code == 2 and "--max-cost" in refused.stderr and fake.requests == []
    taken = cli("batch", "submit", "--prompts-file", str(prompts), "-m", CLI_MODEL, "--max-cost",
                f"{full * 0.51:.6f}", env=env)  # fmt: skip
    assert taken.code == 0, taken.stderr


@pytest.mark.parametrize("model", ["vertex_ai/gemini-3-pro-image", "bedrock/amazon.nova-canvas-v1:0"])
def test_cli_a_model_no_batch_service_takes_is_refused(cli: Any, tmp_path: Any, fake: FakeGeminiBatch,
                                                       model: str) -> None:  # fmt: skip
    """A Vertex AI model Google's batch prediction list does not name (the catalog's batch field), and
    Bedrock, which lists no image model for batch inference: one line says so and names the models that
    are taken, before anything is sent."""
    result = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, "an otter")), "-m", model,
                 env=_env(tmp_path, fake))  # fmt: skip
    assert result.code == 2, result.stderr
    said = {"vertex_ai": "no batch service takes this model", "bedrock": "batch-inference-supported"}
    assert said[model.split("/")[0]] in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "gemini/gemini-2.5-flash-image" in result.stderr and "openai/gpt-image-1" in result.stderr
    assert "vertex_ai/gemini-nano-banana-2.1" in result.stderr
    assert fake.requests == [] and not (tmp_path / "data" / "batches.sqlite").exists()
