"""The node's allocator settings: with `tune_allocator`, large buffers freed go back to the
system even after a larger one raised glibc's adaptive mmap threshold. In processes of their
own: the settings are process-wide."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from node.app.allocator import tune_allocator

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

mode = sys.argv[1]
if mode == "tune":
    tuned = tune_allocator()
elif mode.startswith("kib="):  # a node's malloc_mmap_threshold_kib
    tuned = tune_allocator(int(mode[4:]) << 10)
else:
    tuned = False
big = b"x" * (16 << 20)
del big  # untuned, glibc now keeps blocks up to 16 MiB in its heap
blocks = [b"y" * (1 << 20) for _ in range(64)]
pin = b"z" * (100 << 10)  # above them in the heap, if they are there
before = rss_kb()
del blocks
print(json.dumps([tuned, (before - rss_kb()) // 1024]))
"""


def _freed_mib(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    tuned, freed = json.loads(out)
    return tuned, freed


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_tuned_allocator_returns_freed_large_buffers_to_the_system() -> None:
    tuned, freed = _freed_mib("tune")
    assert tuned is True
    assert freed >= 56  # of the 64 MiB freed
    # Without the settings glibc keeps them (the probe measures what it means to).
    assert _freed_mib("default") == (False, pytest.approx(0, abs=8))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_higher_mmap_threshold_keeps_buffers_below_it_in_the_heap() -> None:
    # malloc_mmap_threshold_kib = 4096: 1 MiB buffers (as a PDQ search's temporaries) stay
    # in the heap for reuse instead of being mapped and faulted in anew each time.
    assert _freed_mib("kib=4096") == (True, pytest.approx(0, abs=8))
    assert _freed_mib("kib=256")[1] >= 56
