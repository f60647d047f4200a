"""Proof that the stats agent sees every message of its partitions.

Event topics are neither compacted nor transactional, so their offsets are contiguous.
After an assignment the agent must first see the group's committed offset, and then
n + 1 right after n. A jump means messages were dropped between the fetch and the agent
(Faust discards queued messages when it suspends the flow, and its commit rule then lets
the offset pass the first dropped one); counting on would lose them for good once the
later offsets are committed. The agent therefore stops the worker before acknowledging
the batch: the next worker reads again from the committed offset, and the offsets kept
in the stats make the re-read exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stream.envelope import Incoming

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Jump:
    topic: str
    partition: int
    expected: int
    got: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition} expected offset {self.expected}, got {self.got}"


class Continuity:
    """The next offset expected per topic-partition, from the committed offset on."""

    def __init__(self, committed: Callable[[str, int], int | None]) -> None:
        self._committed = committed
        self._next: dict[TopicPartition, int | None] = {}

    def check(self, batch: Iterable[Incoming]) -> list[Jump]:
        """Jumps in `batch`; remembers where each topic-partition got to."""
        jumps = []
        for message in batch:
            tp = (message.topic, message.partition)
            expected = self._next[tp] if tp in self._next else self._committed(*tp)
            if expected is not None and message.offset > expected:
                jumps.append(Jump(message.topic, message.partition, expected, message.offset))
            self._next[tp] = message.offset + 1
        return jumps

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """After a revocation the consumer starts again from the committed offsets."""
        for tp in partitions:
            self._next.pop(tp, None)
