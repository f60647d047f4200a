"""Process-level set-up shared by every command."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator(threshold: int = 64 * 1024 * 1024) -> bool:
    """Keep glibc from returning freed heap to the kernel after every batch.

    Decisions allocate and free arrays of ~100 KB per batch; with glibc's defaults each of
    them is mmap'ed or trimmed back to the kernel, and the page faults that follow cost
    more than the arithmetic. Raising both thresholds keeps the pages in the process.
    Returns False where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, threshold) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, threshold) == 1 and ok)
