"""`imggen serve` against hostile requests and configs (issue 10, items 8, 22-25): bounded bodies,
cross-site requests, wrong types in requests and in the config, and the port it listens on.

Two servers serve every request test of this module (one with a master key, one without)."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from conftest import OPENAI_KEY, run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakeserver import FakeProvider
from servehelp import MASTER_KEY, Served, deployment, free_port, proxy_config

IMAGES = "/v1/images/generations"
APP_ORIGIN = "http://app.example:3000"  # the one origin the keyless server allows
JSON = {"content-type": "application/json"}
AUTH = {"authorization": f"Bearer {MASTER_KEY}", **JSON}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def _env(tmp: Path) -> dict[str, str]:
    """What the autouse `isolated` fixture gives a test, for servers that outlive one test."""
    return {"HOME": str(tmp), "IMGGEN_CONFIG_DIR": str(tmp / "config"), "NO_PROXY": "127.0.0.1,localhost",
            "AWS_EC2_METADATA_DISABLED": "true", "NO_GCE_CHECK": "true"}  # fmt: skip


def _openai(name: str, fake: FakeProvider, **params: Any) -> dict[str, Any]:
    return deployment(name, "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY, **params)


@pytest.fixture(scope="module")
def keyed(upstream: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A master key, a 0.25 MiB body limit, and one deployment of each way of treating other fields."""
    tmp = tmp_path_factory.mktemp("keyed")
    config = proxy_config(
        _openai("d", upstream),
        _openai("dropping", upstream, drop_params=True),
        deployment("nova", "bedrock/amazon.nova-canvas-v1:0", aws_access_key_id=AWS_KEY_ID,
                   aws_secret_access_key=AWS_SECRET, aws_region_name="us-east-1", api_base=upstream.base_url),
        general_settings={"master_key": MASTER_KEY, "max_request_size_mb": 0.25},
    )  # fmt: skip
    served = Served(tmp, config, _env(tmp))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def keyless(upstream: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """No master key (anyone on the machine may call it), the default body limit, one allowed origin."""
    tmp = tmp_path_factory.mktemp("keyless")
    config = {"model_list": [_openai("d", upstream)], "litellm_settings": {"drop_params": True}}
    served = Served(tmp, config, _env(tmp), args=("--allow-origin", APP_ORIGIN))
    yield served
    served.stop()


@pytest.fixture
def fake(upstream: FakeProvider) -> FakeProvider:
    """The shared upstream, with only this test's requests recorded."""
    upstream.requests.clear()
    return upstream


def sent(fake: FakeProvider) -> list[Any]:
    return [r.json for r in fake.requests if r.method == "POST"]


def refused(reply: httpx.Response, status: int, code: str | None = None, param: str | None = None) -> str:
    """Asserts the status and OpenAI's envelope; returns the message."""
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    assert code is None or error["code"] == code, error
    assert param is None or error["param"] == param, error
    assert "internal error" not in error["message"]
    return str(error["message"])


def post(served: Served, body: bytes | dict[str, Any], headers: dict[str, str] = AUTH) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(served.base + IMAGES, content=content, headers=headers, timeout=30)


# 22: bounded bodies, and only the fields a provider takes


def _raw_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    match = re.search(rb"content-length: *(\d+)", data.split(b"\r\n\r\n")[0], re.IGNORECASE)
    return int(match.group(1)) if match else 0


def _head(served: Served, more: str) -> bytes:
    return (f"POST {IMAGES} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
            f"Content-Type: application/json\r\n{more}\r\n").encode()  # fmt: skip


def _announced(served: Served, length: int) -> tuple[int, dict[str, Any]]:
    """The answer to a request that announces `length` bytes of body and sends only its start."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(_head(served, f"Content-Length: {length}\r\n") + b'{"model": "d", "prompt": "')
        return _raw_response(sock)


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_a_byte_is_read(
    keyed: Served, fake: FakeProvider
) -> None:
    status, body = _announced(keyed, 1024**3)  # answered while 1 GiB is still to come
    assert status == 413
    assert body["error"]["code"] == "request_too_large" and "0.25 MiB" in body["error"]["message"]
    assert not sent(fake)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(keyed: Served, fake: FakeProvider) -> None:
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    total = 0
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=30) as sock:
        sock.sendall(_head(keyed, "Transfer-Encoding: chunked\r\n") + b"40\r\n" + b" " * 64 + b"\r\n")
        while total < 256 * 1024 * 1024 and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed between select and send
                break
            total += 0x4000
        status, body = _raw_response(sock)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert total < 256 * 1024 * 1024  # it answered long before the client was done
    assert not sent(fake)


def test_a_body_under_the_limit_passes_and_unknown_fields_are_dropped_with_drop_params(
    keyed: Served, fake: FakeProvider
) -> None:
    body = {"model": "dropping", "prompt": "an otter", "padding": "x" * 200_000, "vendor_flag": True}
    assert post(keyed, body).status_code == 200
    assert sent(fake) and not {"padding", "vendor_flag"} & set(sent(fake)[0])


def test_an_unknown_field_reaches_an_openai_compatible_server_without_drop_params(
    keyed: Served, fake: FakeProvider
) -> None:
    # Issue 14 item 5: a server on the user's api_base may take any field; elsewhere (Azure) it is
    # refused, naming the field (test_serve_answers.py).
    assert post(keyed, {"model": "d", "prompt": "x", "vendor_flag": 1}).status_code == 200
    assert sent(fake)[0]["vendor_flag"] == 1


def test_openais_own_fields_reach_openai_and_azure_only(keyed: Served, fake: FakeProvider) -> None:
    api = openai.OpenAI(base_url=keyed.base + "/v1", api_key=MASTER_KEY, max_retries=0)
    api.images.generate(model="d", prompt="an otter", output_format="webp", moderation="low")
    assert sent(fake)[0]["output_format"] == "webp" and sent(fake)[0]["moderation"] == "low"
    refused(post(keyed, {"model": "nova", "prompt": "x", "background": "transparent"}), 400,
            "unsupported_parameter", "background")  # fmt: skip
    assert len(sent(fake)) == 1


def test_bedrock_takes_other_fields_as_provider_parameters(keyed: Served, fake: FakeProvider) -> None:
    reply = post(keyed, {"model": "nova", "prompt": "an otter", "cfgScale": 7.5})
    assert reply.status_code == 200, reply.text
    assert sent(fake)[0]["imageGenerationConfig"]["cfgScale"] == 7.5
    message = refused(post(keyed, {"model": "nova", "prompt": "x", "vendor_flag": 1}), 400, "unsupported_parameter")
    assert "vendor_flag" in message and len(sent(fake)) == 1  # a parameter Nova Canvas does not have


def test_streaming_is_refused_not_ignored(keyed: Served, fake: FakeProvider) -> None:
    refused(post(keyed, {"model": "d", "prompt": "x", "stream": True}), 400, "unsupported_parameter", "stream")
    assert not sent(fake)


def test_the_default_limit_is_one_mib(keyless: Served, fake: FakeProvider) -> None:
    status, body = _announced(keyless, 1024 * 1024 + 1)
    assert status == 413 and "1 MiB" in body["error"]["message"]
    exactly = json.dumps({"model": "d", "prompt": "x", "padding": ""}).encode()
    exactly = exactly.replace(b'""', b'"' + b"x" * (1024 * 1024 - len(exactly)) + b'"')
    assert len(exactly) == 1024 * 1024
    assert post(keyless, exactly, JSON).status_code == 200
    assert "padding" not in sent(fake)[0]


# 23: cross-site requests cannot spend money


FORMS = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]  # what a page posts cross-site


@pytest.mark.parametrize("content_type", [None, *FORMS])
def test_json_routes_take_only_json(
    keyed: Served, keyless: Served, fake: FakeProvider, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"model": "d", "prompt": "x"}).encode()
    refused(post(keyed, body, {**headers, "authorization": AUTH["authorization"]}), 415, "unsupported_media_type")
    refused(post(keyless, body, headers), 415, "unsupported_media_type")
    assert not sent(fake)
    assert post(keyless, body, {"content-type": "application/json; charset=utf-8"}).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null", "http://app.example:3001"])
def test_another_origin_is_refused_with_and_without_a_master_key(
    keyed: Served, keyless: Served, fake: FakeProvider, origin: str
) -> None:
    body = {"model": "d", "prompt": "x"}
    for served, headers in ((keyed, AUTH), (keyless, JSON)):
        reply = post(served, body, {**headers, "origin": origin})
        assert "access-control-allow-origin" not in reply.headers
        assert "--allow-origin" in refused(reply, 403, "origin_not_allowed")
        preflight = httpx.options(
            served.base + IMAGES, headers={"origin": origin, "access-control-request-method": "POST"}
        )
        assert preflight.status_code == 403
    assert not sent(fake)


def test_a_cross_site_request_without_origin_cannot_probe(keyless: Served, fake: FakeProvider) -> None:
    # An <img src=".../health?probe=1"> on another site: no Origin, but the browser says cross-site.
    probe = httpx.get(keyless.base + "/health?probe=1", headers={"sec-fetch-site": "cross-site"})
    refused(probe, 403, "origin_not_allowed")
    assert not fake.requests
    assert httpx.get(keyless.base + "/health", headers={"sec-fetch-site": "none"}).status_code == 200


def test_the_servers_own_origin_and_an_allowed_one_work(keyless: Served, fake: FakeProvider) -> None:
    own = post(keyless, {"model": "d", "prompt": "x"}, {**JSON, "origin": keyless.base})
    assert own.status_code == 200
    allowed = post(keyless, {"model": "d", "prompt": "x"}, {**JSON, "origin": APP_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-litellm-model-id" in allowed.headers["access-control-expose-headers"]
    preflight = httpx.options(keyless.base + IMAGES, headers={
        "origin": APP_ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os"})  # fmt: skip
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-stainless-os" in preflight.headers["access-control-allow-headers"]
    assert len(sent(fake)) == 2


# 24: wrong types, NaN, lone surrogates and deep nesting in a request are a 400


DEEP = '{"model": "d", "prompt": "x", "extra": ' + "[" * 70 + "]" * 70 + "}"


@pytest.mark.parametrize(
    ("raw", "param", "says"),
    [
        ('{"model": "d", "prompt": "x", "n": "2"}', "n", "integer"),
        ('{"model": "d", "prompt": "x", "n": 2.5}', "n", "integer"),
        ('{"model": "d", "prompt": "x", "n": 0}', "n", "1 to 10"),
        ('{"model": "d", "prompt": "x", "n": 11}', "n", "1 to 10"),
        ('{"model": "d", "prompt": "x", "n": true}', "n", "integer"),
        ('{"model": "d", "prompt": "x", "size": 5}', "size", "string"),
        ('{"model": "d", "prompt": ["x"]}', "prompt", "string"),
        ('{"model": "d", "prompt": "x", "quality": {}}', "quality", "string"),
        ('{"model": "d", "prompt": "x", "seed": "7"}', "seed", "integer"),
        ('{"model": "d", "prompt": "x", "user": 12}', "user", "string"),
        ('{"model": ["d"], "prompt": "x"}', "model", "string"),
        ('{"model": "d", "prompt": "x", "output_compression": "high"}', "output_compression", "integer"),
        ('{"model": "d", "prompt": "x", "n": NaN}', None, "NaN"),
        ('{"model": "d", "prompt": "x", "seed": Infinity}', None, "Infinity"),
        ('{"model": "d", "prompt": "x", "seed": -Infinity}', None, "Infinity"),
        ('{"model": "d", "prompt": "\\ud800 an otter"}', None, "surrogate"),
        ('{"model": "d", "prompt": "x", "\\udfff": 1}', None, "surrogate"),
        (DEEP, None, "64 levels"),
        ('{"model": "d", "prompt": "x", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", None, "64 levels"),
        ('["model", "d"]', None, "JSON object"),
    ],
)
def test_bad_request_values_are_a_400_not_an_internal_error(
    keyed: Served, fake: FakeProvider, raw: str, param: str | None, says: str
) -> None:
    message = refused(post(keyed, raw.encode()), 400, param=param)
    assert says in message
    assert not sent(fake)


@pytest.mark.parametrize("raw", [b'{"model": "d", "prompt": "\xff"}', b'{"model": "d", "prompt": "\xed\xa0\x80"}'])
def test_invalid_utf8_and_raw_surrogates_are_a_400(keyed: Served, fake: FakeProvider, raw: bytes) -> None:
    refused(post(keyed, raw), 400)
    assert not sent(fake)


def test_64_levels_are_allowed(keyed: Served, fake: FakeProvider) -> None:
    nested = '{"model": "dropping", "prompt": "x", "extra": ' + "[" * 63 + "]" * 63 + "}"  # 1 + 63 levels
    assert post(keyed, nested.encode()).status_code == 200
    assert "internal error" not in keyed.stderr()


# 24 and 8: wrong values in the proxy config stop the start-up, naming the entry and key


def _model(**params: Any) -> dict[str, Any]:
    return {"model_name": "d", "litellm_params": {"model": "placeholder", **params}}


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"model_list": [_model(rpm="fast")]}, "model_list[0] (d): litellm_params.rpm"),
        ({"model_list": [_model(rpm=0)]}, "model_list[0] (d): litellm_params.rpm"),
        ({"model_list": [_model(timeout=-1)]}, "model_list[0] (d): litellm_params.timeout"),
        ({"model_list": [_model(weight=".nan")]}, "model_list[0] (d): litellm_params.weight"),
        ({"model_list": [_model(drop_params="maybe")]}, "model_list[0] (d): litellm_params.drop_params"),
        ({"model_list": [{"model_name": "d", "litellm_params": ["model", "x"]}]}, "model_list[0] (d): litellm_params"),
        ({"model_list": [{**_model(), "model_info": 3}]}, "model_list[0] (d): model_info"),
        ({"model_list": [_model()], "router_settings": {"num_retries": "many"}}, "router_settings.num_retries"),
        ({"model_list": [_model()], "router_settings": {"num_retries": 1000}}, "router_settings.num_retries"),
        ({"model_list": [_model()], "router_settings": {"timeout": -1}}, "router_settings.timeout"),
        ({"model_list": [_model()], "router_settings": {"cooldown_time": "nan"}}, "router_settings.cooldown_time"),
        ({"model_list": [_model()], "router_settings": {"allowed_fails": 1.5}}, "router_settings.allowed_fails"),
        ({"model_list": [_model()], "router_settings": ["num_retries", 2]}, "router_settings must be a mapping"),
        ({"model_list": [_model()], "router_settings": {"fallbacks": ["d"]}}, "router_settings.fallbacks"),
        ({"model_list": [_model()], "router_settings": {"model_group_alias": ["d"]}}, "model_group_alias"),
        (
            {"model_list": [_model()], "router_settings": {"redis_host": "127.0.0.1", "redis_port": 70000}},
            "router_settings.redis_port",
        ),
        (
            {"model_list": [_model()], "general_settings": {"max_request_size_mb": "lots"}},
            "general_settings.max_request_size_mb",
        ),
        (
            {"model_list": [_model()], "general_settings": {"max_request_size_mb": float("inf")}},
            "general_settings.max_request_size_mb",
        ),
    ],
)
def test_wrong_values_in_the_config_are_exit_3_naming_the_key(
    tmp_path: Path, config: dict[str, Any], names: str
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config).replace("'.nan'", ".nan"))
    result = run_cli("serve", "--config", str(path), "--port", str(free_port()), timeout=30)
    assert result.code == 3, result.stderr
    assert names in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_numbers_from_environment_references_are_read_as_numbers(fake: FakeProvider, tmp_path: Path) -> None:
    config = proxy_config(_openai("d", fake, rpm="os.environ/IMGGEN_TEST_RPM"),
                          router={"num_retries": "os.environ/IMGGEN_TEST_RETRIES"})  # fmt: skip
    served = Served(tmp_path, config, {"IMGGEN_TEST_RPM": "1", "IMGGEN_TEST_RETRIES": "0"})
    try:
        assert [served.post({"model": "d", "prompt": "x"}).status_code for _ in range(2)] == [200, 429]
    finally:
        served.stop()


# 25: the port, and the address announced


@pytest.mark.parametrize("port", ["0", "65536", "-1", "100000"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump({"model_list": [_model()]}))
    result = run_cli("serve", "--config", str(path), f"--port={port}", timeout=30)
    assert result.code == 2 and f"--port {port} is out of range" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_announced_address_is_the_one_listening(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump({"model_list": [_model()]}))
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggen", "serve", "--config", str(path), "--host", "localhost", "--port", str(port)],
        env=os.environ.copy(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "imggen serve: http" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        announced = re.search(r"imggen serve: (http://\S+) ", log.read_text())
        assert announced, log.read_text()
        url = announced.group(1)
        assert url in (f"http://127.0.0.1:{port}", f"http://[::1]:{port}")
        while time.monotonic() < deadline:
            try:
                assert httpx.get(url + "/health/liveliness", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("nothing answered at the announced address")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_an_allow_origin_that_is_not_an_origin_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump({"model_list": [_model()]}))
    for value in ("*", "app.example", "http://app.example/path", "ftp://app.example"):
        result = run_cli("serve", "--config", str(path), "--allow-origin", value, "--port", str(free_port()))
        assert result.code == 2 and "--allow-origin" in result.stderr and "Traceback" not in result.stderr
