"""imggen's benchmark: whole-process figures against a local fake OpenAI-compatible server.

    python tests/bench/bench.py                 # imggen alone
    python tests/bench/bench.py --peers         # also LiteLLM and the openai SDK, in their own venv

Prints each figure, the target, and with --peers imggen's ratio to each peer. A script, not a test:
timings on a shared machine are for reading, not for asserting.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

PEERS_VENV = Path(tempfile.gettempdir()) / "imggen-bench-peers"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "took = time.perf_counter() - start\n"
    "print(took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)\n"
)


class Fake:
    """A fast stand-in for `POST /v1/images/generations`: latency, image size and failure rate."""

    def __init__(
        self,
        latency: float = 0.0,
        image_bytes: int = 1024,
        failure_rate: float = 0.0,
        statuses: tuple[int, ...] = (429, 500),
    ) -> None:
        self.latency, self.failure_rate, self.statuses = latency, failure_rate, statuses
        self.b64 = base64.b64encode(PNG_HEAD + random.Random(1).randbytes(max(0, image_bytes - 8))).decode()
        self.served = 0
        self.calls = 0  # every request, answered or failed
        self.lock = threading.Lock()
        self.server = _serve(self, _Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops a burst of connects, which then retry a second later


def _serve(fake: object, handler: type[BaseHTTPRequestHandler]) -> _Server:
    """A server on a free port of 127.0.0.1, answering with `handler` (which reads `self.fake`)."""
    server = _Server(("127.0.0.1", 0), type("Handler", (handler,), {"fake": fake}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    fake: Fake
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.fake.lock:
            self.fake.calls += 1
        time.sleep(self.fake.latency)
        if random.random() < self.fake.failure_rate:
            status = random.choice(self.fake.statuses)
            error = b'{"error": {"message": "injected", "type": "x", "param": null, "code": null}}'
            self._send(status, error, extra="Retry-After: 0.2\r\n")
            return
        with self.fake.lock:
            self.fake.served += int(body.get("n", 1))
        items = ",".join(f'{{"b64_json":"{self.fake.b64}"}}' for _ in range(int(body.get("n", 1))))
        self._send(200, f'{{"created":{int(time.time())},"data":[{items}]}}'.encode())

    def _send(self, status: int, payload: bytes, kind: str = "application/json", extra: str = "") -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n{extra}\r\n"
        self.wfile.write(head.encode() + payload)  # one write: split writes stall on delayed ACKs


class QueueFake:
    """A stand-in for a queue API shaped as Black Forest Labs' (providers/bfl.py): `POST /v1/<model>`
    answers a job and its polling URL at once, `GET /v1/get_result?id=` answers Pending until the job is
    `latency` seconds old, then Ready with a result URL, which `GET /results/<id>.png` serves."""

    def __init__(self, latency: float = 1.0) -> None:
        self.latency = latency
        self.png = PNG_HEAD + random.Random(2).randbytes(1016)
        self.jobs: dict[str, float] = {}
        self.lock = threading.Lock()
        self.server = _serve(self, _QueueHandler)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()


class _QueueHandler(_Handler):
    fake: QueueFake  # type: ignore[assignment]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.fake.lock:
            job = f"job-{len(self.fake.jobs)}"
            self.fake.jobs[job] = time.monotonic()
        answer = {"id": job, "polling_url": f"{self.fake.root}/v1/get_result?id={job}", "cost": 3.0}
        self._send(200, json.dumps(answer).encode())

    def do_GET(self) -> None:
        if self.path.startswith("/results/"):
            self._send(200, self.fake.png, "image/png")
            return
        job = self.path.rsplit("=", 1)[-1]
        with self.fake.lock:
            born = self.fake.jobs.get(job)
        if born is None:
            self._send(200, json.dumps({"id": job, "status": "Task not found"}).encode())
        elif time.monotonic() - born < self.fake.latency:
            self._send(200, json.dumps({"id": job, "status": "Pending", "progress": None}).encode())
        else:
            result = {"sample": f"{self.fake.root}/results/{job}.png?se=1&sig=x", "seed": 1}
            self._send(200, json.dumps({"id": job, "status": "Ready", "result": result}).encode())


def queue_bound(latency: float, jobs: int, concurrency: int) -> tuple[float, float]:
    """The best a client polling at imggen's pace can do: each job is seen ready at the first poll after
    `latency` (the provider's first wait, then the engine's backoff), so `concurrency` slots finish a job
    each that often. Returns (seconds a job holds its slot, jobs a second)."""
    from imggen import engine
    from imggen.providers import bfl

    waited, step = 0.0, 0
    while waited < latency:
        waited += min(bfl.WAIT * engine.POLL_GROWTH**step, max(engine.POLL_CAP, bfl.WAIT))
        step += 1
    waves = -(-jobs // concurrency)
    return waited, jobs / (waves * waited)


def measure(
    command: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, exit code) of a whole process, with bytecode caches as users have them
    (pip writes them at install; PYTHONDONTWRITEBYTECODE would make an editable checkout recompile)."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, input=stdin,
                          env={**base, **(env or {})})  # fmt: skip
    took, rss, code = proc.stdout.split()
    return float(took), float(rss), int(code)


def median(runs: int, command: list[str], **kwargs: object) -> tuple[float, float]:
    results = [measure(command, **kwargs) for _ in range(runs)]  # type: ignore[arg-type]
    for _, _, code in results:
        ran_ok(code, command)
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def refuse(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and no figures: a run that measured nothing must not look like a result."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def require_imggen(*modules: str) -> None:
    """The figures are for `python -m imggen` under this interpreter: refuse when it cannot find imggen
    (or a module the script needs), before measuring anything."""
    missing = [name for name in ("imggen", *modules) if importlib.util.find_spec(name) is None]
    if missing:
        refuse(f"{sys.executable} cannot import {', '.join(missing)}: run this with the python of imggen's "
               "virtual environment (.venv/bin/python tests/bench/...) after pip install -e '.[test]'")  # fmt: skip


def ran_ok(code: int, command: list[str]) -> None:
    if code != 0:
        refuse(f"{' '.join(command[1:4])} ... exited {code}: no figures for a run that failed", 1)


def saved(directory: Path, expected: int) -> None:
    """Each measured run must have saved what it claims, or its timing means nothing."""
    count = len(list(directory.glob("*.png"))) if directory.is_dir() else 0
    if count != expected:
        refuse(f"{directory.name}: {count} images saved, expected {expected}: no figures for this run", 1)


def imggen(*args: str) -> list[str]:
    return [sys.executable, "-m", "imggen", *args]


def run_imggen(runs: int, out: Path) -> dict[str, tuple[float, ...]]:
    env = {"OPENAI_API_KEY": "sk-bench"}
    warm_up = imggen("generate", "warm-up", "-m", "placeholder", "-s", "16x16", "-o", str(out / "warm"))
    ran_ok(measure(warm_up)[2], warm_up)
    saved(out / "warm", 1)
    figures: dict[str, tuple[float, ...]] = {"start-up": median(runs, imggen("--help"))}
    fake = Fake()
    one = imggen("generate", "x", "-m", "openai/bench", "--api-base", fake.base, "-o", str(out / "one"), "--quiet")
    figures["one 1 KB image"] = median(runs, one, env=env)
    fake.stop()
    saved(out / "one", runs)  # a name collision adds a suffix: one file per run
    figures["200 images, -j 16, 200 ms"] = _batch(runs, out, env)
    figures["4 x 8 MiB b64, peak RSS"] = _big(out, env)
    figures["20 % 429/500"] = _flaky(out, env)
    figures[QUEUE] = _queue(min(runs, 3), out)
    figures[LOG] = _log(runs, out, env)
    return figures


LOG = "log, per saved image"
LOG_IMAGES = 400
LOG_SCRIPT = r"""
import sys, time
from pathlib import Path
from imggen import logdb
log, image = logdb.LogDB(Path(sys.argv[1])), Path(sys.argv[2])
entry = {"run_id": "r_bench", "command": "generate", "task": "generate", "prompt": "a sea otter " * 8,
         "model": "openai/bench", "provider": "openai", "options": {"n": 1, "quality": "low"},
         "parameters": {"n": 1, "quality": "low", "response_format": "b64_json"}, "seed": 1, "path": str(image),
         "sha256": "0" * 64, "bytes": 1024, "cost_usd": 0.01, "request_id": "req_1"}
