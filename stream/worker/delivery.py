"""Proof that the stats agent sees every message of its partitions, and the repair when
it does not.

Event topics are neither compacted nor transactional, so their offsets are contiguous.
After an assignment the agent must first see the group's committed offset, and then
n + 1 right after n. A jump means messages were dropped between the fetch and the agent:
Faust resumes stream partitions before it seeks them to the committed offsets, and a
fetch in flight across that seek delivers later offsets while it records the earlier
ones as a gap that its commit then passes. Acknowledging the batch would lose the
dropped messages for good. The agent therefore reads them directly from the partition
(`with_missing`) and applies them in the same batch, before the messages that follow
them; the offsets kept in the stats make any later re-read exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from stream.wire.envelope import Incoming

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


Fetch = Callable[[Jump], Awaitable[list[Incoming]]]


async def with_missing(
    batch: Sequence[Incoming], jumps: Sequence[Jump], fetch: Fetch
) -> list[Incoming]:
    """The batch with each jump's missing messages (read by `fetch`) placed right before
    the message that came after them."""
    fill = {(j.topic, j.partition, j.got): await fetch(j) for j in jumps}
    out: list[Incoming] = []
    for message in batch:
        out.extend(fill.pop((message.topic, message.partition, message.offset), ()))
        out.append(message)
    return out
