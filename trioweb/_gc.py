"""The garbage collector while the app serves: its first threshold raised to ``GC_THRESHOLD``.

Why: a publish to 10,000 subscribers wakes 10,000 forwarding tasks (``hub.forward()``), each
holding a few coroutine frames until its send is done. At Python's default first threshold (700
new objects) the collector ran constantly, promoted those frames and made full collections that
walked every connection's objects: about 40% of the server's CPU in the bench's fan-out (8.2 s
of 20 s, 22 full collections at 1,000 subscribers, against 0.8 s and 3 for a hand-written loop;
with the threshold at 20,000 the hub went from 0.5x to 1.35x the raw app at 10,000 subscribers).

The lifespan raises it (never lowers it) while the app serves and puts it back afterwards,
unless someone changed it meanwhile. ``None`` leaves the collector alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def threshold_at_least(threshold: int | None) -> Iterator[None]:
    """Raise the collector's first threshold to ``threshold`` inside the block (never lower it;
    ``None``: leave it); on exit put it back, unless it was changed meanwhile."""
    before = gc.get_threshold()
    if threshold is None or before[0] >= threshold:
        yield
        return
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        if gc.get_threshold()[0] == threshold:
            gc.set_threshold(*before)
