"""`imggen batch` against Vertex AI batch prediction and Cloud Storage (tests/fakevertexbatch.py on
127.0.0.1), signed in with google-auth's real token exchange against the fake token endpoint
(fakeserver.FakeProvider): the service module (media and resumable uploads, the job body, every state,
partial failures, several predictions files, cancel, refusals, the create-retry rule) and the commands
end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeserver import TINY_PNG, FakeProvider
from fakevertexbatch import FakeVertexBatch
from imggen.batches.ledger import Part
from imggen.batches.service import Limits
from imggen.batches.vertex_ai import VertexBatches
from imggen.catalog import parse_model
from imggen.errors import ContentFilterError, GenerationError, ProviderError, UsageError
from imggen.settings import resolve
from imggen.transport import Transport
from imggen.types import ImageRequest
from test_batch_gemini import _pngs, _prompts, collect_in_new_processes, run, stream
from test_google import service_account  # noqa: F401 (a fixture: a key the fake token endpoint checks)

MODEL = "vertex_ai/gemini-nano-banana-2.1"
BUCKET = "my-bucket"


@pytest.fixture
def vfake(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVertexBatch]:
    with FakeVertexBatch(tokens=fake.google_tokens) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.root)
        yield server


@pytest.fixture
def env(vfake: FakeVertexBatch, service_account: Path) -> dict[str, str]:  # noqa: F811
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(service_account), "NO_GCE_CHECK": "true",
            "VERTEXAI_PROJECT": "proj", "STORAGE_EMULATOR_HOST": vfake.root}  # fmt: skip


def settings(vfake: FakeVertexBatch, env: dict[str, str], bucket: str | None = BUCKET) -> Any:
    return resolve(model=MODEL, flags={"api_base": vfake.root, "vertex_batch_bucket": bucket}, env=env)


def request(prompt: str, model: str = MODEL, **fields: Any) -> ImageRequest:
    return ImageRequest(prompt, parse_model(model), **fields)


def lines(count: int, **fields: Any) -> dict[str, ImageRequest]:
    return {f"{n}-1": request(f"prompt number {n}", **fields) for n in range(1, count + 1)}


async def submit(service: VertexBatches, given: Any, requests: dict[str, ImageRequest]) -> list[Part]:
    async with Transport(timeout=10, retries=0) as transport:
        sent = [p async for p in service.submit(stream(requests), given, transport)]
    return [Part("b_x", n, p.provider_batch_id, p.input_file_id, "validating", p.request_count, p.first_index)
            for n, p in enumerate(sent)]  # fmt: skip


async def poll(service: VertexBatches, given: Any, part: Part, times: int) -> list[Any]:
    async with Transport(timeout=10, retries=0) as transport:
        return [await service.status(part, given, transport) for _ in range(times)]


async def collect(service: VertexBatches, given: Any, part: Part, requests: dict[str, ImageRequest],
                  spill: Path | None = None) -> list[Any]:  # fmt: skip
    async with Transport(timeout=10, retries=0) as transport:
        transport.spill_dir = spill
        return [r async for r in service.results(part, given, transport, requests.__getitem__)]


def test_submit_uploads_the_input_and_creates_the_job_then_collects_by_label(
    vfake: FakeVertexBatch, env: dict[str, str]
) -> None:
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(3, aspect_ratio="16:9", seed=7)
    [part] = run(submit(service, given, requests))
    assert part.provider_batch_id.startswith("projects/proj/locations/global/batchPredictionJobs/")
    assert part.input_file_id is not None and part.input_file_id.startswith(f"gs://{BUCKET}/imggen/")
    [upload] = [r for r in vfake.requests if r[1].startswith("/upload/")]
    assert upload[2]["uploadType"] == "media" and upload[3]["content-type"] == "application/jsonl"
    sent = [json.loads(x) for x in vfake.objects[part.input_file_id.removeprefix("gs://")].splitlines()]
    assert [set(x) for x in sent] == [{"request"}] * 3
    assert [x["request"]["labels"] for x in sent] == [{"imggen_id": k} for k in requests]
    assert sent[0]["request"]["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    job = next(iter(vfake.jobs.values()))
    assert job.model == "gemini-nano-banana-2.1" and job.output_prefix.startswith(f"gs://{BUCKET}/imggen/")
    # every call carries the token google-auth got from the token endpoint, never in a URL
    assert all(h["authorization"] == f"Bearer {vfake.tokens[0]}" for _, _, _, h in vfake.requests)
    assert not any(vfake.tokens[0] in path or vfake.tokens[0] in str(q) for _, path, q, _ in vfake.requests)

    states = run(poll(service, given, part, 3))
    assert [s.state for s in states] == ["validating", "in_progress", "completed"]
    assert (states[-1].total, states[-1].completed, states[-1].failed) == (3, 3, 0)

    results = run(collect(service, given, part, requests))
    assert sorted(r.custom_id for r in results) == ["1-1", "2-1", "3-1"]  # written in reverse: matched by label
    assert all(r.error is None and r.images[0].image_bytes() == TINY_PNG for r in results)
    assert results[0].images[0].seed == 7 and results[0].images[0].text == "Here it is."


def test_a_large_input_goes_up_in_resumable_chunks(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service, given = VertexBatches(chunk=256 * 1024), settings(vfake, env)
    requests = {f"{n}-1": request(f"prompt {n} " + "x" * 20_000) for n in range(1, 31)}  # ~600 KB
    [part] = run(submit(service, given, requests))
    assert vfake.chunk_sizes == [256 * 1024, 256 * 1024, vfake.chunk_sizes[-1]] and vfake.chunk_sizes[-1] > 0
    start = next(r for r in vfake.requests if r[2].get("uploadType") == "resumable" and "upload_id" not in r[2])
    uploaded = vfake.objects[part.input_file_id.removeprefix("gs://")]  # type: ignore[union-attr]
    assert start[3]["x-upload-content-length"] == str(len(uploaded)) and len(uploaded.splitlines()) == 30
    chunks = [h for _, _, q, h in vfake.requests if "upload_id" in q]
    assert all(h["x-guploader-no-308"] == "yes" for h in chunks)  # else Google answers a bare 308
    run(poll(service, given, part, 3))
    assert len(run(collect(service, given, part, requests))) == 30


def test_a_chunk_whose_answer_is_lost_is_not_sent_twice(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    """Storage kept the chunk but its answer was lost: imggen asks the session what it holds and goes on
    from there, so every byte arrives once."""
    vfake.chunk_failures = [503]
    service, given = VertexBatches(chunk=256 * 1024), settings(vfake, env)
    requests = {f"{n}-1": request(f"prompt {n} " + "x" * 20_000) for n in range(1, 31)}

    async def go() -> list[Any]:
        async with Transport(timeout=10, retries=2) as transport:
            return [p async for p in service.submit(stream(requests), given, transport)]

    [part] = run(go())
    uploaded = vfake.objects[part.input_file_id.removeprefix("gs://")]
    assert len(vfake.chunk_sizes) == 3 and sum(vfake.chunk_sizes) == len(uploaded)  # nothing sent twice
    assert [json.loads(x)["request"]["labels"]["imggen_id"] for x in uploaded.splitlines()] == list(requests)
    queries = [
        h for _, _, q, h in vfake.requests if "upload_id" in q and h.get("content-range", "").startswith("bytes */")
    ]
    assert len(queries) == 1


def test_lines_past_the_limits_become_several_jobs(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service, given = VertexBatches(Limits(2, 1_000_000_000)), settings(vfake, env)
    parts = run(submit(service, given, lines(5)))
    assert [(p.request_count, p.first_index) for p in parts] == [(2, 0), (2, 2), (1, 4)]
    assert len({p.input_file_id for p in parts}) == 3 and len(vfake.jobs) == 3


def test_partial_failures_and_several_predictions_files(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    vfake.script = ["RUNNING", "PARTIALLY_SUCCEEDED"]
    vfake.outcomes = {"2-1": "error", "3-1": "blocked", "4-1": "text"}
    vfake.output_files = 2  # and listings of 2 objects a page: three pages to read
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(5)
    [part] = run(submit(service, given, requests))
    final = run(poll(service, given, part, 2))[-1]
    assert (final.state, final.completed, final.failed) == ("completed", 4, 1)
    results = {r.custom_id: r for r in run(collect(service, given, part, requests))}
    assert sorted(results) == ["1-1", "2-1", "3-1", "4-1", "5-1"]
    assert isinstance(results["2-1"].error, ProviderError) and "RESOURCE_EXHAUSTED" in results["2-1"].error.message
    assert isinstance(results["3-1"].error, ContentFilterError)
    assert results["4-1"].error is not None and not results["4-1"].images
    assert results["5-1"].images[0].image_bytes() == TINY_PNG
    listings = [q for _, path, q, _ in vfake.requests if path == f"/storage/v1/b/{BUCKET}/o"]
    assert len(listings) == 2 and listings[1]["pageToken"] == "2"


@pytest.mark.parametrize(("final", "word"), [("FAILED", "failed"), ("EXPIRED", "expired"), ("CANCELLED", "cancelled")])
def test_terminal_states_without_output(vfake: FakeVertexBatch, env: dict[str, str], final: str, word: str) -> None:
    vfake.script = ["PENDING", final]
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(2)
    [part] = run(submit(service, given, requests))
    state = run(poll(service, given, part, 2))[-1]
    assert state.state == word
    assert state.errors == (["Internal error occurred during batch prediction."] if final == "FAILED" else [])
    assert run(collect(service, given, part, requests)) == []


def test_cancel_goes_through_cancelling_to_cancelled(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    vfake.script = ["PENDING", "RUNNING"]
    service, given = VertexBatches(), settings(vfake, env)
    [part] = run(submit(service, given, lines(2)))

    async def go() -> list[str]:
        async with Transport(timeout=10, retries=0) as transport:
            first = await service.cancel(part, given, transport)
            second = await service.status(part, given, transport)
            return [first.state, second.state]

    assert run(go()) == ["cancelling", "cancelled"]
    assert ("POST", f"/v1/{part.provider_batch_id}:cancel") in [(m, p) for m, p, _, _ in vfake.requests]


def test_a_cancelled_job_gives_the_rows_it_finished(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    vfake.script = ["RUNNING", "CANCELLED"]
    vfake.done_before_cancel = 2
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(3)
    [part] = run(submit(service, given, requests))
    assert run(poll(service, given, part, 2))[-1].state == "cancelled"
    results = run(collect(service, given, part, requests))
    assert sorted(r.custom_id for r in results) == ["1-1", "2-1"] and all(r.images for r in results)


def test_results_before_the_end_are_refused(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(1)
    [part] = run(submit(service, given, requests))
    with pytest.raises(UsageError, match="not ready"):
        run(collect(service, given, part, requests))


def test_no_bucket_is_refused_before_anything_is_sent(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service, given = VertexBatches(), settings(vfake, env, bucket=None)
    with pytest.raises(UsageError, match="Cloud Storage bucket") as caught:
        service.check(given)
    assert "--gcs-bucket" in str(caught.value.hint)
    with pytest.raises(UsageError):
        run(submit(service, given, lines(1)))
    assert vfake.requests == [] and vfake.tokens == []  # not even a token was asked for


def test_imagen_and_a_missing_bucket_are_refused(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service = VertexBatches()
    with pytest.raises(UsageError, match="Gemini image models only"):
        run(submit(service, settings(vfake, env), {"1-1": request("x", "vertex_ai/imagen-4.0-generate-001")}))
    vfake.buckets = set()
    with pytest.raises(GenerationError, match="bucket does not exist") as caught:
        run(submit(service, settings(vfake, env), lines(1)))
    assert "Vertex AI's service agent" in str(caught.value.hint)
    assert vfake.jobs == {}


def test_a_create_is_retried_only_when_google_refused_it(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    service, given = VertexBatches(), settings(vfake, env)

    async def go() -> list[Any]:
        async with Transport(timeout=10, retries=2) as transport:
            return [p async for p in service.submit(stream(lines(1)), given, transport)]

    vfake.create_failures = [429]
    assert len(run(go())) == 1 and len(vfake.jobs) == 1  # refused, then made once
    vfake.create_failures = [500]
    with pytest.raises(GenerationError) as caught:
        run(go())
    assert len(vfake.jobs) == 2 and "did not send it twice" in str(caught.value.hint)


def test_images_stream_to_the_spill_directory(vfake: FakeVertexBatch, env: dict[str, str], tmp_path: Path) -> None:
    vfake.image = TINY_PNG + b"\0" * 200_000  # long enough to be spilled
    service, given = VertexBatches(), settings(vfake, env)
    requests = lines(2)
    [part] = run(submit(service, given, requests))
    run(poll(service, given, part, 3))
    images = [i for r in run(collect(service, given, part, requests, spill=tmp_path)) for i in r.images]
    assert len(images) == 2 and all(i.file is not None and i.b64_json is None for i in images)
    assert all(i.image_bytes() == vfake.image for i in images)


# -- the commands --------------------------------------------------------------------------------


def _cli_env(env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**env, "IMGGEN_POLL_INTERVAL": "0", "IMGGEN_BATCH_LEDGER": str(tmp_path / "data" / "batches.sqlite"),
            **extra}  # fmt: skip


def test_cli_submit_then_status_and_collect_in_new_processes(
    cli: Any, tmp_path: Path, vfake: FakeVertexBatch, env: dict[str, str]
) -> None:
    """Every command is a new process: the ledger is all they share. Collect twice writes nothing twice."""
    vfake.outcomes = {"2-1": "error"}
    vfake.script = ["PENDING", "RUNNING", "PARTIALLY_SUCCEEDED"]
    run_env = _cli_env(env, tmp_path)
    prompts = _prompts(tmp_path, "an otter", "a heron", "a crane")
    submitted = cli("batch", "submit", "--prompts-file", str(prompts), "-m", MODEL, "--seed", "7", "-o", "out",
                    "--name", "{line}-{seed}.{ext}", "--gcs-bucket", f"gs://{BUCKET}/", "--api-base", vfake.root,
                    env=run_env)  # fmt: skip
    assert submitted.code == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert "at batch prices (50% of the price)" in submitted.stderr
    [job] = vfake.jobs.values()
    assert job.keys == ["1-1", "2-1", "3-1"] and job.requests[0]["generationConfig"]["seed"] == 7
    collected = collect_in_new_processes(cli, batch_id, run_env, tmp_path / "out")
    for token in vfake.tokens:  # the token is nowhere a user sees
        assert token not in submitted.stderr + collected.stdout + collected.stderr


def test_cli_profile_bucket_and_wait(cli: Any, tmp_path: Path, vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    run_env = _cli_env(env, tmp_path, IMGGEN_BATCH_LIMITS="2,1000000000")
    assert cli("config", "set", "vertex_ai", "vertex_batch_bucket", BUCKET, env=run_env).code == 0
    result = cli("batch", "submit", "--prompts-file", "-", "-m", MODEL, "-o", "out", "--wait", "--api-base",
                 vfake.root, env=run_env, input=b"one\ntwo\nthree\n")  # fmt: skip
    assert result.code == 0, result.stderr
    assert [len(job.keys) for job in vfake.jobs.values()] == [2, 1]
    assert len(_pngs(tmp_path / "out")) == 3
    [row] = cli("batch", "list", "--json", env=run_env).json_lines()
    assert len(row["provider_batches"]) == 2 and row["state"] == "collected"


def test_cli_without_a_bucket_is_refused_before_anything(
    cli: Any, tmp_path: Path, vfake: FakeVertexBatch, env: dict[str, str]
) -> None:
    run_env = _cli_env(env, tmp_path)
    result = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, "an otter")), "-m", MODEL,
                 "--api-base", vfake.root, env=run_env)  # fmt: skip
    assert result.code == 2 and "Cloud Storage bucket" in result.stderr and "--gcs-bucket" in result.stderr
    assert vfake.requests == [] and vfake.tokens == []
    assert not (tmp_path / "data" / "batches.sqlite").exists()
    gemini_env = {**run_env, "GEMINI_API_KEY": "k"}
    other = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, "an otter")), "-m",
                "gemini/gemini-2.5-flash-image", "--gcs-bucket", BUCKET, env=gemini_env)  # fmt: skip
    assert other.code == 2 and "take no Cloud Storage bucket" in other.stderr


def test_cli_cancel(cli: Any, tmp_path: Path, vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    vfake.script = ["PENDING", "RUNNING"]
    run_env = _cli_env(env, tmp_path, VERTEXAI_BATCH_BUCKET=BUCKET)
    batch_id = cli("batch", "submit", "--prompts-file", str(_prompts(tmp_path, "a", "b")), "-m", MODEL,
                   "--api-base", vfake.root, env=run_env).stdout.strip()  # fmt: skip
    cancelled = cli("batch", "cancel", batch_id, env=run_env)
    assert cancelled.code == 0 and "cancelling" in cancelled.stdout
    assert [row["state"] for row in cli("batch", "list", "--json", env=run_env).json_lines()] == ["cancelled"]
    collected = cli("batch", "collect", batch_id, env=run_env)
    # the requests a cancel stopped are failed requests: reported, exit 4, nothing saved
    assert collected.code == 4 and "was cancelled" in collected.stderr and _pngs(tmp_path) == []


def test_the_fake_refuses_what_google_refuses(vfake: FakeVertexBatch, env: dict[str, str]) -> None:
    """The fake is strict, so the tests above can fail: an unknown token, an unknown field, a chunk that is
    not a 256 KiB multiple, and a bare 308 for a client that did not ask for the No-308 answer."""
    import httpx

    vfake.tokens.append("ya29.good")
    auth = {"Authorization": "Bearer ya29.good"}
    jobs = f"{vfake.root}/v1/projects/p/locations/global/batchPredictionJobs"
    assert httpx.get(f"{vfake.root}/storage/v1/b/{BUCKET}/o", headers={"Authorization": "Bearer x"}).status_code == 401
    body = {"displayName": "x", "model": "publishers/google/models/gemini-nano-banana-2.1", "labels": {},
            "inputConfig": {}, "outputConfig": {}}  # fmt: skip
    assert httpx.post(jobs, json=body, headers=auth).status_code == 400
    start = httpx.post(f"{vfake.root}/upload/storage/v1/b/{BUCKET}/o?uploadType=resumable&name=a.jsonl",
                       headers={**auth, "X-Upload-Content-Length": str(600_000)})  # fmt: skip
    session = start.headers["location"]
    odd = httpx.put(session, content=b"x" * 1000, headers={**auth, "Content-Range": "bytes 0-999/600000"})
    assert odd.status_code == 400
    bare = httpx.put(session, content=b"x" * 262_144, headers={**auth, "Content-Range": "bytes 0-262143/600000"})
    assert bare.status_code == 308 and bare.headers["range"] == "bytes=0-262143"
    assert httpx.get(f"{vfake.root}/storage/v1/b/other/o", headers=auth).status_code == 404
