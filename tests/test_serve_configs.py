"""Configs that LiteLLM starts, start (issue 14, items 6-9): LiteLLM's own example configs, entries
that are not image models, unset `os.environ/` references, Redis that goes away, and LiteLLM's
spellings of the settings imggen reads. Real `imggen serve` processes, a real redis-server, the
provider fakes on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from conftest import OPENAI_KEY, run_cli
from fakeserver import FakeProvider, Reply, content_policy, server_error
from imggen.proxy.config import parse
from servehelp import MASTER_KEY, Served, deployment, free_port, proxy_config

CONFIGS = Path(__file__).parent / "litellm_configs"
EXAMPLES = sorted(CONFIGS.glob("*.yaml"))
# LiteLLM's proxy does not start on these either: load_config reads model["litellm_params"] of every
# entry (litellm/proxy/proxy_server.py), and this entry has none (KeyError).
LITELLM_REFUSES = {"langfuse_config.yaml": "model_list[0] needs model_name and litellm_params"}
# Refused because what it names is not there: its database_url is a PostgreSQL server on localhost:5432,
# and imggen opens the database (virtual keys, spend) before it listens, as LiteLLM's proxy connects
# its database at start-up.
NOT_THERE = {"reject_clientside_metadata_tags_config.yaml": "cannot open the database"}
# Placeholders a docs page leaves for the reader: sent to 127.0.0.1 instead, so no test looks a name up.
PLACEHOLDER_HOSTS = {"<your redis host>": "127.0.0.1"}
DUMMY = "dummy-value-0123456789"
REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
IMAGES = "/v1/images/generations"


def dummy_env(text: str) -> dict[str, str]:
    """Every variable a config refers to, set to a harmless value of the kind its name says."""
    env = {}
    for name in set(REF.findall(text)):
        if re.search("BASE|URL|ENDPOINT", name):
            env[name] = "http://127.0.0.1:9/"
        elif "PORT" in name:
            env[name] = str(free_port())
        else:
            env[name] = DUMMY
    return env


def start_examples(tmp: Path, paths: list[Path], env_for: Any, batch: int = 6) -> dict[str, tuple[bool, str]]:
    """`imggen serve` on each config, a few at a time: (came up, stderr) by file name. Up means it
    answered /health/liveliness; a process that exits first did not start."""
    results: dict[str, tuple[bool, str]] = {}
    for start in range(0, len(paths), batch):
        running = []
        for path in paths[start : start + batch]:
            text = path.read_text(encoding="utf-8")
            for placeholder, host in PLACEHOLDER_HOSTS.items():
                text = text.replace(placeholder, host)
            copy = tmp / path.name
            copy.write_text(text, encoding="utf-8")
            port, log = free_port(), tmp / f"{path.name}.log"
            while port in {r[2] for r in running}:  # two servers of a batch never get one port
                port = free_port()
            env = {k: v for k, v in os.environ.items() if k not in set(REF.findall(text))} | env_for(text)
            env["XDG_DATA_HOME"] = str(tmp / f"{path.name}.data")  # its own SQLite file for keys and spend
            proc = subprocess.Popen(
                [sys.executable, "-m", "imggen", "serve", "--config", str(copy), "--port", str(port)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
            )  # fmt: skip
            running.append((path.name, proc, port, log))
        for name, proc, port, log in running:
            up, deadline = False, time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None and not up:
                try:
                    up = httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200
                except httpx.TransportError:
                    time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            results[name] = (up, log.read_text(errors="replace"))
    return results


def test_litellms_example_configs_start(tmp_path: Path) -> None:
    """Each of LiteLLM's example configs (tests/litellm_configs/README.md) starts, with the variables
    it names set to dummies; the one LiteLLM itself refuses is refused, naming the entry."""
    assert len(EXAMPLES) >= 35
    results = start_examples(tmp_path, EXAMPLES, dummy_env)
    refused = LITELLM_REFUSES | NOT_THERE
    failed = {name: err[-600:] for name, (up, err) in results.items() if not up and name not in refused}
    assert failed == {}
    for name, message in refused.items():
        assert not results[name][0] and message in results[name][1]
    for name, (_, err) in results.items():
        assert "Traceback" not in err, name
        assert DUMMY not in err, name  # a value from the environment is never echoed (they could be keys)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_litellms_example_configs_read_with_every_variable_unset(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset variables disable the deployments that need them; the rest of the config still reads.
    (Only the master key must be set: serving without the key a config asks for would be open.)"""
    import yaml

    text = path.read_text(encoding="utf-8")
    for name in set(REF.findall(text)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-dummy-master-0123456789")
    if path.name in LITELLM_REFUSES:
        with pytest.raises(Exception, match=re.escape(LITELLM_REFUSES[path.name])):
            parse(yaml.safe_load(text), path.name)
        return
    config = parse(yaml.safe_load(text), path.name)
    for off in config.disabled:
        assert off.variables and all(f"os.environ/{v}" in off.reason for v in off.variables)
    assert sum(1 for w in config.warnings if w.startswith("not set:")) <= 1


# --- items 6 and 7: entries that are not image models; unset variables ---------------------------


@pytest.fixture
def second() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def dalle(name: str, fake: FakeProvider, **params: Any) -> dict[str, Any]:
    return deployment(name, "openai/dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY, **params)


def gpt_image(name: str, fake: FakeProvider, **params: Any) -> dict[str, Any]:
    return deployment(name, "openai/gpt-image-2", api_base=fake.openai_base, api_key=OPENAI_KEY, **params)


def get(served: Served, path: str) -> httpx.Response:
    return httpx.get(served.base + path, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10)


def calls(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/images/generations"))


def test_chat_entries_are_skipped_and_unset_variables_disable_only_their_deployments(
    fake: FakeProvider, start: Any
) -> None:
    config = proxy_config(
        dalle("images", fake),
        deployment("chat", "anthropic/claude-sonnet-4-5", api_key="os.environ/IMGGEN_TEST_UNSET_ANTHROPIC"),
        deployment("embed", "openai/text-embedding-3-small", api_key=OPENAI_KEY),
        deployment("bare-chat", "gpt-4o-mini"),
        deployment("by-mode", "openai/my-server-model", model_info={"mode": "chat"}),
        deployment("off", "openai/gpt-image-2", api_base=fake.openai_base, api_key="os.environ/IMGGEN_TEST_UNSET_A"),
        deployment("off", "azure/images", api_base="os.environ/IMGGEN_TEST_UNSET_B", api_key="k-0123456789abcdef"),
        dalle("half", fake),
        deployment("half", "openai/dall-e-3", api_base=fake.openai_base, api_key="os.environ/IMGGEN_TEST_UNSET_A"),
    )
    served = start(config)
    err = served.stderr()
    skipped = [line for line in err.splitlines() if "not image models" in line]
    assert len(skipped) == 1 and all(n in skipped[0] for n in ("chat", "embed", "bare-chat", "by-mode"))
    unset = [line for line in err.splitlines() if "not set" in line]
    assert len(unset) == 1 and "IMGGEN_TEST_UNSET_A" in unset[0] and "IMGGEN_TEST_UNSET_B" in unset[0]
    assert "IMGGEN_TEST_UNSET_ANTHROPIC" not in err  # a skipped entry's variables are none of imggen's business

    models = {m["id"] for m in get(served, "/v1/models").json()["data"]}
    assert models == {"images", "off", "half"}
    health = get(served, "/health").json()
    assert {e["model_name"] for e in health["healthy_endpoints"]} == {"images", "half"}
    assert sorted(e["model_name"] for e in health["unhealthy_endpoints"]) == ["half", "off", "off"]
    assert all("not set" in e["error"] for e in health["unhealthy_endpoints"])

    assert served.post({"model": "images", "prompt": "x"}).status_code == 200
    for _ in range(3):  # only the enabled one of "half" is ever chosen
        assert served.post({"model": "half", "prompt": "x"}).status_code == 200
    answer = served.post({"model": "off", "prompt": "x"})
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "deployment_disabled" and "os.environ/IMGGEN_TEST_UNSET_A" in error["message"]
    assert "os.environ/IMGGEN_TEST_UNSET_B" in error["message"]
    assert served.post({"model": "chat", "prompt": "x"}).status_code == 400
    assert calls(fake) == 4


def test_bare_names_are_read_as_litellm_reads_them(fake: FakeProvider) -> None:
    config = parse(proxy_config(
        deployment("a", "gpt-image-1", api_base=fake.openai_base, api_key=OPENAI_KEY),
        deployment("b", "dall-e-3", api_base=fake.openai_base, api_key=OPENAI_KEY),
        deployment("c", "gpt-3.5-turbo"), deployment("d", "o3-mini"),
    ))  # fmt: skip
    assert [(d.group, d.settings.model.name) for d in config.deployments] == [
        ("a", "openai/gpt-image-1"), ("b", "openai/dall-e-3"),
    ]  # fmt: skip
    assert [s.group for s in config.skipped] == ["c", "d"]


def test_strict_refuses_redis_that_cannot_be_reached(fake: FakeProvider, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(proxy_config(dalle("d", fake), router={"redis_host": "127.0.0.1",
                                                                          "redis_port": free_port()})))  # fmt: skip
    result = run_cli("serve", "--config", str(path), "--port", str(free_port()), "--strict", timeout=30)
    assert result.code == 3 and "cannot reach Redis" in result.stderr and "Traceback" not in result.stderr


# --- item 8: Redis unreachable at start or later ---------------------------------------------------


class Redis:
    """redis-server on a fixed port, so it can be killed and started again where the proxy looks."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server; .ci/run does this)"
        self.binary, self.tmp, self.port = binary, tmp, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def readiness(served: Served) -> dict[str, Any]:
    answer = httpx.get(served.base + "/health/readiness", timeout=10)
    assert answer.status_code == 200
    return dict(answer.json())


def wait_for(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_redis_down_at_start_falls_back_to_memory_and_reconnects(
    fake: FakeProvider, start: Any, tmp_path: Path
) -> None:
    redis = Redis(tmp_path)  # not started yet
    try:
        config = proxy_config(dalle("d", fake, rpm=2), router={"redis_host": "127.0.0.1", "redis_port": redis.port})
        served = start(config)
        assert readiness(served)["status"] == "degraded"
        statuses = [served.post({"model": "d", "prompt": "x"}).status_code for _ in range(2)]
        assert statuses == [200, 200]  # the rpm limit holds in this instance's memory meanwhile
        assert calls(fake) == 2
        redis.start()
        assert wait_for(lambda: readiness(served)["status"] == "healthy")
        err = served.stderr()
        assert err.count("cannot reach Redis") == 1 and "answers again" in err and "Traceback" not in err
    finally:
        redis.kill()


def test_redis_lost_while_serving_is_one_warning_and_never_a_traceback(
    fake: FakeProvider, start: Any, tmp_path: Path
) -> None:
    redis = Redis(tmp_path).start()
    try:
        served = start(proxy_config(dalle("d", fake), router={"redis_host": "127.0.0.1", "redis_port": redis.port}))
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
        assert readiness(served)["status"] == "healthy"
        redis.kill()
        answers = [served.post({"model": "d", "prompt": "x"}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        body = readiness(served)
        assert body["status"] == "degraded" and body["cache"] == "redis"
        redis.start()
        assert wait_for(lambda: readiness(served)["status"] == "healthy")
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
        err = served.stderr()
        assert err.count("cannot reach Redis") == 1 and "Traceback" not in err
    finally:
        redis.kill()


# --- item 9: LiteLLM's spellings -------------------------------------------------------------------


def test_litellm_spellings_are_read() -> None:
    config = parse({
        "model_list": [
            deployment("v", "vertex_ai/imagen-4.0-generate-001", vertex_ai_project="my-project",
                       vertex_ai_location="europe-west4", vertex_ai_credentials="/nonexistent/sa.json"),
            deployment("b", "bedrock/amazon.nova-canvas-v1:0", aws_region_name="eu-west-1",
                       model_id="arn:aws:bedrock:eu-west-1:000000000000:application-inference-profile/a0a0",
                       allow_retired=True),
            deployment("az", "azure/my-images", api_base="https://x.openai.azure.com", api_key="k-0123456789abcdef",
                       api_version="2025-04-01-preview", model_info={"base_model": "gpt-image-2"}),
            deployment("p", "openai/gpt-image-2", api_key=OPENAI_KEY, max_parallel_requests=2),
        ],
        "litellm_settings": {"num_retries": 4, "request_timeout": 33, "fallbacks": [{"v": ["b"]}]},
        "router_settings": {
            "routing_strategy": "latency-based-routing", "default_fallbacks": ["az"],
            "content_policy_fallbacks": [{"p": ["b"]}],
            "retry_policy": {"RateLimitErrorRetries": 3, "BadRequestErrorRetries": 0, "SomethingNew": 1},
        },
    })  # fmt: skip
    v, b, az, p = config.deployments
    assert v.settings.get("vertex_project") == "my-project"
    assert v.settings.get("vertex_location") == "europe-west4"
    assert v.settings.get("vertex_credentials") == "/nonexistent/sa.json"
    assert b.settings.model.model_id.startswith("arn:aws:bedrock:") and b.settings.model.info is not None
    assert b.settings.model.info.id == "bedrock/amazon.nova-canvas-v1:0"  # its rules are the model's
    assert az.settings.model.info is not None and az.settings.model.info.id == "azure/gpt-image-2"
    assert p.max_parallel == 2 and v.settings.get("timeout") == 33
    router = config.router
    assert (router.num_retries, router.timeout, router.strategy) == (4, 33, "latency-based-routing")
    assert router.fallbacks == {"v": ["b"]} and router.default_fallbacks == ["az"]
    assert router.content_policy_fallbacks == {"p": ["b"]}
    assert router.retry_policy == {"rate_limit": 3, "bad_request": 0}
    ignored = [w for w in config.warnings if w.startswith("not used by imggen serve")]
    assert len(ignored) == 1 and "router_settings.retry_policy.SomethingNew" in ignored[0]


def test_bedrock_model_id_is_the_id_in_the_url() -> None:
    from imggen.providers import get_provider
    from imggen.types import ImageRequest

    arn = "arn:aws:bedrock:eu-west-1:000000000000:application-inference-profile/a0a0"
    config = parse({"model_list": [deployment("b", "bedrock/stability.sd3-5-large-v1:0", aws_region_name="eu-west-1",
                                              model_id=arn, aws_access_key_id="AKIAEXAMPLE0123456",
                                              aws_secret_access_key="secret-0123456789abcdef")]})  # fmt: skip
    settings = config.deployments[0].settings
    request = get_provider(settings.model.provider).build_request(ImageRequest("x", settings.model), settings)
    assert unquote(request.url).endswith(f"/model/{arn}/invoke")


def test_a_request_naming_a_model_string_goes_only_to_deployments_with_it(
    fake: FakeProvider, second: FakeProvider, start: Any
) -> None:
    config = proxy_config(dalle("group", fake), gpt_image("group", second))
    served = start(config)
    for _ in range(6):
        assert served.post({"model": "openai/gpt-image-2", "prompt": "x"}).status_code == 200
    assert (calls(fake), calls(second)) == (0, 6)


def test_latency_based_routing_prefers_the_faster_deployment(
    fake: FakeProvider, second: FakeProvider, start: Any
) -> None:
    fake.script(IMAGES, *[Reply(delay=0.3, default=True) for _ in range(20)])
    served = start(proxy_config(dalle("d", fake), dalle("d", second),
                                router={"routing_strategy": "latency-based-routing"}))  # fmt: skip
    for _ in range(10):
        assert served.post({"model": "d", "prompt": "x"}).status_code == 200
    assert calls(fake) <= 2 and calls(second) >= 8  # each is measured, then the fast one answers


def test_max_parallel_requests_caps_calls_in_flight(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, *[Reply(delay=0.2, default=True) for _ in range(4)])
    served = start(proxy_config(dalle("d", fake, max_parallel_requests=1)))
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(served.post({"model": "d", "prompt": "x"}).status_code))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4 and fake.max_in_flight == 1


def test_retry_policy_counts_retries_by_kind_of_failure(fake: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, server_error(), server_error(), server_error(), server_error())
    served = start(proxy_config(dalle("d", fake), router={
        "num_retries": 0, "retry_policy": {"InternalServerErrorRetries": 2}}))  # fmt: skip
    assert served.post({"model": "d", "prompt": "x"}).status_code == 502
    assert calls(fake) == 3  # 1 + InternalServerErrorRetries, though num_retries is 0


def test_content_policy_and_default_fallbacks(fake: FakeProvider, second: FakeProvider, start: Any) -> None:
    fake.script(IMAGES, content_policy(), server_error())
    config = proxy_config(
        dalle("strict", fake),
        dalle("lenient", second),
        dalle("other", second),
        router={"content_policy_fallbacks": [{"strict": ["lenient"]}], "default_fallbacks": ["other"]},
    )
    served = start(config)
    refused = served.post({"model": "strict", "prompt": "x"})
    assert refused.status_code == 200 and calls(second) == 1  # the refusal went to the content policy fallback
    failed = served.post({"model": "strict", "prompt": "x"})
    assert failed.status_code == 200 and calls(second) == 2  # a 500 went to the default fallback
