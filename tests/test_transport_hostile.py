"""Hostile servers: trickling, flooding, gzip bombs, bad Retry-After, redirects, resets (issue 10: 6, 9, 11-13).

Every request stays on 127.0.0.1: refusals of link-local and metadata addresses are checked before any
connection, and the CLI tests route plain HTTP through the fake as a proxy, so a refusal that failed
would land on the fake (and fail the test), never on the network.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import imggen
from conftest import OPENAI_KEY, SECRETS, assert_no_secret, openai_env, run_cli
from fakeserver import TINY_PNG, FakeProvider, Reply, openai_error, rate_limited
from imggen import transport as transport_module
from imggen.errors import BadResponseError
from imggen.transport import MAX_ERROR_BODY, Transport, check_download_address, network_error, retry_after
from servehelp import Served, deployment, proxy_config

IMAGES = "/images/generations"
MIB = 1 << 20


def gen(fake: FakeProvider, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("generate", "otter", "-o", "out", *args, env={**openai_env(fake), **(env or {})})


def answer(*items: dict[str, Any]) -> Reply:
    return Reply(json={"created": int(time.time()), "data": list(items)})


def b64_item(data: bytes = TINY_PNG) -> dict[str, Any]:
    return {"b64_json": base64.b64encode(data).decode()}


def left_behind(directory: Path) -> list[str]:
    """Anything but finished images: temporary files, spill files or folders."""
    if not directory.exists():
        return []
    kept = {".imggen-manifest.jsonl"}
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith(".imggen-") and p.name not in kept)


def big_png(size: int) -> bytes:
    return TINY_PNG[:16] + random.Random(3).randbytes(size - len(TINY_PNG)) + TINY_PNG[16:]


@pytest.fixture
def second() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


# 6. one deadline for the whole attempt


def test_a_trickling_answer_ends_at_the_deadline_and_is_retried(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, *[Reply(json=answer(b64_item()).json, trickle=0.3) for _ in range(2)])
    result = gen(fake, "-m", "dall-e-2", "--timeout", "1", "--retries", "1")
    assert result.code == 1, result.stderr
    assert "no complete answer from 127.0.0.1 within 1 s" in result.stderr
    assert "HTTPS_PROXY" in result.stderr and "Traceback" not in result.stderr
    assert len([r for r in fake.requests if r.path.endswith(IMAGES)]) == 2  # the usual retry rule
    assert list((tmp_path / "out").glob("*.png")) == [] and left_behind(tmp_path / "out") == []
    assert_no_secret(result.everything())


def test_a_trickling_answer_then_a_good_one_saves_the_image(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, Reply(json=answer(b64_item()).json, trickle=0.3))
    result = gen(fake, "-m", "dall-e-2", "--timeout", "1", "--retries", "1")
    assert result.code == 0, result.stderr
    assert [p.read_bytes() for p in (tmp_path / "out").glob("*.png")] == [TINY_PNG]


def test_a_trickling_image_download_ends_at_the_deadline(fake: FakeProvider, tmp_path: Path) -> None:
    slow = Reply(body=TINY_PNG, headers={"Content-Type": "image/png"}, trickle=0.3)
    fake.script("/files/", slow, Reply(body=TINY_PNG, headers={"Content-Type": "image/png"}, trickle=0.3))
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url", "--timeout", "1", "--retries", "1")
    assert result.code == 1, result.stderr
    assert "no complete answer from 127.0.0.1 within 1 s" in result.stderr
    assert len([r for r in fake.requests if r.path.startswith("/files/")]) == 2
    assert list((tmp_path / "out").glob("*.png")) == [] and left_behind(tmp_path / "out") == []


def test_serve_answers_504_for_a_trickling_upstream(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, Reply(json=answer(b64_item()).json, trickle=0.3))
    entry = deployment("d", "openai/dall-e-2", api_key=OPENAI_KEY, api_base=fake.openai_base, timeout=1)
    served = Served(tmp_path, proxy_config(entry))
    try:
        reply = served.post({"model": "d", "prompt": "x"})
        health = httpx.get(served.base + "/health?probe=1", timeout=30,
                           headers={"Authorization": "Bearer sk-master-key-0123456789"})  # fmt: skip
    finally:
        served.stop()
    assert reply.status_code == 504, reply.text
    assert "within 1 s" in reply.json()["error"]["message"]
    assert health.status_code == 200 and health.json()["healthy_count"] == 1  # the probe got a quick answer


def test_serve_health_probe_ends_at_the_deadline(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, *[Reply(json=answer(b64_item()).json, trickle=0.3) for _ in range(3)])
    entry = deployment("d", "openai/dall-e-2", api_key=OPENAI_KEY, api_base=fake.openai_base, timeout=1)
    served = Served(tmp_path, proxy_config(entry))
    try:
        health = httpx.get(served.base + "/health?probe=1", timeout=30,
                           headers={"Authorization": "Bearer sk-master-key-0123456789"})  # fmt: skip
    finally:
        served.stop()
    unhealthy = health.json()["unhealthy_endpoints"]
    assert len(unhealthy) == 1 and "no complete answer" in unhealthy[0]["error"]
    assert OPENAI_KEY not in health.text


# 9. bounded bodies


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_an_error_with_flat_memory(fake: FakeProvider, tmp_path: Path, encoding: str) -> None:
    zeros = b"\0" * (64 * MIB)
    bomb = gzip.compress(zeros, compresslevel=9) if encoding == "gzip" else zlib.compress(zeros, 9)
    assert len(bomb) < MIB
    fake.script(IMAGES, Reply(body=bomb, headers={"Content-Encoding": encoding, "Content-Type": "application/json"}))
    script = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call([sys.executable, '-m', 'imggen', *sys.argv[1:]])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    args = ["generate", "otter", "-m", "dall-e-2", "-o", "out", "--retries", "0"]
    env = {**os.environ, **openai_env(fake)}
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "the response is larger than 16 MiB" in proc.stderr and "Traceback" not in proc.stderr
    peak_mib = int(proc.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 100, f"peak RSS {peak_mib:.0f} MiB"  # the inflated body alone is 64 MiB
    assert left_behind(tmp_path / "out") == []


def test_a_huge_error_body_is_read_only_as_far_as_needed() -> None:
    sent = 0

    async def flood() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1024):
            sent += 65536
            yield b"x" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=flood())

    async def main() -> None:
        async with Transport(timeout=5, retries=0) as transport:
            transport.clients[False] = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            from imggen.types import HttpRequest

            def mapper(response: httpx.Response) -> Any:
                assert len(response.content) == MAX_ERROR_BODY
                return imggen.errors.ProviderError("server error", status=500)

            with pytest.raises(imggen.errors.ProviderError):
                await transport.send(HttpRequest("POST", "http://127.0.0.1:9/v1/x", {}, json={}), mapper)

    asyncio.run(main())
    assert sent <= 2 * 65536  # 64 MiB were on offer


def test_an_image_over_the_limit_is_refused_as_base64(fake: FakeProvider, tmp_path: Path) -> None:
    fake.image_bytes = big_png(2 * MIB)
    result = gen(fake, "-m", "dall-e-2", "--retries", "0", env={"IMGGEN_MAX_IMAGE_MB": "1"})
    assert result.code == 1, result.stderr
    assert "the image is larger than 1 MiB (IMGGEN_MAX_IMAGE_MB)" in result.stderr
    assert list((tmp_path / "out").glob("*.png")) == [] and left_behind(tmp_path / "out") == []
    assert len(fake.requests) == 1  # the same answer would come again: not retried


def test_an_image_over_the_limit_is_refused_as_a_download(fake: FakeProvider, tmp_path: Path) -> None:
    fake.image_bytes = big_png(2 * MIB)
    args = ("-m", "dall-e-2", "--response-format", "url", "--retries", "1")
    result = gen(fake, *args, env={"IMGGEN_MAX_IMAGE_MB": "1"})
    assert result.code == 1, result.stderr
    assert "the image is larger than 1 MiB (IMGGEN_MAX_IMAGE_MB)" in result.stderr
    assert list((tmp_path / "out").glob("*.png")) == [] and left_behind(tmp_path / "out") == []
    assert gen(fake, *args, env={"IMGGEN_MAX_IMAGE_MB": "3"}).code == 0  # within the limit it is saved


def test_an_image_over_the_limit_is_refused_in_memory(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.image_bytes = big_png(2 * MIB)
    monkeypatch.setenv("IMGGEN_MAX_IMAGE_MB", "1")
    with pytest.raises(BadResponseError, match=r"the image is larger than 1 MiB \(IMGGEN_MAX_IMAGE_MB\)"):
        imggen.generate("otter", model="dall-e-2", api_key=OPENAI_KEY, api_base=fake.openai_base, retries=0)
    monkeypatch.setenv("IMGGEN_MAX_IMAGE_MB", "3")
    response = imggen.generate("otter", model="dall-e-2", api_key=OPENAI_KEY, api_base=fake.openai_base)
    assert response.data[0].image_bytes() == fake.image_bytes


def test_a_bad_image_limit_is_a_config_error(fake: FakeProvider) -> None:
    result = gen(fake, "-m", "dall-e-2", env={"IMGGEN_MAX_IMAGE_MB": "lots"})
    assert result.code == 3 and "IMGGEN_MAX_IMAGE_MB" in result.stderr and "Traceback" not in result.stderr


def test_too_much_text_in_memory_is_refused(fake: FakeProvider) -> None:
    flood = {"created": 1, "data": [b64_item()], "padding": ["x" * 1000] * (17 * 1024)}
    fake.script(IMAGES, Reply(json=flood))
    with pytest.raises(BadResponseError, match="the response is larger than 16 MiB"):
        imggen.generate("otter", model="dall-e-2", api_key=OPENAI_KEY, api_base=fake.openai_base, retries=0)


# 11. Retry-After that means nothing


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "soon", "1e999", "Mon, 99 Foo 2024 25:61:00 GMT", ""])
def test_a_meaningless_retry_after_is_absent(value: str) -> None:
    assert retry_after(httpx.Headers({"Retry-After": value})) is None
    assert retry_after(httpx.Headers({"retry-after-ms": value})) is None
    assert retry_after(httpx.Headers({"retry-after-ms": value, "Retry-After": "2"})) == 2.0


def test_a_meaningful_retry_after_still_counts() -> None:
    assert retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


def test_the_cli_backs_off_when_retry_after_is_nan(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, rate_limited("nan"), rate_limited("inf", retry_after_ms="nan"), rate_limited("-1"))
    result = gen(fake, "-m", "dall-e-2", "--retries", "3")
    assert result.code == 0, result.stderr
    assert "nan" not in result.stderr and "inf s" not in result.stderr and "Traceback" not in result.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_serve_passes_no_nan_retry_after(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, *[rate_limited("nan", retry_after_ms="inf") for _ in range(5)])
    served = Served(tmp_path, proxy_config(deployment("d", "openai/dall-e-2", api_key=OPENAI_KEY,
                                                      api_base=fake.openai_base)))  # fmt: skip
    try:
        reply = served.post({"model": "d", "prompt": "x"})
    finally:
        served.stop()
    assert reply.status_code == 429
    assert reply.headers.get("retry-after", "1").isdigit()
    assert "Traceback" not in served.stderr()


# 12. redirects


def test_an_api_redirect_says_where_and_no_key_follows(fake: FakeProvider, second: FakeProvider) -> None:
    target = second.openai_base + "/images/generations"
    fake.script(IMAGES, Reply(status=302, headers={"Location": target}))
    result = gen(fake, "-m", "dall-e-2", "--retries", "2")
    assert result.code == 1
    assert f"the endpoint redirected to {target}" in result.stderr and "--api-base" in result.stderr
    assert second.requests == []  # the key never went there
    assert len(fake.requests) == 1  # not retried
    assert_no_secret(result.everything())


def test_a_relative_api_redirect_is_shown_whole(fake: FakeProvider) -> None:
    fake.script(IMAGES, Reply(status=301, headers={"Location": "/v2/images/generations"}))
    result = gen(fake, "-m", "dall-e-2")
    assert result.code == 1 and f"redirected to {fake.base_url}/v2/images/generations" in result.stderr


def url_answer(url: str) -> Reply:
    return answer({"url": url})


def test_a_download_follows_up_to_five_redirects(fake: FakeProvider, tmp_path: Path) -> None:
    final = fake.add_file(TINY_PNG)
    hops = [Reply(status=302, headers={"Location": final})] + [
        Reply(status=302, headers={"Location": f"/files/hop{i}"}) for i in range(4)
    ]
    fake.script(IMAGES, url_answer(fake.base_url + "/files/hop"))
    fake.script("/files/hop", *reversed(hops))
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url")
    assert result.code == 0, result.stderr
    assert [p.read_bytes() for p in (tmp_path / "out").glob("*.png")] == [TINY_PNG]


def test_a_sixth_redirect_is_refused(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, url_answer(fake.base_url + "/files/loop"))
    fake.script("/files/loop", *[Reply(status=302, headers={"Location": "/files/loop"}) for _ in range(6)])
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url", "--retries", "2")
    assert result.code == 1 and "redirected more than 5 times" in result.stderr
    assert len([r for r in fake.requests if r.path.startswith("/files/")]) == 6  # once, not retried
    assert left_behind(tmp_path / "out") == []


def guarded(fake: FakeProvider) -> dict[str, str]:
    """Route plain HTTP to anywhere but 127.0.0.1 through the fake: a refusal that failed lands there."""
    return {"HTTP_PROXY": fake.base_url, "NO_PROXY": "127.0.0.1,localhost"}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam",
        "http://[fd00:ec2::254]/latest",
        "http://[::ffff:169.254.169.254]/x",
        "http://100.100.100.200/latest",
    ],
)
def test_an_image_url_on_a_metadata_address_is_refused(fake: FakeProvider, tmp_path: Path, url: str) -> None:
    fake.script(IMAGES, url_answer(url))
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url", env=guarded(fake))
    assert result.code == 1, result.stderr
    assert "link-local or cloud metadata address" in result.stderr and "not downloaded" in result.stderr
    assert [r.raw_path for r in fake.requests if not r.path.endswith(IMAGES)] == []
    assert left_behind(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("url", "said"), [("file:///etc/passwd", "not an http(s) URL"), ("http://[::1/x", "not a valid URL")]
)
def test_an_image_url_that_is_not_http_is_refused(fake: FakeProvider, url: str, said: str) -> None:
    fake.script(IMAGES, url_answer(url))
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url", env=guarded(fake))
    assert result.code == 1 and said in result.stderr and "Traceback" not in result.stderr


def test_a_redirect_to_a_bad_location_is_an_error(fake: FakeProvider) -> None:
    fake.script(IMAGES, Reply(status=302, headers={"Location": "http://[::1/x"}))
    result = gen(fake, "-m", "dall-e-2", "--retries", "0")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "127.0.0.1 answered with broken HTTP: Invalid URL in location header" in result.stderr


def test_a_redirect_to_a_metadata_address_is_refused(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, url_answer(fake.base_url + "/files/x"))
    fake.script("/files/x", Reply(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    result = gen(fake, "-m", "dall-e-2", "--response-format", "url", env=guarded(fake))
    assert result.code == 1 and "cloud metadata address (169.254.169.254)" in result.stderr
    assert [r.raw_path for r in fake.requests if "169.254" in r.raw_path] == []


def test_refusals_happen_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        attempts.append(str(request.url))
        return httpx.Response(200, content=TINY_PNG)

    async def download(url: str) -> None:
        async with Transport(timeout=5) as transport:
            transport.clients[False] = httpx.AsyncClient(transport=httpx.MockTransport(record))
            async with transport.stream(url):
                pass

    monkeypatch.setattr(transport_module, "_LOCAL_APIS", set())
    for url in ("http://169.254.169.254/", "http://[fe80::1]/", "http://127.0.0.1:9/x", "http://0.0.0.0/x",
                "http://[::1]/x", "http://localhost/x"):  # fmt: skip
        with pytest.raises(BadResponseError, match="not downloaded"):
            asyncio.run(download(url))
    assert attempts == []
    monkeypatch.setattr(transport_module, "_LOCAL_APIS", {"127.0.0.1"})  # the API itself is local
    asyncio.run(download("http://127.0.0.1:9/x"))
    asyncio.run(check_download_address("http://10.1.2.3/x"))  # a private network is not refused
    assert attempts == ["http://127.0.0.1:9/x"]


# 13. messages that say what happened


def test_a_reset_connection_is_named(fake: FakeProvider) -> None:
    fake.script(IMAGES, Reply(reset=True), Reply(reset=True))
    result = gen(fake, "-m", "dall-e-2", "--retries", "1")
    assert result.code == 1
    assert "the connection was reset by 127.0.0.1" in result.stderr and "cannot reach" not in result.stderr
    assert "HTTPS_PROXY" in result.stderr


def test_a_refused_connection_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    result = run_cli("generate", "otter", "-m", "dall-e-2", "--retries", "0", env=env)
    assert result.code == 1 and "127.0.0.1 refused the connection" in result.stderr
    assert "HTTPS_PROXY" in result.stderr and "--api-base" in result.stderr
    for secret in SECRETS:
        assert secret not in result.everything()


def test_an_untrusted_certificate_is_named_as_tls(tls_fake: FakeProvider) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": tls_fake.openai_base}
    result = run_cli("generate", "otter", "-m", "dall-e-2", "--retries", "0", env=env)
    assert result.code == 1 and "TLS with 127.0.0.1 failed" in result.stderr
    assert "certificate" in result.stderr and "Traceback" not in result.stderr


def test_dns_and_tls_causes_under_httpx_are_named() -> None:
    def wrapped(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise httpx.ConnectError("All connection attempts failed") from inner
        except httpx.ConnectError as outer:
            return outer

    url = "https://api.example.invalid/v1/images/generations"
    dns = network_error(wrapped(socket.gaierror(-2, "Name or service not known")), url)
    assert dns.message == "cannot resolve api.example.invalid" and "HTTPS_PROXY" in str(dns)
    tls = network_error(wrapped(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), url)
    assert tls.message.startswith("TLS with api.example.invalid failed")
    reset = network_error(wrapped(ConnectionResetError(104, "Connection reset by peer")), url)
    assert reset.message == "the connection was reset by api.example.invalid"


def test_an_error_body_that_is_not_json_is_cut(fake: FakeProvider) -> None:
    fake.script(IMAGES, openai_error(400, "x" * (MAX_ERROR_BODY * 4)))
    result = gen(fake, "-m", "dall-e-2")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert len(result.stderr) < MAX_ERROR_BODY + 1000


def test_a_corrupt_gzip_body_is_a_bad_response(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script(IMAGES, Reply(body=b"\x1f\x8bnot really gzip", headers={"Content-Encoding": "gzip"}))
    result = gen(fake, "-m", "dall-e-2", "--retries", "2")
    assert result.code == 1 and "the response's gzip body is corrupt" in result.stderr
    assert "Traceback" not in result.stderr and len(fake.requests) == 1
    assert left_behind(tmp_path / "out") == []
