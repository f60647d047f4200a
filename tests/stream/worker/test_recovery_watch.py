"""The recovery watch: which partitions count as stalled, and the private parts of Faust
it reads and calls (re-checked when Faust changes)."""

from __future__ import annotations

import inspect

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer

from stream.worker.recovery_watch import stalled


def test_a_partition_with_records_left_and_nothing_received_is_stalled() -> None:
    found = stalled({"a"}, {"a": -1}, {"a": 435}, {}, started_at=100.0, now=131.0, stall_seconds=30)
    assert found == {"a": 0}


def test_the_seek_is_to_the_record_after_the_last_applied() -> None:
    found = stalled({"a"}, {"a": 99}, {"a": 435}, {"a": 95.0}, 90.0, 126.0, 30.0)
    assert found == {"a": 100}


def test_recent_records_or_none_left_are_not_stalled() -> None:
    args = ({"a", "b", "c"}, {"a": 10, "b": 435, "c": -1}, {"a": 435, "b": 435, "c": -1})
    # a received 10 s ago; b is read to its highwater; c is an empty changelog
    assert stalled(*args, {"a": 121.0}, 100.0, 131.0, 30.0) == {}


def test_a_record_before_this_recovery_does_not_count() -> None:
    # received at 50, before the recovery that started at 100: stalled from 100 on
    assert stalled({"a"}, {"a": 5}, {"a": 9}, {"a": 50.0}, 100.0, 129.0, 30.0) == {}
    assert stalled({"a"}, {"a": 5}, {"a": 9}, {"a": 50.0}, 100.0, 130.0, 30.0) == {"a": 6}


def test_faust_has_what_the_watch_reads_and_calls() -> None:
    init = inspect.getsource(Recovery.__init__)
    for name in ("active_offsets", "active_highwaters", "_active_events_received_at"):
        assert f"self.{name} =" in init
    started = inspect.getsource(Recovery._set_recovery_started)
    assert "self.in_recovery = True" in started
    assert "self._recovery_started_at = monotonic()" in started
    slurp = inspect.getsource(Recovery._slurp_changelogs.fun)
    assert "active_events_received_at[tp] = now" in slurp and "now = monotonic()" in slurp
    assert list(inspect.signature(Consumer.resume_partitions).parameters) == ["self", "tps"]
    assert "partitions" in inspect.signature(Consumer.seek_wait).parameters
