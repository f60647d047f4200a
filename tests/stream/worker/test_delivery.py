"""Faust's private API, as `stream.worker.delivery` uses it: each test fails when the
installed Faust no longer has what the module relies on, so an upgrade is re-checked
rather than silently breaking the delivery guarantees."""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from collections.abc import Iterable
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.app.base import App
from faust.channels import Channel
from faust.stores.memory import Store as MemoryStore
from faust.streams import Stream
from faust.tables.base import Collection
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP, Message
from intervaltree import IntervalTree

from stream.wire.envelope import Incoming
from stream.worker import delivery
from stream.worker.continuity import Jump


def test_faust_is_the_version_the_module_was_checked_against() -> None:
    # A new version: re-read each private use below in its source, then update CHECKED_FAUST.
    assert metadata.version("faust-streaming") == delivery.CHECKED_FAUST
    assert faust.__version__ == delivery.CHECKED_FAUST


def test_consumer_keeps_the_committed_offset_per_partition() -> None:
    assert "self._committed_offset = " in inspect.getsource(Consumer.__init__)


def test_consumer_ack_reads_only_what_the_stand_in_has() -> None:
    source = inspect.getsource(Consumer.ack)
    used = {name for name in ("tp", "offset", "acked", "topic") if f"message.{name}" in source}
    assert used <= set(vars(delivery._Read(faust.types.TP("t", 0), 5)))
    assert {"tp", "offset", "acked"} <= used


def test_table_on_key_set_is_the_hook_confirmed_table_replaces() -> None:
    source = inspect.getsource(Table.on_key_set)
    assert "self.send_changelog(self.partition_for_key(key), key, value)" in source
    assert "self._sensor_on_set(self, key, value)" in source
    assert "self._sensor_on_set = " in inspect.getsource(Collection.__init__)
    assert delivery.ConfirmedTable.on_key_set is not Table.on_key_set


def test_producer_gives_its_aiokafka_producer() -> None:
    assert callable(Producer._ensure_producer)


def test_table_manager_has_a_recovery_with_a_completed_event() -> None:
    assert isinstance(inspect.getattr_static(TableManager, "recovery"), property)
    from faust.tables.recovery import Recovery

    assert "self.completed = " in inspect.getsource(Recovery.__init__)


def test_tables_read_the_value_types_serializer_from_options() -> None:
    assert "typ._options.serializer" in inspect.getsource(Collection)
    assert delivery.LedgerValue._options.serializer == "ledger"


# --- the faults behind the rebalance losses, and what delivery.py does about them -------------


def test_a_recovery_rereads_what_the_worker_wrote_since_the_last_one() -> None:
    # The offsets of partitions the worker keeps survive a rebalance, so the next recovery
    # seeks there and applies every record written since, the worker's own included.
    source = inspect.getsource(Recovery.on_rebalance)
    assert "if tp in self.active_tps" in source and "self.active_offsets.update" in source
    slurp = inspect.getsource(Recovery._slurp_changelogs.fun)
    assert "table.apply_changelog_batch(buf)" in slurp
    assert "(self.flush_buffers)()" in inspect.getsource(Recovery.on_partitions_revoked)
    assert "table.apply_changelog_batch(buffer)" in inspect.getsource(Recovery.flush_buffers)
    assert "T(self.tables.on_partitions_revoked)(revoked)" in inspect.getsource(
        App._on_partitions_revoked
    )
    # the in-memory store applies whatever it is given
    assert "self.data.update(" in inspect.getsource(MemoryStore.apply_changelog_batch)


def test_faust_does_not_wait_for_agents_at_a_revocation_without_stream_wait_empty() -> None:
    assert "if self.conf.stream_wait_empty:" in inspect.getsource(App._consumer_wait_empty)
    from stream.worker.app import app

    assert app.conf.stream_wait_empty is False
    take = inspect.getsource(Stream.take_events)
    assert "buffer: List[T_co] = []" in take and "events: List[EventT] = []" in take


def event(key: bytes, offset: int, value: bytes, partition: int = 0) -> SimpleNamespace:
    message = SimpleNamespace(key=key, value=value, offset=offset, partition=partition)
    return SimpleNamespace(key=key, value=value, message=message)


