"""Consumer lag per topic and partition, from the worker's own consumer.

Lag is the partition's end offset (highwater) minus the committed offset, the offset a
restarted worker would resume from: what `kafka-consumer-groups --describe` calls lag.
Before the first commit of a partition the consumer's position stands in. Only the
service's own topics are reported (not the table changelogs the worker reads during
recovery), so the label values are bounded by topics x partitions; partitions this worker
no longer holds are removed from the gauge.

It also tells whether consumption advances: a partition with messages waiting whose
committed offset has not moved for `stall_seconds` is stalled, and `/health` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from stream.ops.metrics import Metrics

log = logging.getLogger(__name__)


class TopicPartition(Protocol):
    topic: str
    partition: int


Position = tuple[str, int]  # (topic, partition)


def lags(
    ends: Mapping[Any, int], committed: Mapping[Any, int | None], positions: Mapping[Any, int]
) -> dict[Position, tuple[int, int]]:
    """(topic, partition) -> (messages not yet committed, never negative; the offset
    consumption has reached: the committed one, else the position)."""
    out = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        if done is None:
            done = positions.get(tp, 0)
        out[tp.topic, tp.partition] = (max(0, int(end) - int(done)), int(done))
    return out


class LagGauge:
    """Sets `creative_selection_consumer_lag_messages` from a consumer's offsets."""

    def __init__(
        self, metrics: Metrics, topics: Collection[str], stall_seconds: float = 60.0
    ) -> None:
        self._metrics = metrics
        self._topics = frozenset(topics)
        self.stall_seconds = stall_seconds
        self._labelled: set[Position] = set()
        # per partition: the offset consumption had reached, since when, and whether
        # messages were waiting then
        self._moved: dict[Position, tuple[int, float, bool]] = {}

    @property
    def topics(self) -> frozenset[str]:
        """The topics whose lag is reported (the ones the agents consume)."""
        return self._topics

    def refresh(
        self,
        ends: Mapping[Any, int],
        committed: Mapping[Any, int | None],
        positions: Mapping[Any, int],
        now: float,
    ) -> dict[Position, int]:
        """Set the gauge from the consumer's offsets (`stream.worker.delivery.
        consumer_offsets` reads them) and track which partitions advance."""
        current = lags(ends, committed, positions)
        self._track(current, now)
        lag = {position: messages for position, (messages, _) in current.items()}
        self.set(lag)
        return lag

    def _track(self, current: Mapping[Position, tuple[int, int]], now: float) -> None:
        moved = {}
        for position, (messages, done) in current.items():
            before = self._moved.get(position)
            if before is not None and before[2] and before[0] == done and messages > 0:
                moved[position] = before  # still waiting, and no further than last time
            else:
                moved[position] = (done, now, messages > 0)
        self._moved = moved

    def forget(self) -> None:
        """After a failed refresh: what was known about progress no longer holds."""
        self._moved = {}

    def stalled(self, now: float) -> list[str]:
        """`topic:partition` of the partitions with messages waiting and no progress."""
        return sorted(
            f"{topic}:{partition}"
            for (topic, partition), (_, since, waiting) in self._moved.items()
            if waiting and now - since > self.stall_seconds
        )

    def set(self, current: Mapping[Position, int]) -> None:
        gauge = self._metrics.consumer_lag
        for topic, partition in self._labelled - set(current):
            gauge.remove(topic, str(partition))
        for (topic, partition), lag in current.items():
            gauge.labels(topic, str(partition)).set(lag)
        self._labelled = set(current)
