"""Running imggen's coroutines from synchronous code, inside or outside a running event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
WAKE_UP = 0.2  # seconds between looks at whether the caller was cancelled


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end and return its result. Inside a running loop (Jupyter, IPython, an
    asyncio program) `asyncio.run` refuses, and waiting on that loop from inside it would hang: the
    work runs on a private loop in a worker thread instead, while this caller waits for it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None
        running.append((asyncio.get_running_loop(), task))
        return await coroutine

    caller = asyncio.current_task()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imggen")
    future = pool.submit(asyncio.run, main())
    try:
        while True:
            try:
                return future.result(timeout=WAKE_UP)
            except TimeoutError:
                # asyncio.run's Ctrl-C handler cancels the caller's task instead of raising, and this
                # wait blocks that task's loop: notice it here, and end as the cancelled task would.
                if caller is not None and caller.cancelling():
                    raise asyncio.CancelledError from None
    except BaseException:
        # Interrupted while waiting (Ctrl-C, Jupyter's stop button): stop the work too, so its
        # requests end and its temporary files go, instead of leaving it running unseen.
        if not future.done() and not future.cancel() and running:
            loop, task = running[0]
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        raise
    finally:
        pool.shutdown(wait=True)