def stored(offset: int) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(SimpleNamespace(offset=offset))
    return future


async def test_a_recovery_never_puts_back_a_value_older_than_an_own_write() -> None:
    app = faust.App("delivery-test", store="memory://", autodiscover=False)
    table = delivery.ConfirmedTable(
        app, name="t", default=None, key_type=bytes, value_type=bytes, partitions=4
    )
    writes = iter([stored(10), asyncio.get_running_loop().create_future()])
    table.send_changelog = lambda partition, key, value: next(writes)  # type: ignore[method-assign]
    table.partition_for_key = lambda key: 0  # type: ignore[method-assign]
    table[b"a"] = b"a@10"
    await asyncio.sleep(0)  # the stored write's callback runs
    table[b"b"] = b"b in flight"
    ignored: list[int] = []
    table.count_ignored(ignored.append)
    table.apply_changelog_batch(
        [event(b"a", 4, b"a@4"), event(b"a", 10, b"a@10"), event(b"b", 11, b"b@11")]
    )
    assert (table[b"a"], table[b"b"]) == (b"a@10", b"b in flight")
    table.apply_changelog_batch([event(b"a", 12, b"a@12 by another worker"), event(b"c", 1, b"c")])
    assert (table[b"a"], table[b"c"]) == (b"a@12 by another worker", b"c")
    assert ignored == [3]


async def test_settle_waits_for_writes_in_flight() -> None:
    own = delivery.OwnWrites()
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    own.sent(b"k", future)
    assert own.supersedes(b"k", 10**9)
    asyncio.get_running_loop().call_later(0.01, future.set_result, SimpleNamespace(offset=7))
    table = SimpleNamespace(_own=lambda: own)
    await delivery.ConfirmedTable.settle(table)  # type: ignore[arg-type]
    assert own.stored == {b"k": 7} and not own.pending and not own.supersedes(b"k", 8)


def test_a_partition_table_writes_each_key_to_its_own_partition() -> None:
    assert "self.use_partitioner" in inspect.getsource(Collection.partition_for_key)
    assert delivery.PartitionTable.partition_for_key(None, b"3") == 3  # type: ignore[arg-type]


def test_a_table_picks_the_partition_of_a_key_without_the_producers_metadata() -> None:
    app = faust.App("delivery-test", store="memory://", autodiscover=False)
    table = delivery.ConfirmedTable(
        app, name="t", default=None, key_type=bytes, partitions=4, use_partitioner=True
    )
    keys = [f"acct-{i}".encode() for i in range(200)]
    # aiokafka's default partitioner over the same four partitions, as producers use it
    picked = [DefaultPartitioner()(k, [0, 1, 2, 3], [0, 1, 2, 3]) for k in keys]
    assert [table.partition_for_key(k) for k in keys] == picked
    assert len(set(picked)) == 4
    # what Faust does without a partition: asks the producer's metadata as the write is made
    assert "self.app.producer.key_partition(" in inspect.getsource(Channel.as_future_message)


def test_a_batch_held_back_never_reaches_the_consumers_acknowledgements() -> None:
    message = Message("sends", 0, 7, 0.0, 0, None, b"k", b"v", None, tp=TP("sends", 0))
    message.incref()
    consumer = SimpleNamespace(acked=[])
    delivery.hold_back([SimpleNamespace(message=message)])
    # what `Stream.ack` does for each event of a batch when the agent's loop body ends
    assert message.ack(consumer) is False  # type: ignore[arg-type]
    fresh = Message("sends", 0, 8, 0.0, 0, None, b"k", b"v", None, tp=TP("sends", 0))
    fresh.incref()
    assert fresh.ack(consumer) is True  # type: ignore[arg-type]  # the final ack, as usual
    assert "await self.ack(event)" in inspect.getsource(Stream.take_events)


def test_the_recover_callbacks_run_after_every_recovery_before_streams_resume() -> None:
    assert "await self.call_recover_callbacks()" in inspect.getsource(
        Collection.on_recovery_completed
    )
    completed = inspect.getsource(Recovery.on_recovery_completed)
    assert completed.index("table.on_recovery_completed(") < completed.index("resume_partitions")


