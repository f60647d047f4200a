"""Faust's private API, as `stream.worker.delivery` uses it: each test fails when the
installed Faust no longer has what the module relies on, so an upgrade is re-checked
rather than silently breaking the delivery guarantees."""

from __future__ import annotations

import inspect
from importlib import metadata

import faust
from faust.tables.base import Collection
from faust.tables.manager import TableManager
from faust.tables.table import Table
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer

from stream.worker import delivery


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
