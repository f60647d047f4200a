"""Consumer lag: end offset minus committed offset per partition of our own topics, and
partitions the worker no longer holds leave the gauge."""

from __future__ import annotations

from typing import Any, NamedTuple

from stream.lag import LagGauge, lags
from stream.metrics import Metrics


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, ends: dict[TP, int], committed: dict[TP, int | None]) -> None:
        self.ends = ends
        self._committed_offset = committed
        self.positions = {tp: 7 for tp in ends}

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


def series(metrics: Metrics) -> dict[tuple[str, str], float]:
    (family,) = metrics.consumer_lag.collect()
    return {(s.labels["topic"], s.labels["partition"]): s.value for s in family.samples}


def test_lag_is_end_minus_committed_else_position_and_never_negative() -> None:
    a, b, c = TP("sends", 0), TP("sends", 1), TP("clicks", 0)
    got = lags({a: 100, b: 50, c: 5}, {a: 40, b: None, c: 9}, {b: 20})
    assert got == {("sends", 0): 60, ("sends", 1): 30, ("clicks", 0): 0}


async def test_only_our_topics_and_held_partitions_are_reported() -> None:
    metrics = Metrics()
    gauge = LagGauge(metrics, {"sends", "clicks"})
    ends = {TP("sends", 0): 10, TP("sends", 1): 20, TP("app-changelog", 0): 99}
    consumer: Any = FakeConsumer(ends, {TP("sends", 0): 4, TP("sends", 1): None})
    await gauge.refresh(consumer)
    assert series(metrics) == {("sends", "0"): 6.0, ("sends", "1"): 13.0}

    del consumer.ends[TP("sends", 1)]  # revoked in a rebalance
    consumer.ends[TP("clicks", 2)] = 3
    consumer._committed_offset[TP("clicks", 2)] = 3
    await gauge.refresh(consumer)
    assert series(metrics) == {("sends", "0"): 6.0, ("clicks", "2"): 0.0}
