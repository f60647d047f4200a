"""Consumer lag: end offset minus committed offset per partition of our own topics,
partitions the worker no longer holds leave the gauge, and a partition with messages
waiting whose offset does not move is reported stalled."""

from __future__ import annotations

from typing import Any, NamedTuple

from stream.ops.lag import LagGauge, lags
from stream.ops.metrics import Metrics
from stream.worker.delivery import consumer_offsets


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


async def refresh(gauge: LagGauge, consumer: Any, now: float) -> dict[tuple[str, int], int]:
    """What the worker's timer does: read the consumer's offsets, then set the gauge."""
    return gauge.refresh(*(await consumer_offsets(consumer, gauge.topics)), now)


def series(metrics: Metrics) -> dict[tuple[str, str], float]:
    (family,) = metrics.consumer_lag.collect()
    return {(s.labels["topic"], s.labels["partition"]): s.value for s in family.samples}


def test_lag_is_end_minus_committed_else_position_and_never_negative() -> None:
    a, b, c = TP("sends", 0), TP("sends", 1), TP("clicks", 0)
    got = lags({a: 100, b: 50, c: 5}, {a: 40, b: None, c: 9}, {b: 20})
    assert got == {("sends", 0): (60, 40), ("sends", 1): (30, 20), ("clicks", 0): (0, 9)}


async def test_only_our_topics_and_held_partitions_are_reported() -> None:
    metrics = Metrics()
    gauge = LagGauge(metrics, {"sends", "clicks"})
    ends = {TP("sends", 0): 10, TP("sends", 1): 20, TP("app-changelog", 0): 99}
    consumer: Any = FakeConsumer(ends, {TP("sends", 0): 4, TP("sends", 1): None})
    await refresh(gauge, consumer, 0.0)
    assert series(metrics) == {("sends", "0"): 6.0, ("sends", "1"): 13.0}

    del consumer.ends[TP("sends", 1)]  # revoked in a rebalance
    consumer.ends[TP("clicks", 2)] = 3
    consumer._committed_offset[TP("clicks", 2)] = 3
    await refresh(gauge, consumer, 10.0)
    assert series(metrics) == {("sends", "0"): 6.0, ("clicks", "2"): 0.0}


async def test_a_partition_is_stalled_when_messages_wait_and_its_offset_stays() -> None:
    gauge = LagGauge(Metrics(), {"sends"}, stall_seconds=60)
    busy, idle = TP("sends", 0), TP("sends", 1)
    consumer: Any = FakeConsumer({busy: 100, idle: 50}, {busy: 10, idle: 50})
    for now in (0.0, 30.0, 60.0):
        await refresh(gauge, consumer, now)
        assert gauge.stalled(now) == []
    await refresh(gauge, consumer, 61.0)
    assert gauge.stalled(61.0) == ["sends:0"]  # 90 waiting, offset 10 since t=0

    consumer._committed_offset[busy] = 11  # one more message done: progress
    await refresh(gauge, consumer, 70.0)
    assert gauge.stalled(130.0) == []
    assert gauge.stalled(131.0) == ["sends:0"]
    consumer.ends[idle] = 51  # a message arrives on the idle partition: its clock starts
    await refresh(gauge, consumer, 200.0)
    assert gauge.stalled(260.0) == ["sends:0"]
    assert gauge.stalled(261.0) == ["sends:0", "sends:1"]
    gauge.forget()  # a refresh failed: nothing is known
    assert gauge.stalled(500.0) == []
