"""Open one new SQLite file from several processes at the same instant, round after round, and print
each failure on a line (nothing when every open worked). A new file's switch to WAL answers
SQLITE_BUSY at once, without the busy timeout, when another process opens the file meanwhile, and
two proxies upgrading one schema together add the same column twice: this is how those races are met.

    python tests/opentogether.py log|proxy ROUNDS FOLDER

It forks, so the tests run it as a process of its own (never fork a test process: xdist has threads)."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROCESSES = 4


def failures(kind: str, rounds: int, folder: Path) -> list[str]:
    """What failed over `rounds` new files of `kind` ("log" or "proxy"), each opened by four processes at once."""
    result = subprocess.run([sys.executable, __file__, kind, str(rounds), str(folder)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def open_log(folder: Path) -> None:
    from imggen.logdb import LogDB

    log = LogDB(folder / "log.sqlite")
    run_id = log.start_run("generate")
    entry = {"command": "generate", "task": "generate", "prompt": "otter", "model": "placeholder/default",
             "provider": "placeholder", "path": "/x.png"}  # fmt: skip
    log.add({**entry, "run_id": run_id, "created": time.time()})
    log.end_run(run_id, 0)
    log.close()


def open_proxy(folder: Path) -> None:
    from imggen.proxy.db import open_database

    async def run() -> None:
        await (await open_database(f"sqlite:///{folder / 'proxy.db'}")).aclose()

    asyncio.run(run())


def worker(kind: str, folder: Path, start: Any, outcomes: Any) -> None:  # a Barrier and a Queue of the fork context
    start.wait()
    try:
        (open_log if kind == "log" else open_proxy)(folder)
        outcomes.put(None)
    except Exception as exc:  # reported, not raised: the parent prints every one
        outcomes.put(f"{type(exc).__name__}: {exc}".splitlines()[0])


def main(kind: str, rounds: int, base: Path) -> None:
    import imggen.logdb
    import imggen.proxy.db  # noqa: F401 (imported once here, not in each fork)

    context = multiprocessing.get_context("fork")
    for number in range(rounds):
        folder = base / str(number)
        folder.mkdir(parents=True)
        start, outcomes = context.Barrier(PROCESSES), context.Queue()
        processes = [context.Process(target=worker, args=(kind, folder, start, outcomes)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        for _ in processes:
            failure = outcomes.get(timeout=60)
            if failure:
                print(failure, flush=True)
        for process in processes:
            process.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