def test_ownership_follows_the_generation_and_the_rebalance_count() -> None:
    from faust.types.app import AppT
    from faust.types.tuples import Message

    assert {"rebalancing", "rebalancing_count", "consumer_generation_id"} <= set(vars(AppT))
    assert "self.generation_id" in inspect.getsource(Message.__init__)
    assert "self.rebalancing_count += 1" in inspect.getsource(App.on_rebalance_start)
    app = SimpleNamespace(rebalancing=False, rebalancing_count=3, consumer_generation_id=7)
    owner = delivery.Ownership(app)  # type: ignore[arg-type]
    old, new = (SimpleNamespace(message=SimpleNamespace(generation_id=g)) for g in (6, 7))
    token, current = owner.take([old, new])
    assert current == [new] and owner.holds(token)
    app.rebalancing_count += 1  # a rebalance begins
    assert not owner.holds(token)
    app.rebalancing = True
    assert owner.take([new]) == (4, []) and owner.dropped == 2


def test_gap_offsets_acknowledged_again_make_the_commit_crawl() -> None:
    # The fault: `_new_offset` merges the gap into the acknowledged list without its index,
    # so offsets in both are there twice, and each commit then moves by one.
    tp = TP("sends", 0)
    consumer = commit_state(tp, acked=range(100, 151), gap=(101, 151))
    offsets = []
    for _ in range(3):
        offsets.append(Consumer._new_offset(consumer, tp))  # type: ignore[arg-type]
        consumer._committed_offset[tp] = offsets[-1]  # what a commit does
    assert offsets == [102, 103, 104]
    # without the repeats the same gap is passed in one commit
    consumer = commit_state(tp, acked=[100, *range(151, 161)], gap=(101, 151))
    assert Consumer._new_offset(consumer, tp) == 161  # type: ignore[arg-type]


def test_mark_read_leaves_out_what_the_consumer_already_holds() -> None:
    tp = TP("sends", 0)
    consumer = commit_state(tp, acked=[100, 101], gap=(105, 108))
    acked: list[int] = []
    consumer.ack = lambda message: acked.append(message.offset)
    delivery.mark_read(SimpleNamespace(consumer=consumer), [Jump("sends", 0, 100, 110)])  # type: ignore[arg-type]
    assert acked == [102, 103, 104, 108, 109]
    assert "self._gap = defaultdict(IntervalTree)" in inspect.getsource(Consumer.__init__)
    assert "acked.extend(stuff_to_add)" in inspect.getsource(Consumer._new_offset)


def test_mark_read_starts_at_the_commit_or_the_first_message_read() -> None:
    tp = TP("sends", 0)
    consumer = commit_state(tp, acked=[100], gap=(100, 101))
    acked: list[int] = []
    consumer.ack = lambda message: acked.append(message.offset)
    app: Any = SimpleNamespace(consumer=consumer)
    # a resume point (40) behind the commit (100): only what the commit has not passed
    delivery.mark_read(app, [Jump("sends", 0, 40, 104, resume=True)])
    assert acked == [101, 102, 103]
    # nothing committed: the partition was read from 0, retention had removed 0-899
    acked.clear()
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._acked, consumer._gap = defaultdict(list), defaultdict(IntervalTree)
    read = [Incoming(b"", b"a", "sends", 0, o) for o in range(900, 905)]
    delivery.mark_read(app, [Jump("sends", 0, 0, 904)], read)
    assert acked == [900, 901, 902, 903]
    # which is enough: with nothing committed, Faust commits from the lowest acknowledged
    consumer._acked[tp] = [*acked, 904]
    assert Consumer._new_offset(consumer, tp) == 905  # type: ignore[arg-type]


def commit_state(tp: TP, acked: Iterable[int], gap: tuple[int, int]) -> SimpleNamespace:
    offsets = list(acked)
    tree = IntervalTree()
    tree.addi(*gap)
    return SimpleNamespace(
        _acked=defaultdict(list, {tp: offsets}),
        _acked_index=defaultdict(set, {tp: set(offsets)}),
        _gap=defaultdict(IntervalTree, {tp: tree}),
        _committed_offset=defaultdict(lambda: None, {tp: offsets[0]}),
    )
