"""The cyclic garbage collector's settings for a long-running node or match server process.

Why: catching up keeps tens of thousands of entries alive at once (pages queued for the
store, batches the listeners are hearing of), so with CPython's default thresholds (700, 10,
10) they survive the young collections, reach the oldest generation and trigger full
collections of the whole heap every few pages: about a quarter of a catch-up's CPU time,
under the GIL. Larger thresholds collect the young generation a little less often and the
oldest only after millions of allocations, and freezing what exists once the process has
started (modules, configuration) keeps it out of every later collection. Cycles are still
collected; memory held by uncollected garbage stays at a few MiB. Set once per process, by
the command that runs the event loop, never in a library or a test process.
"""

from __future__ import annotations

import gc

#: Objects allocated (net) before a young collection; then 10 young per middle, and 100
#: middle collections per full one. See docs/performance.md for the measurement.
THRESHOLDS = (20_000, 10, 100)


def tune_collector() -> None:
    """Freeze everything allocated so far and set the node's collection thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
