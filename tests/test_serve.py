"""`imggen serve` end to end: the official openai client against a real `imggen serve` process, with
the provider fakes on 127.0.0.1 as the upstream deployments."""

from __future__ import annotations

import base64
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import AZURE_KEY, OPENAI_KEY, run_cli
from fakebedrock import AWS_KEY_ID, AWS_SECRET
from fakegoogle import GEMINI_KEY
from fakeserver import FakeProvider, Reply, content_policy, rate_limited, server_error
from servehelp import MASTER_KEY, RedisServer, Served, deployment, proxy_config
from test_google import service_account  # noqa: F401  (a fixture)

PNG = b"\x89PNG\r\n\x1a\n"
IMAGES = "/v1/images/generations"


@pytest.fixture
def second() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def client(served: Served, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base + "/v1", api_key=key, max_retries=0)


def calls(fake: FakeProvider, path: str = IMAGES) -> int:
    return sum(1 for r in fake.requests if r.path == path)


def openai_deployment(name: str, fake: FakeProvider, **params: Any) -> dict[str, Any]:
    return deployment(name, "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY, **params)


def test_a_litellm_docs_config_works_unchanged_with_the_openai_client(
    fake: FakeProvider, start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_API_KEY_EU", AZURE_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    config = {  # LiteLLM's image-generation proxy example, with our fake as the endpoints
        "model_list": [
            {"model_name": "gpt-image-1", "litellm_params": {
                "model": "azure/gpt-image-1", "api_base": fake.base_url, "api_key": "os.environ/AZURE_API_KEY_EU",
                "api_version": "2025-04-01-preview", "rpm": 6}, "model_info": {"mode": "image_generation"}},
            {"model_name": "dall-e-3", "litellm_params": {
                "model": "openai/dall-e-3", "api_key": "os.environ/OPENAI_API_KEY", "api_base": fake.openai_base}},
        ],
        "litellm_settings": {"drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }  # fmt: skip
    served = start(config)
    api = client(served)
    for model in ("gpt-image-1", "dall-e-3"):
        result = api.images.generate(model=model, prompt="a sea otter", n=1, size="1024x1024")
        assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG)
    raw = api.images.with_raw_response.generate(model="dall-e-3", prompt="a sea otter")
    assert raw.headers["x-litellm-call-id"] and raw.headers["x-litellm-model-id"]
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(0.04)
    assert sorted(m.id for m in api.models.list()) == ["dall-e-3", "gpt-image-1"]
    azure = [r for r in fake.requests if r.path.startswith("/openai/deployments/gpt-image-1/")]
    assert azure and azure[0].headers["api-key"] == AZURE_KEY and azure[0].query["api-version"] == "2025-04-01-preview"


def test_every_provider_works_behind_it(fake: FakeProvider, start: Any, service_account: Path) -> None:  # noqa: F811
    config = proxy_config(
        deployment("nova", "bedrock/amazon.nova-canvas-v1:0", aws_access_key_id=AWS_KEY_ID,
                   aws_secret_access_key=AWS_SECRET, aws_region_name="us-east-1", api_base=fake.base_url),
        deployment("imagen", "vertex_ai/imagen-4.0-generate-001", vertex_credentials=service_account.read_text(),
                   vertex_location="us-central1", api_base=fake.base_url),
        deployment("gemini", "gemini/gemini-2.5-flash-image", api_key=GEMINI_KEY, api_base=fake.base_url + "/v1beta"),
    )  # fmt: skip
    served = start(config, {"NO_GCE_CHECK": "true"})
    api = client(served)
    for model in ("nova", "imagen", "gemini"):
        result = api.images.generate(model=model, prompt="a sea otter")
        assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG), model
    assert any(r.path.endswith("/invoke") for r in fake.requests)
    assert any(r.path.endswith(":predict") for r in fake.requests)
    assert any(r.path.endswith(":generateContent") for r in fake.requests)
    assert AWS_SECRET not in served.stderr() and GEMINI_KEY not in served.stderr()
    assert "PRIVATE KEY" not in served.stderr()  # the inline service-account JSON
    health = httpx.get(served.base + "/health", headers={"api-key": MASTER_KEY}).json()
    assert health["healthy_count"] == 3, health


def test_base_model_gives_an_azure_deployment_its_rules_and_price(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(deployment(
        "dall-e-3", "azure/dall-e-3-test", api_base=fake.base_url, api_key=AZURE_KEY, api_version="2024-02-01",
        base_model="dall-e-3", model_info={"mode": "image_generation"},
    )))  # fmt: skip
    raw = client(served).images.with_raw_response.generate(model="dall-e-3", prompt="an otter", n=2)
    assert len(raw.parse().data) == 2
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(0.088)  # 2 x Azure dall-e-3 at $0.044
    sent = [r for r in fake.requests if r.path.startswith("/openai/deployments/dall-e-3-test/")]
    assert [r.json["n"] for r in sent] == [1, 1]  # dall-e-3 makes one image per request
    assert "base_model" not in served.stderr()


def test_the_azure_route_takes_the_model_from_its_path(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(openai_deployment("dall-e-3", fake)))
    azure = openai.AzureOpenAI(azure_endpoint=served.base, api_key=MASTER_KEY, api_version="2024-02-01",
                               max_retries=0)  # fmt: skip
    result = azure.images.generate(model="dall-e-3", prompt="a sea otter")
    assert result.data[0].b64_json
    reply = served.post({"model": "nonexistent", "prompt": "x"}, path="/openai/deployments/dall-e-3/images/generations")
    assert reply.status_code == 200


def test_model_lookup_by_name_id_alias_and_model_string(fake: FakeProvider, start: Any) -> None:
    config = proxy_config(
        openai_deployment("dall-e-3", fake, model_info={"id": "dalle-east"}),
        router={"model_group_alias": {"dalle": "dall-e-3", "hidden-dalle": {"model": "dall-e-3", "hidden": True}}},
    )
    served = start(config)
    for name in ("dall-e-3", "dalle-east", "dalle", "hidden-dalle", "openai/dall-e-3"):
        reply = served.post({"model": name, "prompt": "x"})
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-litellm-model-id"] == "dalle-east"
    assert [m.id for m in client(served).models.list()] == ["dall-e-3", "dalle"]  # the hidden alias is not listed


def test_a_request_by_deployment_id_goes_there_within_its_rpm(
    fake: FakeProvider, second: FakeProvider, start: Any
) -> None:
    config = proxy_config(openai_deployment("d", fake, rpm=1, model_info={"id": "first"}),
                          openai_deployment("d", second, model_info={"id": "other"}))  # fmt: skip
    served = start(config)
    assert served.post({"model": "first", "prompt": "x"}).headers["x-litellm-model-id"] == "first"
    assert served.post({"model": "first", "prompt": "x"}).status_code == 429
    assert (calls(fake), calls(second)) == (1, 0)


def test_load_is_split_by_rpm_under_simple_shuffle(fake: FakeProvider, second: FakeProvider, start: Any) -> None:
    served = start(proxy_config(openai_deployment("d", fake, rpm=3000), openai_deployment("d", second, rpm=1000)))
    for _ in range(80):
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
    assert calls(fake) + calls(second) == 80
    # 3:1 expects 60 here; 40 or fewer (one in ~760,000) would say the weights are not followed. The
    # odds themselves are checked over many draws below, where bounds can be tight and never flake.
    assert calls(fake) > 40 and calls(second) > 0


@pytest.mark.parametrize("weights", [{"rpm": (3000, 1000)}, {"weight": (3, 1)}])
def test_simple_shuffle_draws_the_first_pick_in_proportion(fake: FakeProvider, weights: dict[str, Any]) -> None:
    """LiteLLM's simple-shuffle: the first deployment tried is drawn with odds in proportion to rpm, or
    to `weight` when no rpm is set. 20,000 draws at 3:1 expect 15,000 firsts; the bounds are ten standard
    deviations (61) wide on each side."""
    from imggen.proxy.config import parse
    from imggen.proxy.router import _weighted_shuffle

    ((key, (heavy, light)),) = weights.items()
    config = parse(
        proxy_config(openai_deployment("d", fake, **{key: heavy}), openai_deployment("d", fake, **{key: light}))
    )
    first = config.deployments[0].id
    orders = [_weighted_shuffle(config.deployments) for _ in range(20_000)]
    assert all(len({d.id for d in order}) == 2 for order in orders)  # a whole order: the other is the fallback
    assert 14_390 <= sum(order[0].id == first for order in orders) <= 15_610


def test_usage_based_routing_evens_out_the_load(fake: FakeProvider, second: FakeProvider, start: Any) -> None:
    config = proxy_config(openai_deployment("d", fake, rpm=100), openai_deployment("d", second, rpm=100),
                          router={"routing_strategy": "usage-based-routing-v2"})  # fmt: skip
    served = start(config)
    for _ in range(20):
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
    assert calls(fake) == calls(second) == 10


def test_rpm_is_a_real_limit_and_429_says_when_to_retry(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(openai_deployment("d", fake, rpm=2)))
    assert [served.post({"model": "d", "prompt": "x"}).status_code for _ in range(2)] == [200, 200]
    started = time.monotonic()
    refused = served.post({"model": "d", "prompt": "x"})
    assert time.monotonic() - started < 5  # a minute's wait is beyond the queue: refused at once
    assert refused.status_code == 429
    assert 50 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert calls(fake) == 2
    with pytest.raises(openai.RateLimitError):
        client(served).images.generate(model="d", prompt="x")


def test_a_failing_deployment_is_cooled_down_and_skipped(fake: FakeProvider, second: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, *[server_error() for _ in range(20)])
    config = proxy_config(openai_deployment("d", fake), openai_deployment("d", second),
                          router={"num_retries": 1, "allowed_fails": 0, "cooldown_time": 60})  # fmt: skip
    served = start(config)
    for _ in range(12):
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
    assert calls(fake) <= 1  # failed once at most, then cooled down for the rest
    assert calls(second) == 12


def test_a_failing_request_costs_1_plus_num_retries_calls_then_fallbacks(
    fake: FakeProvider, second: FakeProvider, start: Any
) -> None:
    fake.script(IMAGES, *[server_error() for _ in range(10)])
    config = proxy_config(openai_deployment("primary", fake), openai_deployment("backup", second),
                          router={"num_retries": 2, "fallbacks": [{"primary": ["backup"]}]})  # fmt: skip
    served = start(config)
    reply = served.post({"model": "primary", "prompt": "x"})
    assert reply.status_code == 200
    assert (calls(fake), calls(second)) == (3, 1)


def test_without_fallbacks_the_last_failure_is_a_502_envelope(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, *[server_error() for _ in range(10)])
    served = start(proxy_config(openai_deployment("d", fake), router={"num_retries": 1}))
    reply = served.post({"model": "d", "prompt": "x"})
    assert reply.status_code == 502
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert calls(fake) == 2


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        ({"model": "d", "prompt": "x"}, None, 401, "invalid_api_key"),
        ({"model": "d", "prompt": "x"}, "sk-wrong-key-000000", 401, "invalid_api_key"),
        ({"model": "nope", "prompt": "x"}, MASTER_KEY, 400, "model_not_found"),
        ({"model": "d", "prompt": ""}, MASTER_KEY, 400, None),
        ({"model": "d", "prompt": "x", "n": 11}, MASTER_KEY, 400, None),
        ({"model": "d", "prompt": "x", "style": "baroque"}, MASTER_KEY, 400, None),
    ],
)
def test_client_errors_use_openais_envelope(
    fake: FakeProvider, start: Any, body: dict[str, Any], key: str | None, status: int, code: str | None
) -> None:
    served = start(proxy_config(openai_deployment("d", fake)))
    reply = served.post(body, key=key)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["code"] == code or code is None
    assert calls(fake) == 0


