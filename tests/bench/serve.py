"""`imggen serve` under load, against the same local fake upstream as bench.py.

    python tests/bench/serve.py            # imggen serve alone
    python tests/bench/serve.py --peers    # also `litellm --config` (LiteLLM 1.106.2 [proxy], own venv)
    python tests/bench/serve.py --keys     # also imggen with a virtual key on every request (budget, spend log)

Figures: time to the first healthy answer and idle RSS; images/s with 16 clients and 200 ms upstream
latency (bound 80/s) and the server's CPU per request; upstream calls per failing request with
num_retries: 2. A script, not a test: timings on a shared machine are for reading.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import Fake, refuse, require_imggen

# Before importing them: without imggen's serve extra this is one line, not a traceback or empty figures.
require_imggen("httpx", "starlette", "uvicorn", "yaml")
import httpx  # noqa: E402

# LiteLLM's proxy extra pins other packages than the library peers' venv (bench.py) holds.
PROXY_VENV = Path(tempfile.gettempdir()) / "imggen-bench-litellm-proxy"
PROXY_VERSION = "1.106.2"

MASTER = "sk-bench-master-0000"
CLIENTS, REQUESTS, RETRIES = 16, 400, 2
LOAD = r"""
import asyncio, sys, time, httpx
url, key, clients, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
async def main():
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        left, codes = total, []
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                r = await client.post(url, json={"model": "bench", "prompt": "an otter"},
                                      headers={"Authorization": "Bearer " + key})
                codes.append(r.status_code)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        print(time.perf_counter() - start, sum(c == 200 for c in codes))
asyncio.run(main())
"""


def config_text(base: str, failing_base: str, database: Path | None) -> str:
    """The bench's config; LiteLLM's proxy refuses a sqlite database_url (its keys need PostgreSQL and
    Prisma, whose engines it downloads at start: not here), so its run has none."""
    settings = f'master_key: {MASTER}, database_url: "sqlite:///{database}"' if database else f"master_key: {MASTER}"
    return f"""model_list:
  - model_name: bench
    litellm_params: {{model: openai/bench, api_base: "{base}", api_key: sk-bench}}
  - model_name: failing
    litellm_params: {{model: openai/bench, api_base: "{failing_base}", api_key: sk-bench}}
router_settings: {{num_retries: {RETRIES}}}
general_settings: {{{settings}}}
"""


def start(command: list[str], port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - started < 120:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit(f"{command[0]} did not answer within 120 s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, path: str, total: int, key: str = MASTER) -> tuple[float, int]:
    url = f"http://127.0.0.1:{port}{path}"
    out = subprocess.run([sys.executable, "-c", LOAD, url, key, str(CLIENTS), str(total)],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def virtual_key(port: int) -> str:
    """A virtual key with a budget far above the run's cost: every request is checked, held and logged."""
    body = {"max_budget": 1000, "key_alias": f"bench-{port}"}  # a new alias per start: the database stays
    answer = httpx.post(f"http://127.0.0.1:{port}/key/generate", json=body,
                        headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["key"])


