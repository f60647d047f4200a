"""Benchmarks (DESIGN.md section 6), and the harness they share: timed workloads, repeated
and interleaved, on one pinned core, with the machine described next to the numbers.

Benchmarks are run from the command line (`python -m stream.cli bench ...`), never as
timed tests: the tests check the shape and arithmetic of a report, not its speed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Rate:
    """Units per second over the repetitions of one workload."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        lo, hi, mid = min(self.samples), max(self.samples), self.median
        return {
            "median": mid,
            "min": lo,
            "max": hi,
            "spread_pct": 100.0 * (hi - lo) / mid,
            "samples": list(self.samples),
        }


@dataclass(slots=True)
class Workload:
    """A call to time and the units (decisions, draws) one call produces. `calls` is how
    many calls one repetition makes, set by `calibrate`."""

    name: str
    call: Callable[[], object]
    per_call: int
    calls: int = 1
    samples: list[float] = field(default_factory=list)

    def time_once(self) -> float:
        call, start = self.call, time.perf_counter()
        for _ in range(self.calls):
            call()
        return time.perf_counter() - start

    def calibrate(self, min_seconds: float, warmup: int = 3) -> None:
        """Warm up (caches, tables, allocator), then size a repetition to last
        at least `min_seconds`."""
        for _ in range(warmup):
            self.call()
        elapsed = self.time_once()
        while elapsed < min_seconds:
            grow = min(min_seconds / max(elapsed, 1e-9) * 1.2, 100.0)
            self.calls = max(self.calls + 1, int(self.calls * grow))
            elapsed = self.time_once()

    def repeat(self) -> None:
        self.samples.append(self.calls * self.per_call / self.time_once())

    def rate(self) -> Rate:
        return Rate(tuple(self.samples))


def measure(
    workloads: Sequence[Workload],
    repeats: int,
    min_seconds: float,
    step: Callable[[], object] = lambda: None,
) -> dict[str, Rate]:
    """Calibrate every workload, then run the repetitions round-robin across them, so a
    change in machine load during the run affects every workload alike."""
    for w in workloads:
        w.calibrate(min_seconds)
        step()
    for _ in range(repeats):
        for w in workloads:
            w.repeat()
            step()
    return {w.name: w.rate() for w in workloads}


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run on one core; the previous affinity is restored afterwards."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(packages: Sequence[str] = ("numpy",)) -> dict[str, Any]:
    """What the numbers were measured on, read when called (so inside `pinned`)."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity": affinity,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: importlib.metadata.version(name) for name in packages},
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_"))},
    }