start = time.perf_counter()
for i in range(2000):
    width, height = logdb._pixels(image)
    log.add({**entry, "created": time.time(), "width": width, "height": height})
per_image = (time.perf_counter() - start) / 2000
log.close()
start = time.perf_counter()
for i in range(20):  # what every run pays once: open, its run row, its exit status, close (a checkpoint)
    log = logdb.LogDB(Path(sys.argv[1]))
    log.end_run(log.start_run("generate"), 0)
    log.close()
print(per_image, (time.perf_counter() - start) / 20)
"""


def _log(runs: int, out: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """What the log adds, in seconds: per saved image over whole runs of LOG_IMAGES images with and
    without --no-log (alternated so the machine's drift hits both; the difference of the fastest of
    each: on a shared machine the medians move by more than the log costs), per saved image in one
    process (LogDB.add with the pixel probe), and per run in one process (opening the file, the run's
    rows, closing it: SQLite's checkpoint syncs the disk there)."""
    fake = Fake()
    prompts = _prompts(LOG_IMAGES)
    times: dict[bool, list[float]] = {True: [], False: []}
    for run in range(runs):
        for logged in (True, False):
            folder = out / f"log{run}-{logged}"
            cmd = imggen("generate", "-", "-m", "openai/bench", "--api-base", fake.base, "-j", "16", "-o",
                         str(folder), "--quiet", *([] if logged else ["--no-log"]))  # fmt: skip
            took, _, code = measure(cmd, env=env, stdin=prompts)
            ran_ok(code, cmd)
            saved(folder, LOG_IMAGES)
            times[logged].append(took)
    fake.stop()
    whole = (min(times[True]) - min(times[False])) / LOG_IMAGES  # the fastest run: the least disturbed
    image = next((out / "log0-True").glob("*.png"))
    script = [sys.executable, "-c", LOG_SCRIPT, str(out / "bench-log-alone.sqlite"), str(image)]
    alone, per_run = map(float, subprocess.run(script, capture_output=True, text=True, check=True).stdout.split())
    return whole, alone, per_run


QUEUE = "200 queued jobs, -j 16, 1 s"


def _queue(runs: int, out: Path) -> tuple[float, float]:
    """200 jobs of a queue API at -j 16, each ready 1 s after its submit: jobs a second (the median of
    `runs`) and its ratio to the bound the fake's latency and the polling pace set (queue_bound)."""
    fake = QueueFake(latency=1.0)
    env = {"BFL_API_KEY": "bfl-bench", "BFL_API_BASE": f"{fake.root}/v1"}
    rate, _ = _rates(runs, out, "queue", ("-m", "bfl/flux-2-pro"), env)
    fake.stop()
    return rate, rate / queue_bound(1.0, 200, 16)[1]


def _batch(runs: int, out: Path, env: dict[str, str]) -> tuple[float, float]:
    fake = Fake(latency=0.2)
    figures = _rates(runs, out, "batch", ("-m", "openai/bench", "--api-base", fake.base), env)
    fake.stop()
    return figures


def _rates(runs: int, out: Path, name: str, model: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    """200 prompts at -j 16 into out/<name><run>, `runs` times: images a second (the median) and peak RSS."""
    prompts = _prompts(200)
    rates, rss = [], 0.0
    for run in range(runs):
        cmd = imggen("generate", "-", *model, "-j", "16", "-o", str(out / f"{name}{run}"), "--quiet")
        took, peak, code = measure(cmd, env=env, stdin=prompts)
        ran_ok(code, cmd)
        saved(out / f"{name}{run}", 200)
        rates.append(200 / took)
        rss = max(rss, peak)
    return statistics.median(rates), rss


def _prompts(count: int) -> bytes:
    return "".join(f"prompt {i}\n" for i in range(count)).encode()


def _big(out: Path, env: dict[str, str]) -> tuple[float, float]:
    fake = Fake(image_bytes=8 << 20)
    cmd = imggen("generate", "x", "-m", "openai/bench", "-n", "4", "--api-base", fake.base, "-o", str(out / "big"))
    took, rss, code = measure(cmd, env=env)
    fake.stop()
    ran_ok(code, cmd)
    saved(out / "big", 4)
    return took, rss


def _flaky(out: Path, env: dict[str, str]) -> tuple[float, float]:
    fake = Fake(failure_rate=0.2)
    prompts = _prompts(50)
    cmd = imggen("generate", "-", "-m", "openai/bench", "--api-base", fake.base, "-j", "8", "--retries", "5",
                 "-o", str(out / "flaky"), "--quiet")  # fmt: skip
    measure(cmd, env=env, stdin=prompts)
    saved = len(list((out / "flaky").glob("*.png")))
    fake.stop()
    return float(saved), float(fake.served)


PEER_SCRIPT = r"""
import asyncio, base64, os, sys, time
kind, what, base = sys.argv[1], sys.argv[2], sys.argv[3]
if what == "import":
    __import__(kind); sys.exit(0)
n_prompts, per, jobs = {"one": (1, 1, 1), "batch": (200, 1, 16), "big": (1, 4, 1), "flaky": (50, 1, 8)}[what]
async def main():
    sem = asyncio.Semaphore(jobs)
    if kind == "openai":
        from openai import AsyncOpenAI
        client = AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=5)
        call = lambda p: client.images.generate(model="bench", prompt=p, n=per, response_format="b64_json")
    else:
        import litellm
        call = lambda p: litellm.aimage_generation(model="openai/bench", prompt=p, n=per, api_base=base,
                                                   api_key="sk-bench", num_retries=5)
    async def one(i):
        async with sem:
            try:
                r = await call(f"prompt {i}")
            except Exception:
                return
            for j, d in enumerate(r.data):
                with open(os.path.join(sys.argv[4], f"{i}-{j}.png"), "wb") as f:
                    f.write(base64.b64decode(d.b64_json))
    await asyncio.gather(*(one(i) for i in range(n_prompts)))
asyncio.run(main())
"""


def ensure_peers() -> Path:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "litellm", "openai"], check=True)
    return python