def measure(kind: str, command: list[str], port: int, env: dict[str, str], fake: Fake, failing: Fake) -> dict:
    proc, first = start(command, port, env)
    try:
        time.sleep(1.0)
        idle = rss_mib(proc.pid)
        key = virtual_key(port) if kind == "imggen+keys" else MASTER
        load(port, "/v1/images/generations", 32, key)  # warm: connections, caches
        before, served_before = cpu_seconds(proc.pid), fake.served
        took, ok = load(port, "/v1/images/generations", REQUESTS, key)
        if ok != REQUESTS:
            refuse(f"{kind}: {ok} of {REQUESTS} requests answered 200: no figures for a run that failed", 1)
        cpu = cpu_seconds(proc.pid) - before
        calls_before = failing.calls
        for _ in range(10):
            httpx.post(f"http://127.0.0.1:{port}/v1/images/generations", json={"model": "failing", "prompt": "x"},
                       headers={"Authorization": f"Bearer {MASTER}"}, timeout=120)  # fmt: skip
        per_failure = (failing.calls - calls_before) / 10
        return {
            "first healthy answer": f"{first * 1000:.0f} ms",
            "idle RSS": f"{idle:.0f} MiB",
            f"{CLIENTS} clients, 200 ms upstream": f"{ok / took:.1f} images/s ({ok / took / 80:.2f} of the bound), "
            f"{fake.served - served_before} served",
            "server CPU per request": f"{cpu / REQUESTS * 1000:.2f} ms",
            f"upstream calls per failing request (num_retries {RETRIES})": f"{per_failure:g}",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


TARGETS = {
    "first healthy answer": "<= 1000 ms",
    "idle RSS": "<= 80 MiB",
    f"{CLIENTS} clients, 200 ms upstream": ">= 0.85 of the bound (80/s)",
    "server CPU per request": "<= 3 ms",
    f"upstream calls per failing request (num_retries {RETRIES})": f"exactly {1 + RETRIES}",
}


# With a virtual key on every request (lookup, budget hold, spend log): the issue's own bounds.
KEYED_TARGETS = {
    f"{CLIENTS} clients, 200 ms upstream": ">= 0.9 of the bound (80/s)",
    "server CPU per request": "<= 2.5 ms",
}


def run(kind: str, runs: int, tmp: Path) -> dict[str, list[str]]:
    fake, failing = Fake(latency=0.2), Fake(failure_rate=1.0, statuses=(500,))
    config = tmp / f"proxy-{kind}.yaml"
    config.write_text(config_text(fake.base, failing.base, None if kind == "litellm" else tmp / f"{kind}.db"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, list[str]] = {}
    try:
        for run_number in range(runs):
            port = 4400 + run_number + {"imggen": 0, "imggen+keys": 25, "litellm": 50}[kind]
            if kind.startswith("imggen"):
                command = [sys.executable, "-m", "imggen", "serve", "--config", str(config), "--port", str(port)]
            else:
                command = [str(ensure_proxy_peer()), "--config", str(config), "--port", str(port)]
                env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no download at start-up
            for name, value in measure(kind, command, port, env, fake, failing).items():
                results.setdefault(name, []).append(value)
    finally:
        fake.stop()
        failing.stop()
    return results


def ensure_proxy_peer() -> Path:
    litellm = PROXY_VENV / "bin" / "litellm"
    if not litellm.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PROXY_VENV)], check=True)
        pip = [str(PROXY_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"litellm[proxy]=={PROXY_VERSION}"], check=True)
    return litellm


def pick(values: list[str]) -> str:
    """The run with the median leading number."""
    numbers = [float(v.split()[0]) for v in values]
    middle = statistics.median_low(numbers)
    return values[numbers.index(middle)]


def shown(values: list[str], name: str) -> str:
    """The median run; for the CPU per request, which other work on the machine moves most, the
    smallest and largest run too."""
    if name != "server CPU per request" or len(values) < 2:
        return pick(values)
    numbers = sorted(float(v.split()[0]) for v in values)
    return f"{pick(values)} (runs {numbers[0]:.2f}-{numbers[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="server starts per tool (the median run is shown)")
    parser.add_argument("--peers", action="store_true", help="also measure `litellm --config`")
    parser.add_argument("--keys", action="store_true", help="also measure imggen with a virtual key per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tools = ["imggen"] + (["imggen+keys"] if args.keys else []) + (["litellm"] if args.peers else [])
        results = {tool: run(tool, args.runs, Path(tmp)) for tool in tools}
    for name, target in TARGETS.items():
        print(f"{name:<48} imggen {shown(results['imggen'][name], name):<44} target {target}")
        if args.keys:
            keyed = KEYED_TARGETS.get(name, target)
            print(f"{'':<48} +keys  {shown(results['imggen+keys'][name], name):<44} target {keyed}")
        if args.peers:
            print(f"{'':<48} LiteLLM {pick(results['litellm'][name])}")


if __name__ == "__main__":
    main()
