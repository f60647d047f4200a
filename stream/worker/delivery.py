"""Delivery: that the agents see every message of their partitions, that a batch's table
writes are stored before its offsets are committed, and every touch of Faust's private
API, here and nowhere else.

Continuity. Event topics are neither compacted nor transactional, so their offsets are
contiguous. After an assignment the agent must first see the group's committed offset,
and then n + 1 right after n. A jump means messages were dropped between the fetch and
the agent: Faust resumes stream partitions before it seeks them to the committed
offsets, and a fetch in flight across that seek delivers later offsets while it records
the earlier ones as a gap that its commit then passes. Acknowledging the batch would lose
the dropped messages for good. The agent therefore reads them directly from the
partition (`with_missing`) and applies them in the same batch, before the messages that
follow them; the offsets kept in the stats make any later re-read exact.

Faust's private API. Each use below names the faust-streaming version it was checked
against (`CHECKED_FAUST`) and the fault it works around; `tests/stream/worker/
test_delivery.py` fails if Faust changes under any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faust import App, Table
from faust.types import TP

from stream.wire.envelope import Incoming

TopicPartition = tuple[str, int]
# The faust-streaming release every private-API use below was read against.
CHECKED_FAUST = "0.15.3"


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


# --- Faust's private API ----------------------------------------------------------------------


def committed_offset(app: App, topic: str, partition: int) -> int | None:
    """The group's committed offset the consumer started this partition from; None when
    nothing is committed yet.

    Private: `Consumer._committed_offset` (checked against `CHECKED_FAUST`). Faust keeps
    it after seeking, and it is the only record of where the assignment started, which
    the continuity check needs to see a jump in the very first batch.
    """
    offsets = getattr(app.consumer, "_committed_offset", {})
    value = offsets.get(TP(topic, partition))
    return int(value) if value is not None else None


class _Read:
    """What Faust's `Consumer.ack` reads of a message (`tp`, `topic`, `offset`, `acked`):
    the agent read this one itself."""

    def __init__(self, tp: TP, offset: int) -> None:
        self.tp, self.topic, self.offset, self.acked = tp, tp.topic, offset, False


def mark_read(app: App, jumps: Sequence[Jump]) -> None:
    """Acknowledge to Faust's consumer the messages of `jumps`, which the agent read and
    applied itself.

    Private: `Consumer.ack` is public but takes Faust's own `Message`; we pass a stand-in
    with the four attributes it reads (checked against `CHECKED_FAUST`). Its commit stops
    at the first offset it has not seen acknowledged, so without this the committed
    offset would stay there. Called only after the batch's writes are stored, so a crash
    before it still reads them again.
    """
    for jump in jumps:
        tp = TP(jump.topic, jump.partition)
        for offset in range(jump.expected, jump.got):
            app.consumer.ack(_Read(tp, offset))  # type: ignore[arg-type]


async def consumer_offsets(
    consumer: Any, topics: Iterable[str]
) -> tuple[dict[TP, int], dict[TP, int | None], dict[TP, int]]:
    """End offsets, committed offsets and (where nothing is committed) positions of the
    consumer's assigned partitions of `topics`, for the lag gauge.

    Private: `Consumer._committed_offset`, Faust's record of the last committed offset
    per partition (Kafka's "next to read"), checked against `CHECKED_FAUST`.
    """
    wanted = frozenset(topics)
    tps = [tp for tp in consumer.assignment() if tp.topic in wanted]
    ends = await consumer.highwaters(*tps) if tps else {}
    committed = {tp: consumer._committed_offset.get(tp) for tp in tps}
    positions = {}
    for tp in tps:
        if committed[tp] is None:
            positions[tp] = await consumer.position(tp) or 0
    return ends, committed, positions


def recovery_completed(app: App) -> bool:
    """Whether the tables' changelog recovery has finished (`app.tables.recovery`, an
    attribute of Faust's `TableManager` that its types do not declare)."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    return bool(recovery.completed.is_set()) and not app.in_recovery


class LedgerValue:
    """Names a table's value codec (the `ledger` codec of `stream.worker.tables`).

    Private: Faust reads `_options.serializer` off the value type when the table is built
    (checked against `CHECKED_FAUST`) and uses it for the changelog and for recovery
    alike; a class with that attribute is the only way to give a table a codec of its own
    without making the value a Faust `Record`.
    """

    class _options:
        serializer = "ledger"

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
        """The codec has already built the `Ledger`; Faust calls this on every load."""
        return data


class ConfirmedTable(Table[Any, Any]):
    """A table whose changelog writes can be awaited until the broker has stored them.

    Private: overrides `Table.on_key_set` and calls `send_changelog`,
    `partition_for_key` and `_sensor_on_set` as Faust's own does (checked against
    `CHECKED_FAUST`), keeping the future `send_changelog` returns. Faust commits offsets
    after flushing its producer, but that flush gives up on its send queue after 0.1 s
    without progress, so without the confirmation a commit can overtake a changelog
    write, and a crash then loses the write while its events count as done.
    """

    def on_key_set(self, key: Any, value: Any) -> None:
        future = self.send_changelog(self.partition_for_key(key), key, value)
        self.__dict__.setdefault("_unconfirmed", []).append(future)
        self._sensor_on_set(self, key, value)

    async def ready_to_write(self) -> None:
        """Wait until the producer knows the changelog topic's partitions: a write picks
        its partition as it is made, and fails before the metadata has arrived (right
        after a start). Private: `Producer._ensure_producer` gives the aiokafka producer."""
        if not self.__dict__.get("_ready"):
            producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
            await producer.partitions_for(self.changelog_topic.get_topic_name())
            self.__dict__["_ready"] = True

    async def confirm_writes(self) -> None:
        """Wait until every changelog write so far is stored; raises if one failed."""
        pending = self.__dict__.get("_unconfirmed")
        if pending:
            self.__dict__["_unconfirmed"] = []
            await asyncio.gather(*pending)
