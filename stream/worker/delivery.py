"""Delivery: every touch of Faust's private API, here and nowhere else, and what it is
for: that the agents see every message of their partitions, that a batch's table writes
are stored before its offsets are committed, that a rebalance never rewinds a table nor
lets a batch it overtook write, and that commits keep moving after a takeover.

The continuity check itself (plain code) is `stream.worker.continuity`, re-exported here;
where each partition resumes after an assignment is `stream.worker.resume`.

Faust's private API. Each use below names the faust-streaming version it was checked
against (`CHECKED_FAUST`) and the fault it works around; `tests/stream/worker/
test_delivery.py` fails if Faust changes under any of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from faust import App, Table
from faust.types import TP

from stream.adapters.producer import partition_for
from stream.wire.envelope import Incoming
from stream.worker.continuity import Continuity, Jump, TopicPartition, with_missing

__all__ = ["Continuity", "Jump", "with_missing"]  # kept importable from here

log = logging.getLogger(__name__)

# The faust-streaming release every private-API use below was read against.
CHECKED_FAUST = "0.15.3"


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


def mark_read(app: App, jumps: Sequence[Jump], batch: Iterable[Incoming] = ()) -> None:
    """Acknowledge to Faust's consumer the messages of `jumps`, which the agent read and
    applied itself (they are in `batch`), unless the consumer already counts them as done.

    Private: `Consumer.ack` is public but takes Faust's own `Message`; we pass a stand-in
    with the four attributes it reads (checked against `CHECKED_FAUST`). Its commit stops
    at the first offset it has not seen acknowledged, so without this the committed
    offset would stay there. Called only after the batch's writes are stored, so a crash
    before it still reads them again.

    Private: `Consumer._acked` and `Consumer._gap`. The fetch loop (`_drain_messages`)
    records a jump in offsets as a gap, and `_new_offset` adds the gap's offsets to the
    acknowledged list without its index, so an offset acknowledged again is in the list
    twice. `consecutive_numbers` then splits the list at every repeat, and each commit
    (one per `broker_commit_interval`) moves the committed offset by one: after a
    takeover, whose seek race makes such jumps, the committed offsets of the moved
    partitions crawled until the next rebalance. Offsets the consumer already holds are
    therefore not acknowledged again.

    Private: `Consumer._committed_offset` (the group's commit, Kafka's "next to read").
    Offsets below it need no acknowledgement; with nothing committed, Faust's first
    commit starts at the lowest acknowledged offset, so none below the first message of
    `batch` is needed either (a partition read from offset 0 whose head retention or
    compaction removed would otherwise acknowledge every removed offset).
    """
    consumer: Any = app.consumer
    firsts: dict[TopicPartition, int] = {}
    for m in batch:
        firsts[m.topic, m.partition] = min(firsts.get((m.topic, m.partition), m.offset), m.offset)
    for jump in jumps:
        tp = TP(jump.topic, jump.partition)
        committed = consumer._committed_offset.get(tp)
        if committed is None:
            committed = firsts.get((jump.topic, jump.partition), jump.got)
        held = set(consumer._acked.get(tp, ()))
        gap = consumer._gap.get(tp)
        for offset in range(max(jump.expected, committed), jump.got):
            if offset not in held and not (gap and gap.overlaps(offset)):
                consumer.ack(_Read(tp, offset))


def hold_back(events: Iterable[Any]) -> None:
    """Keep the group from committing a batch whose handling failed or was cancelled.

    Faust's `Stream.take_events` acknowledges a batch's events when the agent's loop body
    ends, by an exception or a cancellation too, and the consumer commits what is
    acknowledged, also as the worker stops after a SIGTERM, once its agents are
    cancelled. A batch cut short would then be committed without being applied.

    Private: `Message.acked` (checked against `CHECKED_FAUST`). `Message.ack` does
    nothing for a message already marked acknowledged, so marking the batch's messages
    here keeps `take_events` from handing them to `Consumer.ack`: the commit stops
    before them, and the agent reads them again (`Continuity.rewind`, or the next
    holder's resume point); the durable record skips what was applied.
    """
    for event in events:
        event.message.acked = True


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


class Ownership:
    """Whether a batch may still change state: taken after the latest rebalance was
    over, of messages fetched in the current group generation, with no rebalance begun
    since.

    Undocumented attributes (checked against `CHECKED_FAUST`): `App.rebalancing` and
    `App.rebalancing_count`, which Faust's rebalance listener sets synchronously when a
    rebalance starts (`on_rebalance_start`) and which stay set until its recovery is over;
    `App.consumer_generation_id` and `Message.generation_id`, the group generation now
    and when the message was fetched. The fault: with `stream_wait_empty=False` Faust
    does not wait for agents at a revocation, and `Stream.take_events` keeps its own
    buffer, which `flow_control.clear()` does not empty, so a batch taken before a
    rebalance goes on after it, for partitions that may belong to another worker by then.
    Such a batch changes nothing: its messages are read again from the durable record's
    resume point by whichever worker holds the partition.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.dropped = 0

    def take(self, events: Sequence[Any]) -> tuple[int, list[Any]]:
        """A token for `holds`, and the events of the current generation (none while a
        rebalance is going on)."""
        app = self.app
        token = app.rebalancing_count
        if app.rebalancing:
            current: list[Any] = []
        else:
            generation = app.consumer_generation_id
            current = [e for e in events if e.message.generation_id == generation]
        self.dropped += len(events) - len(current)
        return token, current

    def holds(self, token: int) -> bool:
        """No rebalance has begun since `take` gave `token`."""
        return not self.app.rebalancing and self.app.rebalancing_count == token


def assigned(app: App) -> set[TopicPartition]:
    """The topic-partitions assigned to this worker now."""
    return {(tp.topic, tp.partition) for tp in app.consumer.assignment()}


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


class OwnWrites:
    """This process's changelog writes of a table: per key, the highest offset the
    broker stored, and the writes still in flight."""

    def __init__(self) -> None:
        self.stored: dict[Any, int] = {}
        self.in_flight: dict[Any, int] = {}
        self.pending: set[asyncio.Future[Any]] = set()
        self.ignored = 0  # changelog records not applied because this process wrote later
        self.on_ignored: Callable[[int], Any] | None = None

    def sent(self, key: Any, future: asyncio.Future[Any]) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.pending.add(future)
        future.add_done_callback(lambda f: self._settled(key, f))

    def _settled(self, key: Any, future: asyncio.Future[Any]) -> None:
        self.pending.discard(future)
        left = self.in_flight.pop(key, 1) - 1
        if left > 0:
            self.in_flight[key] = left
        if not future.cancelled() and future.exception() is None:
            self.stored[key] = max(self.stored.get(key, -1), future.result().offset)

    def supersedes(self, key: Any, offset: int) -> bool:
        """Whether this process has written `key` at `offset` or later (or is writing it
        now), so a changelog record of `key` at `offset` is not newer than its value."""
        return key in self.in_flight or offset <= self.stored.get(key, -1)


class ConfirmedTable(Table[Any, Any]):
    """A table whose changelog writes can be awaited until the broker has stored them,
    and which never takes back a value older than one it wrote itself.

    Private: overrides `Table.on_key_set` and calls `send_changelog`,
    `partition_for_key` and `_sensor_on_set` as Faust's own does (checked against
    `CHECKED_FAUST`), keeping the future `send_changelog` returns. Faust commits offsets
    after flushing its producer, but that flush gives up on its send queue after 0.1 s
    without progress, so without the confirmation a commit can overtake a changelog
    write, and a crash then loses the write while its events count as done.

    Private: overrides `Collection.partition_for_key` (checked against `CHECKED_FAUST`):
    with `use_partitioner` Faust returns None there and `Channel.as_future_message` then
    asks the producer's metadata for the changelog's partitions as the write is made;
    around a rebalance that metadata can lack the topic for a moment, and the write
    raised (`TypeError` in aiokafka's `_partition`), crashing the agent mid-batch. The
    partition is the one aiokafka's default partitioner picks for the raw key
    (`stream.adapters.producer.partition_for`), computed here without the metadata.

    Private: overrides `Collection.apply_changelog_batch`, which Faust's `Recovery`
    calls with the changelog records it read. `Recovery._slurp_changelogs` keeps
    buffering records of active partitions after a recovery has ended (a fetch in
    flight, or the table's own writes made while the recovery ran), and applies them at
    the next `flush_buffers`, which `App._on_partitions_revoked` calls first thing at the
    next rebalance, and the next recovery again: with the in-memory store that puts
    values back that the agent has since replaced, and a rebalance rewinds the table to
    the previous recovery. Records of a key this process wrote at a later offset (or is
    writing) are therefore left out; records another worker wrote after this one are
    newer, and are applied.
    """

    def _own(self) -> OwnWrites:
        return self.__dict__.setdefault("_own_writes", OwnWrites())  # type: ignore[no-any-return]

    def partition_for_key(self, key: Any) -> int | None:
        count = self.partitions
        if self.use_partitioner and isinstance(key, bytes) and count:
            return partition_for(key, count)
        return super().partition_for_key(key)

    def on_key_set(self, key: Any, value: Any) -> None:
        future = self.send_changelog(self.partition_for_key(key), key, value)
        self._own().sent(key, future)
        self.__dict__.setdefault("_unconfirmed", []).append(future)
        self._sensor_on_set(self, key, value)

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        own = self._own()
        events = list(batch)
        fresh = [e for e in events if not own.supersedes(e.key, e.message.offset)]
        left_out = len(events) - len(fresh)
        if left_out:
            own.ignored += left_out
            if own.on_ignored is not None:
                own.on_ignored(left_out)
            log.info("%s: left out %d records older than own writes", self.name, left_out)
        super().apply_changelog_batch(fresh)

    def count_ignored(self, callback: Callable[[int], Any]) -> None:
        """Call `callback(n)` whenever a recovery leaves out n records."""
        self._own().on_ignored = callback

    async def settle(self) -> None:
        """Wait until every write in flight is stored or has failed."""
        pending = list(self._own().pending)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

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


class PartitionTable(ConfirmedTable):
    """A table keyed by a partition number (its decimal digits): each key's changelog
    record goes to that partition, so the value moves with the partition it describes.

    Private: overrides `Collection.partition_for_key` (checked against `CHECKED_FAUST`),
    which otherwise takes the current event's partition or the key's hash."""

    def partition_for_key(self, key: Any) -> int | None:
        return int(key)
