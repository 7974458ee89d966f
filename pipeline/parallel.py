"""Map a function over items in worker processes, results in item order.

Building domains is CPU-bound Python (SQLite, pydantic, SQLAlchemy), so it scales by processes.
On Linux, workers are forked from this process when it runs a single thread: they inherit every
imported module and start in milliseconds (importing our stack afresh takes seconds). Otherwise
(other threads alive, or no fork) they come from a forkserver that imports `__main__` and the
function's module once. Results come back in input order whatever the worker count, so outputs
are byte-identical for any number of workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def forks() -> bool:
    """Whether workers started now are forks of this process (and so inherit its state)."""
    return sys.platform == "linux" and threading.active_count() == 1


def _context(preload: str) -> BaseContext:
    if forks():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", preload])
    return context


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[R]:
    """`fn(item)` for each item, yielded in order; in this process when `workers` is 1.
    `meanwhile()` runs in this process once the workers are busy (before them, with one).

    `fn` must be a module-level function (workers import it by name). As with any
    multiprocessing, a script that calls this needs an `if __name__ == "__main__":` guard.
    """
    if workers <= 1 or len(items) <= 1:
        if meanwhile is not None:
            meanwhile()
        yield from map(fn, items)
        return
    chunk = max(1, len(items) // (workers * 16))
    context = _context(fn.__module__)
    # Forked workers would otherwise trace (and copy, page by page) every object the parent
    # holds at each full collection: freezing them first made the build ~20% faster.
    gc.freeze()
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = pool.map(fn, items, chunksize=chunk)  # forks the workers
            gc.unfreeze()
            if meanwhile is not None:
                meanwhile()
            yield from results
    finally:
        gc.unfreeze()


def run_async(fn: Callable[..., Awaitable[R]], *args: Any) -> R:
    """`anyio.run(fn, *args)` for a worker, with the result kept out of the main task.

    asyncio's Runner formats a repr of its main task when it restores the SIGINT handler
    (CPython 3.11), and that repr includes the task's result: for a built domain ~3 ms, 7% of
    its build (profiled).
    """
    out: list[R] = []

    async def main() -> None:
        out.append(await fn(*args))

    anyio.run(main)
    return out[0]
