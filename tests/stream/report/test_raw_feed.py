"""The raw values of the topics through `stream.report.raw` (columns) give the report the
codec gives value by value (`selector.live_report.report_from_raw`)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.report_workload import raw_of, workload
from selector.live_join import JoinAccumulator
from selector.live_report import LiveReport, report_from_raw
from stream.report import raw as raw_module
from stream.report.raw import ColumnFeed, report_from_bytes
from stream.wire import codec


def same(a: LiveReport, b: LiveReport) -> bool:
    return repr(a) == repr(b)  # NaN fields compare equal by repr


@pytest.fixture(scope="module")
def items() -> list[tuple[Any, bytes | None]]:
    return raw_of(workload(6_000, 3))  # duplicates and cut values among them


def test_the_report_of_columns_is_the_codecs(items: list[tuple[Any, bytes | None]]) -> None:
    want = report_from_raw(items, codec.decode)
    got = report_from_bytes(items)
    assert got.undecodable == want.undecodable and sum(got.undecodable["send"].values()) > 0
    assert got.unmatched["send"]["duplicate"] > 0
    assert same(got, want)


def test_small_batches_and_interleaved_kinds_change_nothing(
    items: list[tuple[Any, bytes | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    shuffled = list(items)
    random.Random(5).shuffle(shuffled)
    shuffled += [("dead_letter", b"{}"), ("send", None)]
    want = report_from_raw(shuffled, codec.decode)
    monkeypatch.setattr(raw_module, "BATCH", 97)
    assert same(report_from_bytes(shuffled), want)
    assert want.unknown_records == 1


def test_a_feed_hands_everything_over_on_close() -> None:
    accumulator = JoinAccumulator()
    feed = ColumnFeed(accumulator)
    feed.add_kind("send", [b"{", None])
    assert accumulator.finish().records["send"] == 0
    feed.close()
    assert accumulator.finish().undecodable == {"send": {"malformed_json": 2}}
