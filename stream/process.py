"""Process-level set-up shared by every command."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# Native thread pools of numpy's BLAS (OpenBLAS, MKL) and OpenMP: one thread each.
NATIVE_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
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


def limit_native_threads() -> dict[str, str]:
    """One native thread per numpy call, unless the environment already says otherwise.

    OpenBLAS starts a thread per core at import and lets them spin between calls. A
    worker is one event loop on one core (Kafka's fetcher thread aside), and the
    decisions' numpy calls are small, so such threads only compete with the loop and
    with the other workers on the node (Kubernetes limits a pod's CPU, not the cores
    OpenBLAS sees). Takes effect only before numpy is first imported, so every command
    calls it first; returns the values in force.
    """
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    return {name: os.environ[name] for name in NATIVE_THREAD_VARIABLES}
