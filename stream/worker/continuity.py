"""Continuity: that an agent sees every offset of its partitions, from where the
durable record says it resumes (`stream.worker.resume`), and the messages it missed read
back in their place. Plain code over `Incoming`, tested without Kafka.

Event topics are neither compacted nor transactional, so their offsets are contiguous:
after an assignment the agent must first see its resume point, and then n + 1 right
after n. A jump means messages were dropped between the fetch and the agent: Faust
resumes stream partitions before it seeks them to the committed offsets, and a fetch in
flight across that seek delivers later offsets while it records the earlier ones as a
gap that its commit then passes; a batch a rebalance overtook was acknowledged without
being applied. The agent therefore reads the missing messages directly from the
partition (`with_missing`) and applies them in the same batch, before the messages that
follow them; the offsets kept in the stats make any later re-read exact. A hole with no
later message to show it is found by comparing with the commit (`behind`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from stream.wire.envelope import Incoming

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Jump:
    topic: str
    partition: int
    expected: int
    got: int
    # the first message of an assignment came after the offset the durable record (the
    # ledger, the answered-through record) resumes from: the group's commit was ahead
    resume: bool = False

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition} expected offset {self.expected}, got {self.got}"


class Continuity:
    """The next offset expected per topic-partition: from where the durable record says
    the assignment resumes (`resume_at`), else from the group's committed offset, else
    (nothing committed; Faust also reports a commit at 0 as none) from offset 0.

    `contiguous=False` (compacted topics, whose offsets have legitimate holes) checks
    only the first message of each assignment against its resume point. `on_resume` is
    told, for that first message, whether it came after the resume point.
    """

    def __init__(
        self,
        committed: Callable[[str, int], int | None],
        *,
        contiguous: bool = True,
        on_resume: Callable[[str, int, bool], None] | None = None,
    ) -> None:
        self._committed = committed
        self._contiguous = contiguous
        self._on_resume = on_resume
        self._next: dict[TopicPartition, int | None] = {}
        self._starts: dict[TopicPartition, int] = {}

    def resume_at(self, starts: Mapping[TopicPartition, int]) -> None:
        """A new assignment: each partition in `starts` is expected from that offset on,
        whatever was seen before; the others from the committed offset."""
        self._next.clear()
        self._starts = dict(starts)

    def check(self, batch: Iterable[Incoming]) -> list[Jump]:
        """Jumps in `batch`; remembers where each topic-partition got to."""
        jumps = []
        for message in batch:
            tp = (message.topic, message.partition)
            resume = tp not in self._next and tp in self._starts
            if resume:
                expected: int | None = self._starts.pop(tp)
            elif tp in self._next:
                expected = self._next[tp] if self._contiguous else None
            else:  # no record of this partition: the group's commit, else its start
                committed = self._committed(*tp)
                expected = committed if committed is not None else 0
            if resume and self._on_resume is not None and expected is not None:
                self._on_resume(message.topic, message.partition, message.offset > expected)
            if expected is not None and message.offset > expected:
                jumps.append(
                    Jump(message.topic, message.partition, expected, message.offset, resume)
                )
            self._next[tp] = message.offset + 1
        return jumps

    def through(self, topic: str, partition: int) -> int | None:
        """The offset up to which every message of the partition has been seen in this
        assignment (or, before the first, up to which the record says all were)."""
        tp = (topic, partition)
        seen = self._next.get(tp)
        if seen is not None:
            return seen - 1
        return self._starts[tp] - 1 if tp in self._starts else None

    def behind(self, committed: Callable[[str, int], int | None]) -> list[Jump]:
        """Partitions whose committed offset has passed messages this agent never saw
        (no later message came to show the jump: a quiet partition, the end of the
        traffic), from the next expected offset up to the commit."""
        jumps = []
        for tp in sorted({*self._next, *self._starts}):
            resume = tp not in self._next
            expected = self._starts[tp] if resume else self._next[tp]
            at = committed(*tp)
            if expected is not None and at is not None and at > expected:
                jumps.append(Jump(tp[0], tp[1], expected, at, resume))
        return jumps

    def read_through(self, jumps: Iterable[Jump]) -> None:
        """Everything below each jump's `got` has been read (by the agent itself)."""
        for jump in jumps:
            tp = (jump.topic, jump.partition)
            if jump.resume and tp in self._starts and self._on_resume is not None:
                self._on_resume(jump.topic, jump.partition, True)
            self._starts.pop(tp, None)
            self._next[tp] = max(self._next.get(tp) or jump.got, jump.got)

    def rewind(self, firsts: Mapping[TopicPartition, int]) -> None:
        """A batch whose handling failed part-way: its messages from `firsts` on are
        expected again (Faust acknowledges a batch even when its agent raises), so the
        next message, or the sweep, reads them back; the durable record skips what was
        applied."""
        for tp, first in firsts.items():
            seen = self._next.get(tp)
            if seen is not None and first < seen:
                self._next[tp] = first

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """After a revocation the consumer starts again from the committed offsets."""
        for tp in partitions:
            self._next.pop(tp, None)
            self._starts.pop(tp, None)


Fetch = Callable[[Jump], Awaitable[list[Incoming]]]


async def with_missing(
    batch: Sequence[Incoming], jumps: Sequence[Jump], fetch: Fetch
) -> list[Incoming]:
    """The batch with each jump's missing messages (read by `fetch`, all jumps at once)
    placed right before the message that came after them."""
    found = await asyncio.gather(*(fetch(j) for j in jumps))
    fill = {(j.topic, j.partition, j.got): f for j, f in zip(jumps, found, strict=True)}
    out: list[Incoming] = []
    for message in batch:
        out.extend(fill.pop((message.topic, message.partition, message.offset), ()))
        out.append(message)
    return out
