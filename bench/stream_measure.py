"""What the stream benchmark measures with: a raw consumer of selection responses that
matches each to its request by id, the steady-window rate, latency percentiles, and a
poller of the worker's event counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.kafka_config import kafka_config
from stream.local.harness import Worker
from stream.settings import Settings

STEADY = (0.1, 0.9)  # the window: from 10% to 90% of the work done
STALL_SECONDS = 30.0  # no new answer for this long: the rest are unanswered
POLL_SECONDS = 0.25


class Collector:
    """Reads the responses topic from its end (positioned before any request leaves) and
    records when each answer to a request `<tag><index>` arrived (`time.monotonic()`,
    once per fetched batch). Counts errors, duplicates and replies that are not ours."""

    def __init__(
        self, settings: Settings, tag: bytes, expected: int, topic: str | None = None
    ) -> None:
        self.settings = settings
        self.topic = topic or settings.topic("selection-responses")
        self.tag = tag.decode()
        self.expected = expected
        self.arrival = np.full(expected, np.nan)
        self.answered = self.errors = self.duplicates = self.foreign = 0
        self._consumer = AIOKafkaConsumer(
            **kafka_config(settings), group_id=None, enable_auto_commit=False
        )

    async def __aenter__(self) -> Collector:
        await self._consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(self.settings.partitions)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end now, before the first request
            await self._consumer.position(partition)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def collect(self, progress: Callable[[int], object] = lambda n: None) -> None:
        """Until every request is answered, or none was for `STALL_SECONDS`."""
        last = time.monotonic()
        while self.answered < self.expected and time.monotonic() - last < STALL_SECONDS:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=20_000)
            now = time.monotonic()
            before = self.answered
            for records in batches.values():
                for record in records:
                    self._take(record.value, now)
            if self.answered > before:
                progress(self.answered - before)
                last = now

    def _take(self, raw: bytes, now: float) -> None:
        body = orjson.loads(raw)
        batch = body.get("responses") or body.get("requests")  # a batch, or one echoed
        for item in batch if type(batch) is list else [body]:
            self._take_one(item, now)

    def _take_one(self, body: dict[str, Any], now: float) -> None:
        rid = body.get("request_id")
        if not isinstance(rid, str) or not rid.startswith(self.tag):
            self.foreign += 1
            return
        index = int(rid[len(self.tag) :])
        if not math.isnan(self.arrival[index]):
            self.duplicates += 1
            return
        self.arrival[index] = now
        self.answered += 1
        self.errors += body.get("status", "ok") != "ok"  # echoed requests have none

    @property
    def arrivals(self) -> list[float]:
        """Arrival times of the answered requests, in order of arrival."""
        return sorted(self.arrival[~np.isnan(self.arrival)].tolist())

    def latencies(self, t0: float, rate: float) -> np.ndarray[Any, Any]:
        """Arrival minus scheduled send time (`t0 + i / rate`), NaN where unanswered."""
        return self.arrival - (t0 + np.arange(self.expected) / rate)

    def counts(self) -> dict[str, int]:
        return {
            "requests": self.expected,
            "answered": self.answered,
            "unanswered": self.expected - self.answered,
            "errors": self.errors,
            "duplicate_answers": self.duplicates,
            "foreign_answers": self.foreign,
        }


def steady_rate(samples: Sequence[tuple[float, float]], total: float) -> float:
    """Units/s between the moments `STEADY` fractions of `total` were done (linear
    interpolation between samples of (time, done so far)); excludes the warm-up and the
    tail. NaN when there are too few samples."""
    times = np.array([t for t, _ in samples], dtype=float)
    done = np.array([n for _, n in samples], dtype=float)
    lo, hi = (f * total for f in STEADY)
    if len(samples) < 2 or done[-1] < hi or hi <= lo:
        return math.nan
    t_lo, t_hi = np.interp([lo, hi], done, times)
    return float((hi - lo) / (t_hi - t_lo)) if t_hi > t_lo else math.nan


def latency_summary(latency: np.ndarray[Any, Any], warmup: int) -> dict[str, Any]:
    """Percentiles in ms of the answered requests after the first `warmup`."""
    kept = latency[warmup:]
    kept = kept[~np.isnan(kept)] * 1e3
    if kept.size == 0:
        return {"measured": 0}
    p50, p90, p99, p999 = np.percentile(kept, [50, 90, 99, 99.9]).tolist()
    return {
        "warmup_requests": warmup,
        "measured": int(kept.size),
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "p999_ms": p999,
        "max_ms": float(kept.max()),
        "mean_ms": float(kept.mean()),
    }


def cpu_seconds(pid: int | None) -> tuple[float, float]:
    """Seconds a process has run on a CPU, and waited for one while runnable (summed
    over its threads, from /proc/PID/task/*/schedstat); NaN when unknown."""
    if pid is None:
        return math.nan, math.nan
    ran = waited = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return math.nan, math.nan
    for task in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
            on_cpu, on_queue, _ = f.read().split()
            ran, waited = ran + int(on_cpu), waited + int(on_queue)
    return ran / 1e9, waited / 1e9


BATCH_METRIC = "creative_selection_batch_size"


def batches(worker: Worker, agent: str) -> tuple[float, float]:
    """(batches, messages) the agent has processed so far, from its batch-size histogram."""
    count = worker.metric(f"{BATCH_METRIC}_count", agent=agent)
    return count, worker.metric(f"{BATCH_METRIC}_sum", agent=agent)


class CpuMeter:
    """The worker's CPU seconds, the wall seconds and the agent's mean batch size between
    `start` and `stop`."""

    def __init__(self, worker: Worker, agent: str) -> None:
        self.worker, self.agent = worker, agent
        self.pid = worker.proc.pid if worker.proc else None
        self.cpu = self.waited = self.wall = math.nan
        self.batches = (0.0, 0.0)

    def start(self) -> None:
        self.batches = batches(self.worker, self.agent)
        self.cpu, self.waited = cpu_seconds(self.pid)
        self.wall = time.monotonic()

    def stop(self, messages: int) -> dict[str, float]:
        cpu, waited = cpu_seconds(self.pid)
        self.cpu, self.waited = cpu - self.cpu, waited - self.waited
        self.wall = time.monotonic() - self.wall
        count, total = (
            b - a for a, b in zip(self.batches, batches(self.worker, self.agent), strict=True)
        )
        return {
            "mean_batch": total / count if count else math.nan,
            "worker_cpu_seconds": self.cpu,
            "wall_seconds": self.wall,
            "worker_cpu_utilization": self.cpu / self.wall,
            # runnable but not running: the CPU was taken by another process
            "worker_cpu_wait_fraction": self.waited / self.wall,
            "worker_cpu_us_per_message": 1e6 * self.cpu / messages,
        }


Counter = tuple[str, float, int]  # (metric, its value before the phase, how many more)


async def wait_all(
    worker: Worker, counters: Sequence[Counter], bar: Any
) -> tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]:
    """Poll the worker until every counter has counted its total: the work is done when
    the slowest agent is done. Returns the samples of (time, done so far) where done is
    the first counter's total times the least-done counter's fraction, and each
    counter's own samples. Raises TimeoutError when none moves for `STALL_SECONDS`."""
    combined: list[tuple[float, float]] = []
    each: list[list[tuple[float, float]]] = [[] for _ in counters]
    scale = counters[0][2]
    last_change = time.monotonic()
    while True:
        with contextlib.suppress(OSError):
            counted = [
                await asyncio.to_thread(worker.metric, metric) - before
                for metric, before, _ in counters
            ]
            now = time.monotonic()
            for samples, value in zip(each, counted, strict=True):
                if not samples or value > samples[-1][1]:
                    last_change = now
                samples.append((now, value))
            fractions = [v / c[2] for v, c in zip(counted, counters, strict=True)]
            done = scale * min(fractions)
            bar.update(int(done - (combined[-1][1] if combined else 0)))
            combined.append((now, done))
            if done >= scale:
                return combined, each
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{worker.tail()}")
        if time.monotonic() - last_change > STALL_SECONDS:
            where = ", ".join(
                f"{metric} {s[-1][1] if s else 0:g}/{total}"
                for (metric, _, total), s in zip(counters, each, strict=True)
            )
            raise TimeoutError(f"stopped at {where}")
        await asyncio.sleep(POLL_SECONDS)
