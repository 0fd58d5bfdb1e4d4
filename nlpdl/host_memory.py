"""Keep freed host memory in the process, so XLA's CPU buffers do not page-fault afresh on every step.

XLA's CPU runtime allocates each execution's temporaries as one block (76 MB for Kim's CNN on MR, more for a
Transformer) from a worker thread. glibc serves a block that large from a thread's arena with a fresh `mmap` and
returns it with `munmap` when the step ends, so every step touches every page of it for the first time: 17k to
243k page faults a step here, 9-25% of a training step's wall time (a fault costs more on a VM).
With one arena, no `mmap` for large blocks and no trimming, a freed block stays in the heap and the next step
reuses it. Results do not change: only where buffers live. The cost is that the process keeps its peak heap.

`NLPDL_KEEP_FREED_MEMORY=0` leaves glibc's defaults. Nothing is done on non-glibc systems (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8


def keep_freed_memory() -> bool:
    """Configure glibc malloc as above; True when it took effect. Call before JAX starts its threads (the arena
    limit only binds threads that have not allocated yet)."""
    if os.environ.get("NLPDL_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2 ** 31 - 1)))
