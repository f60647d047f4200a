"""Where the stream benchmark's processes run, and how its helper processes start.

On two cores: the worker and the Redis it waits for on one, the broker, the load
generator and the response consumer on the other. Helper processes (load generator,
raw-client probe, echo) start in fresh interpreters (`multiprocessing`, spawn) and talk
over a pipe: ("ready", ...) when set up, ("done", result) at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Layout:
    """Which cores the worker and everything else may use (None: not pinned)."""

    worker: list[int] | None
    others: list[int] | None
    ours: bool = True  # the broker and Redis were started here, so placed here

    @classmethod
    def of(cls, pin: bool, ours: bool = True) -> Layout:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not pin or len(cpus) < 2:
            return cls(None, None, ours)
        return cls(cpus[-1:], cpus[:-1], ours)

    def describe(self) -> str:
        if self.worker is None:
            return "not pinned: the worker, broker, Redis and load generator share every core"
        if not self.ours:
            return (
                f"worker pinned to CPU {_cpus(self.worker)}; load generator and response "
                f"consumer on CPU {_cpus(self.others)}; the given Kafka and Redis not pinned"
            )
        return (
            f"worker and Redis pinned to CPU {_cpus(self.worker)} (the worker waits for Redis, "
            f"so they take turns); broker, load generator and response consumer on CPU "
            f"{_cpus(self.others)}; raw probe on CPU {_cpus(self.worker)}"
        )


def _cpus(cpus: list[int] | None) -> str:
    return ",".join(map(str, cpus or []))


def our_redis(redis_url: str) -> int | None:
    """The pid of the redis-server this process started for `redis_url`, if it did."""
    port = b":" + redis_url.rsplit(":", 1)[-1].split("/")[0].encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0]  # redis-server renames itself HOST:PORT
            if parent == os.getpid() and b"redis-server" in title and title.endswith(port):
                return int(entry)
    return None


def pin_process_tree(pid: int, cpus: list[int]) -> None:
    """Every thread of `pid` onto `cpus` (threads started later inherit it)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), set(cpus))


@contextlib.contextmanager
def placed(layout: Layout) -> Iterator[None]:
    """This process (and the broker and Redis it starts) on the `others` cores."""
    if layout.others is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(layout.others))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def spawn(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    """`target(*args, pipe)` in a fresh interpreter; returns (process, our end of the pipe)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    return process, ours


async def receive(pipe: Any, process: Any, timeout: float = 600.0) -> Any:
    """The next message from a child, or RuntimeError if it died first."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(pipe.poll, 0.2):
        if not process.is_alive():
            raise RuntimeError(f"a load process exited ({process.exitcode}) before answering")
        if time.monotonic() > deadline:
            raise TimeoutError("a load process did not answer")
    return pipe.recv()[1]
