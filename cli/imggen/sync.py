"""Running imggen's coroutines from synchronous code, inside or outside a running event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end and return its result. Inside a running loop (Jupyter, IPython, an
    asyncio program) `asyncio.run` refuses, and waiting on that loop from inside it would hang: the
    work runs on a private loop in a worker thread instead, while this caller waits for it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imggen") as pool:
        return pool.submit(asyncio.run, coroutine).result()