def test_other_keys_headers_and_routes(fake: FakeProvider, start: Any) -> None:
    served = start(proxy_config(openai_deployment("d", fake)))
    for header in ("x-litellm-api-key", "api-key"):
        assert httpx.post(served.base + IMAGES, json={"model": "d", "prompt": "x"},
                          headers={header: MASTER_KEY}).status_code == 200  # fmt: skip
    assert served.post({"model": "d", "prompt": "x"}, path="/images/generations").status_code == 200
    not_json = httpx.post(served.base + IMAGES, content=b"{not json",
                          headers={"api-key": MASTER_KEY, "content-type": "application/json"})  # fmt: skip
    assert not_json.status_code == 400 and not_json.json()["error"]["message"]
    missing = httpx.get(served.base + "/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(served.base + "/health/readiness").json()["status"] == "healthy"
    assert httpx.get(served.base + "/v1/models").status_code == 401


def test_upstream_refusals_and_rate_limits_reach_the_client_as_such(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, content_policy(), rate_limited("7"))
    served = start(proxy_config(openai_deployment("d", fake), router={"num_retries": 0, "cooldown_time": 1}))
    api = client(served)
    with pytest.raises(openai.BadRequestError) as refused:
        api.images.generate(model="d", prompt="x")
    assert refused.value.code == "content_policy_violation"
    limited = served.post({"model": "d", "prompt": "x"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) == 7
    assert calls(fake) == 2  # a refusal is not retried


def test_health_checks_credentials_without_a_billed_call(fake: FakeProvider, start: Any) -> None:
    config = proxy_config(openai_deployment("good", fake),
                          deployment("keyless", "azure/dall-e-3", api_base=fake.base_url))  # fmt: skip
    served = start(config)
    health = httpx.get(served.base + "/health", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
    assert (health["healthy_count"], health["unhealthy_count"]) == (1, 1)
    assert "key" in health["unhealthy_endpoints"][0]["error"].lower()
    assert calls(fake) == 0
    probed = httpx.get(served.base + "/health?probe=1", headers={"api-key": MASTER_KEY}, timeout=30).json()
    assert probed["healthy_count"] == 1 and calls(fake) == 1


def test_health_names_a_vertex_credentials_file_that_does_not_load(
    fake: FakeProvider, start: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account", "project_id": "p"}')
    imagen = deployment("imagen", "vertex_ai/imagen-4.0-generate-001", vertex_credentials=str(broken),
                        vertex_project="p", api_base=fake.base_url)  # fmt: skip
    config = proxy_config(imagen)
    served = start(config, {"NO_GCE_CHECK": "true"})
    health = httpx.get(served.base + "/health", headers={"api-key": MASTER_KEY}).json()
    assert health["unhealthy_count"] == 1 and "broken.json" in health["unhealthy_endpoints"][0]["error"]
    assert not fake.requests


def test_an_unset_environment_reference_is_refused_at_start_with_strict(fake: FakeProvider, tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    config.write_text(
        "model_list:\n  - model_name: d\n    litellm_params:\n      model: openai/dall-e-3\n"
        "      api_key: os.environ/IMGGEN_TEST_UNSET_KEY\n"
    )
    result = run_cli("serve", "--config", str(config), "--port", "1", "--strict", timeout=30)
    assert result.code == 3
    assert "model_list[0] (d)" in result.stderr and "IMGGEN_TEST_UNSET_KEY" in result.stderr


def test_unused_keys_are_warnings_and_keys_are_never_logged(fake: FakeProvider, start: Any) -> None:
    config = proxy_config(openai_deployment("d", fake, tpm=1000), litellm_settings={"success_callback": ["x"]})
    served = start(config)
    assert served.post({"model": "d", "prompt": "x"}).status_code == 200
    served.post({"model": "d", "prompt": "x"}, key="sk-someone-elses-key-999")
    assert served.stop() == -signal.SIGTERM  # drained, then ends by the signal: 143 in a shell
    log = served.stderr()
    assert "not used by imggen serve" in log and "litellm_params.tpm" in log
    assert "litellm_settings.success_callback" in log
    assert "status=200" in log and "status=401" in log and "model=d" in log
    for secret in (MASTER_KEY, OPENAI_KEY, "sk-someone-elses-key-999"):
        assert secret not in log


def test_sigterm_drains_requests_in_flight(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, Reply(delay=1.5))
    served = start(proxy_config(openai_deployment("d", fake)))
    answers: list[int] = []
    request = threading.Thread(target=lambda: answers.append(served.post({"model": "d", "prompt": "x"}).status_code))
    request.start()
    time.sleep(0.5)
    assert served.stop() == -signal.SIGTERM
    request.join()
    assert answers == [200]


def test_two_instances_hold_one_rpm_limit_through_redis(fake: FakeProvider, start: Any, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    try:
        router = {"redis_host": "127.0.0.1", "redis_port": redis.port, "redis_password": "os.environ/REDIS_PW"}
        config = proxy_config(openai_deployment("d", fake, rpm=3, model_info={"id": "shared"}), router=router)
        env = {"REDIS_PW": "redis-test-password-1234"}
        one, two = start(config, env), start(config, env)
        statuses = [s.post({"model": "d", "prompt": "x"}).status_code for s in (one, two, one, two)]
        assert sorted(statuses) == [200, 200, 200, 429]
        assert calls(fake) == 3
        assert "redis-test-password-1234" not in one.stderr() + two.stderr()
    finally:
        redis.stop()


def test_an_upstream_timeout_is_a_504(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, Reply(delay=3))
    served = start(proxy_config(openai_deployment("d", fake, timeout=0.5)))
    reply = served.post({"model": "d", "prompt": "x"})
    assert reply.status_code == 504 and reply.json()["error"]["type"] == "api_error"


def test_two_instances_share_cooldowns_through_redis(
    fake: FakeProvider, second: FakeProvider, start: Any, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)
    try:
        fake.script(IMAGES, *[server_error() for _ in range(20)])
        router = {"redis_host": "127.0.0.1", "redis_port": redis.port, "redis_password": "redis-test-password-1234",
                  "num_retries": 1, "allowed_fails": 0, "cooldown_time": 60}  # fmt: skip
        config = proxy_config(
            openai_deployment("d", fake, model_info={"id": "failing"}),
            openai_deployment("d", second, model_info={"id": "working"}),
            router=router,
        )
        one, two = start(config), start(config)
        while calls(fake) == 0:  # until instance one has met the failing deployment
            assert one.post({"model": "d", "prompt": "x"}).status_code == 200
        for _ in range(8):
            assert two.post({"model": "d", "prompt": "x"}).status_code == 200
        assert calls(fake) == 1  # instance two skipped it: the cooldown is shared
    finally:
        redis.stop()


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    config.write_text("model_list:\n  - model_name: d\n    litellm_params:\n      model: placeholder\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve", "--config", str(config), "--port", str(taken.getsockname()[1]), timeout=30)
    assert result.code == 2 and "cannot listen on 127.0.0.1" in result.stderr
