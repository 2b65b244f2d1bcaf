"""The node's collector settings: applied by `tune_collector`, in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys

from node.app.collector import THRESHOLDS

PROBE = """
import gc, json
from node.app.collector import tune_collector
before = gc.get_threshold()
tune_collector()
print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()]))
"""


def test_tune_collector_raises_the_thresholds_freezes_startup_objects_and_keeps_collecting() -> (
    None
):
    # A fresh interpreter: the settings are process-wide and must not leak into this one.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    before, after, frozen, enabled = json.loads(out)
    assert before == [700, 10, 10]  # CPython's defaults: the probe really changed them
    assert after == list(THRESHOLDS)
    assert frozen > 1000  # the imported modules' objects
    assert enabled is True