def run_peer(kind: str, python: Path, runs: int, out: Path) -> dict[str, tuple[float, ...]]:
    script = out / "peer.py"
    script.write_text(PEER_SCRIPT)

    def cmd(what: str, base: str, folder: str) -> list[str]:
        (out / folder).mkdir(parents=True, exist_ok=True)
        return [str(python), str(script), kind, what, base, str(out / folder)]

    figures: dict[str, tuple[float, ...]] = {"start-up": median(runs, cmd("import", "-", "x"))}
    fake = Fake()
    figures["one 1 KB image"] = median(runs, cmd("one", fake.base, f"{kind}-one"))
    fake.stop()
    fake = Fake(latency=0.2)
    took, rss, _ = measure(cmd("batch", fake.base, f"{kind}-batch"))
    figures["200 images, -j 16, 200 ms"] = (200 / took, rss)
    fake.stop()
    fake = Fake(image_bytes=8 << 20)
    figures["4 x 8 MiB b64, peak RSS"] = measure(cmd("big", fake.base, f"{kind}-big"))[:2]
    fake.stop()
    fake = Fake(failure_rate=0.2)
    measure(cmd("flaky", fake.base, f"{kind}-flaky"))
    figures["20 % 429/500"] = (float(len(list((out / f"{kind}-flaky").glob("*.png")))), float(fake.served))
    fake.stop()
    return figures


