"""Python's cyclic garbage collector, paused while a large model or plan is built.

Loading a 10,000-resource project or building its plan allocates millions of
objects and frees few of them: the collector runs again and again and walks
every one each time it reaches the oldest generation, for nothing (nearly half
of the Python time of ``ordo plan``, benchmarks/ordo_probe.py). Reference
counting still frees everything that is not in a cycle; cycles made meanwhile
wait for the next full collection. When the pause ends, what it made joins
the oldest generation (``gc.freeze`` then ``gc.unfreeze``, which moves lists,
not objects): otherwise the next young collection would walk every object
made during the pause at once. Re-entrant and shared between threads: the
collector runs again when the last pause ends, and only if it ran when the
first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """A context (or a decorator) in which the cyclic collector does not run."""
    global _depth, _was_enabled
    with _LOCK:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                gc.freeze()
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()
