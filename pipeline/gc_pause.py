"""Batch stages pause the cyclic garbage collector.

Filter and export allocate hundreds of thousands of short-lived, acyclic objects (rows, dicts),
which reference counting frees; the collector only adds full passes over whatever the process
still holds. Right after a simulation in the same process, those passes tripled export's time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