TARGETS = {
    "start-up": "<= 100 ms, <= 35 MiB",
    "one 1 KB image": "<= 250 ms, <= 45 MiB",
    "200 images, -j 16, 200 ms": ">= 68 images/s (bound 80)",
    "4 x 8 MiB b64, peak RSS": "<= 64 MiB",
    "20 % 429/500": "50 saved, no duplicates",
    QUEUE: ">= 0.85 of the bound",
    LOG: "<= 2 ms per image",
}


def show(name: str, value: tuple[float, ...]) -> str:
    if name.startswith("200 images"):
        return f"{value[0]:.1f} images/s, {value[1]:.0f} MiB"
    if name.startswith("20 %"):
        return f"{value[0]:.0f} saved of 50 ({value[1]:.0f} images served)"
    if name == QUEUE:
        held, bound = queue_bound(1.0, 200, 16)
        return f"{value[0]:.2f} jobs/s, x{value[1]:.2f} the bound ({bound:.2f} jobs/s: ready at {held:.2f} s)"
    if name == LOG:
        alone, per_run = value[1] * 1e6, value[2] * 1000
        return f"{value[0] * 1000:+.2f} ms (runs of {LOG_IMAGES}), {alone:.0f} us alone; {per_run:.1f} ms a run"
    if name.startswith("4 x 8"):
        return f"{value[1]:.0f} MiB peak ({value[0]:.2f} s)"
    return f"{value[0] * 1000:.0f} ms, {value[1]:.0f} MiB"


