"""The recomputation over Kafka: every event topic-partition from its start to the cut,
folded by `stream.job.recompute.Recompute`, in one process or several.

Partition number p of the sends, clicks and conversions topics holds the same accounts,
so process i takes every p with p % processes == i and folds whole accounts; the parent
only joins the tallies. Processes are spawned (librdkafka's threads do not survive a
fork) and report progress through a queue.
"""

from __future__ import annotations

import copyreg
import gc
import multiprocessing as mp
import queue
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from selector.reconcile import Tally
from stream.adapters.kafka_reader import Range, ReadError, open_consumer, read_ranges
from stream.job.recompute import Recompute, Scope
from stream.settings import Settings
from stream.wire import codec


def read_only(value: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(value)


def _mapping_proxy(value: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return read_only, (dict(value),)


# A child's result crosses a process boundary pickled; the stats' read-only mappings
# (counts, event-time buckets) are rebuilt as read-only mappings on the other side.
copyreg.pickle(MappingProxyType, _mapping_proxy)

TP = tuple[str, int]
PROGRESS_EVERY = 50_000


@dataclass(frozen=True, slots=True)
class Task:
    settings: Settings
    scope: Scope
    ranges: Mapping[TP, Range]
    kinds: Mapping[str, str]  # topic -> event kind
    limits: codec.Limits
    now: float


@dataclass(frozen=True, slots=True)
class Folded:
    tallies: dict[str, Tally]
    outcomes: Counter[tuple[str, str]]


def fold_ranges(task: Task, progress: Callable[[int], None] = lambda n: None) -> Folded:
    """Read and fold the task's ranges in this process.

    The garbage collector is off meanwhile: the fold allocates a short-lived dict per
    record and keeps millions of event ids, and collections that walk the young
    generation over and over cost a third of the rate; the fold creates no cycles."""
    fold = Recompute(task.scope, task.limits, task.now)
    consumer = open_consumer(task.settings)
    collecting = gc.isenabled()
    gc.disable()
    try:
        read_ranges(
            consumer,
            task.ranges,
            lambda topic, p, run: fold.feed(task.kinds[topic], topic, p, run),  # type: ignore[arg-type]
            progress,
        )
    finally:
        consumer.close()
        if collecting:
            gc.enable()
    return Folded(fold.tallies, fold.outcomes)


def recompute(task: Task, processes: int, progress: Callable[[int], None]) -> Folded:
    """Fold every range of `task`, split by partition number over `processes`."""
    numbers = sorted({p for _, p in task.ranges})
    processes = max(1, min(processes, len(numbers)))
    if processes == 1:
        return fold_ranges(task, progress)
    parts = [
        Task(
            task.settings,
            task.scope,
            {tp: r for tp, r in task.ranges.items() if tp[1] % processes == i},
            task.kinds,
            task.limits,
            task.now,
        )
        for i in range(processes)
    ]
    return _join(_run_spawned(parts, progress))


def _child(index: int, task: Task, out: Any) -> None:
    pending = 0

    def report(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= PROGRESS_EVERY:
            out.put(("progress", index, pending))
            pending = 0

    try:
        folded = fold_ranges(task, report)
        out.put(("progress", index, pending))
        out.put(("done", index, folded))
    except Exception as exc:  # reported to the parent, which raises it
        out.put(("error", index, f"{type(exc).__name__}: {exc}"))


def _run_spawned(parts: list[Task], progress: Callable[[int], None]) -> list[Folded]:
    context = mp.get_context("spawn")
    out = context.Queue()
    children = [context.Process(target=_child, args=(i, t, out)) for i, t in enumerate(parts)]
    for child in children:
        child.start()
    results: dict[int, Folded] = {}
    try:
        while len(results) < len(children):
            try:
                kind, index, payload = out.get(timeout=1.0)
            except queue.Empty:
                dead = [i for i, c in enumerate(children) if not c.is_alive() and i not in results]
                if dead and out.empty():
                    raise ReadError(f"recompute process {dead[0]} died without a result") from None
                continue
            if kind == "progress":
                progress(payload)
            elif kind == "error":
                raise ReadError(f"recompute process {index}: {payload}")
            else:
                results[index] = payload
    finally:
        for child in children:
            if child.is_alive() and len(results) < len(children):
                child.terminate()
            child.join(timeout=10)
    return [results[i] for i in range(len(children))]


def _join(parts: list[Folded]) -> Folded:
    tallies: dict[str, Tally] = {}
    outcomes: Counter[tuple[str, str]] = Counter()
    for part in parts:
        for account, tally in part.tallies.items():
            # disjoint for keyed events; a keyless event may land in any partition
            mine = tallies.setdefault(account, Tally(tally.half_life_seconds))
            mine.absorb(tally)
        outcomes.update(part.outcomes)
    return Folded(tallies, outcomes)
