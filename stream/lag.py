"""Consumer lag per topic and partition, from the worker's own consumer.

Lag is the partition's end offset (highwater) minus the committed offset, the offset a
restarted worker would resume from: what `kafka-consumer-groups --describe` calls lag.
Before the first commit of a partition the consumer's position stands in. Only the
service's own topics are reported (not the table changelogs the worker reads during
recovery), so the label values are bounded by topics x partitions; partitions this worker
no longer holds are removed from the gauge.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from stream.metrics import Metrics

log = logging.getLogger(__name__)


class TopicPartition(Protocol):
    topic: str
    partition: int


def lags(
    ends: Mapping[Any, int], committed: Mapping[Any, int | None], positions: Mapping[Any, int]
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> messages not yet committed, never negative."""
    out = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        if done is None:
            done = positions.get(tp, 0)
        out[tp.topic, tp.partition] = max(0, int(end) - int(done))
    return out


class LagGauge:
    """Sets `creative_selection_consumer_lag_messages` from a Faust consumer."""

    def __init__(self, metrics: Metrics, topics: Collection[str]) -> None:
        self._metrics = metrics
        self._topics = frozenset(topics)
        self._labelled: set[tuple[str, int]] = set()

    async def refresh(self, consumer: Any) -> dict[tuple[str, int], int]:
        tps = [tp for tp in consumer.assignment() if tp.topic in self._topics]
        ends = await consumer.highwaters(*tps) if tps else {}
        # Faust keeps the last committed offset per partition (Kafka's "next to read").
        committed = {tp: consumer._committed_offset.get(tp) for tp in tps}
        positions = {}
        for tp in tps:
            if committed[tp] is None:
                positions[tp] = await consumer.position(tp) or 0
        current = lags(ends, committed, positions)
        self.set(current)
        return current

    def set(self, current: Mapping[tuple[str, int], int]) -> None:
        gauge = self._metrics.consumer_lag
        for topic, partition in self._labelled - set(current):
            gauge.remove(topic, str(partition))
        for (topic, partition), lag in current.items():
            gauge.labels(topic, str(partition)).set(lag)
        self._labelled = set(current)