def ratio(name: str, mine: tuple[float, ...], theirs: tuple[float, ...]) -> str:
    if name.startswith("20 %") or name == QUEUE:
        return ""
    if name.startswith("200 images"):
        return f"x{mine[0] / theirs[0]:.2f} the throughput"
    index = 1 if name.startswith("4 x 8") else 0
    return f"x{theirs[index] / mine[index]:.1f} less" if mine[index] else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (the median is shown)")
    parser.add_argument("--peers", action="store_true", help="also measure LiteLLM and the openai SDK")
    parser.add_argument("--no-prompts", action="store_true", help="skip the 100,000 and 1,000,000-line files")
    parser.add_argument("--no-gallery", action="store_true", help="skip imggen gallery over 2,000 images")
    args = parser.parse_args()
    require_imggen()
    import prompts  # here, not at the top: prompts.py takes measure() from this module

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        os.environ["IMGGEN_LOG_DB"] = str(out / "bench-log.sqlite")  # every run logs there, never in the user's log
        results = {"imggen": run_imggen(args.runs, out)}
        big_files = [] if args.no_prompts else prompts.report(prompts.run_prompts(out))
        if not args.no_gallery:
            import gallery

            kinds = {f"{kind} 1024x1024": gallery.run_gallery(out, kind=kind) for kind in ("png", "jpeg")}
            big_files += gallery.report(kinds)
        if args.peers:
            python = ensure_peers()
            results["openai SDK"] = run_peer("openai", python, args.runs, out)
            results["LiteLLM"] = run_peer("litellm", python, args.runs, out)
    for name, target in TARGETS.items():
        mine = results["imggen"][name]
        print(f"{name:<28} imggen {show(name, mine):<40} target {target}")
        for peer in ("openai SDK", "LiteLLM"):
            if peer in results and name in results[peer]:  # no peer speaks a queue API here
                theirs = results[peer][name]
                print(f"{'':<28} {peer:<11} {show(name, theirs):<35} {ratio(name, mine, theirs)}")
    for row in big_files:
        print(row)


if __name__ == "__main__":
    main()
