"""Return freed memory to the system (glibc).

Decoding a large image allocates hundreds of megabytes in blocks of a few megabytes (Pillow's
16 MB blocks, NumPy arrays). glibc raises its mmap threshold after such blocks are freed, so the
next ones come from per-thread heaps that are never given back, and with many request and stage
threads (one heap each) a service that only ever decodes two images at once grew to 4.3 GB
(``benchmarks/bench_load.py --kind sof_at_limit``). A fixed mmap threshold (4 MiB: every large
block is its own mapping, unmapped when freed) and a few arenas keep it at 1.6 GB. The
environment variables ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` and
``MALLOC_ARENA_MAX`` override these.

A process that analyses one file at a time (a batch worker, a Celery worker) is different: what
it frees, the next file needs again, and mapping every block afresh spent much of a 2 MP JPEG's
analysis in page faults: with blocks up to 32 MiB from the heap and up to 128 MiB of free heap
kept, a provenance-only batch of 2 MP JPEGs on two workers went from 19.8 to 33.3 files/s
(``benchmarks/bench_batch.py --kind photos2mp --provenance-only``). :func:`tune_malloc` with
``worker`` sets that; larger blocks (images of tens of megapixels) are still mapped and given
back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 * 1024 * 1024
ARENA_MAX = 4
WORKER_MMAP_THRESHOLD = 32 * 1024 * 1024
WORKER_TRIM_THRESHOLD = 128 * 1024 * 1024


def tune_malloc(*, worker: bool = False) -> bool:
    """Apply the settings above on glibc (``worker``: those of a process that analyses one file
    at a time); returns whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        threshold = WORKER_MMAP_THRESHOLD if worker else MMAP_THRESHOLD
        ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and ok
    if worker and "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        ok = bool(mallopt(_M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD)) and ok
    if "MALLOC_ARENA_MAX" not in os.environ:
        ok = bool(mallopt(_M_ARENA_MAX, ARENA_MAX)) and ok
    if not ok:
        log.debug("mallopt refused a setting")
    return ok
