"""glibc's allocator settings for a long-running node or match server process.

Why: a catch-up passes large short-lived buffers through the node (page bodies of a few
hundred kB, batches marshalled for the writer, numpy temporaries of the match index's merges),
many of them from worker threads. glibc gives each thread that allocates its own arena (up to
eight a core) and, once a large block mmapped for one of them is freed, raises its mmap
threshold to that block's size (up to 32 MiB), so later buffers of that size come from the
arenas, where what is freed is kept for reuse and rarely returned: at a million entries the
node then held tens of MiB more than it used. Here the arenas are two, and the threshold is
fixed at 256 kB, so a large buffer is mapped for its use and returned when freed; the
cost, a page fault a page it touches, is a few hundredths of a microsecond an entry.
Elsewhere than glibc (another C library) nothing changes. Set once per process, by the
command that runs the event loop (as node/app/collector.py's settings).
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt(3) parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 << 10
ARENAS = 2
#: The same for a child process (the SQLite writer): glibc reads these at its start.
CHILD_ENVIRONMENT = {
    "MALLOC_ARENA_MAX": str(ARENAS),
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
}


def tune_allocator(mmap_threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set this process's arenas and mmap threshold (0 or less: glibc's adaptive one);
    whether it could (glibc only). A higher threshold keeps large buffers in the heap for
    reuse, for memory that stays with the process. (PDQ searches keep their temporaries
    under the default threshold: node/matching/pdq_index.py checks candidates in pieces.)"""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    arenas = bool(mallopt(M_ARENA_MAX, ARENAS))
    if mmap_threshold_bytes <= 0:
        return arenas
    return arenas and bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold_bytes))
