"""The stats agent's work, without Kafka: idempotent, and bad input is dead-lettered."""

from __future__ import annotations

import asyncio

import orjson

from selector.reconcile import correction as reconcile_correction
from selector.stats import AccountStats, Counts, Event, fold
from selector.timing import delay_bin
from stream.handlers.catalog import Catalogs
from stream.handlers.ingestion import IngestionService
from stream.handlers.stores import MemoryDedup
from stream.ops.metrics import Metrics
from stream.wire.corrections import to_message
from stream.wire.messages import encode
from tests.stream.handlers.flaky_stores import FlakyDedup, Outage
from tests.stream.handlers.service_fixtures import catalog_table, event, record

KINDS = {
    "sends": "send",
    "clicks": "click",
    "conversions": "conversion",
    "stats-corrections": "stats_correction",
}


class Harness:
    def __init__(self) -> None:
        self.table: dict[bytes, object] = {}
        self.metrics = Metrics()
        self.service = IngestionService(
            kinds=KINDS,
            catalog=Catalogs(catalog_table().get).get,
            stats=self.table.get,  # type: ignore[arg-type]
            dedup=MemoryDedup(),
            metrics=self.metrics,
            dead_letters_topic="dead-letters",
            clock=lambda: 2000.0,
        )

    async def feed(self, batch):  # type: ignore[no-untyped-def]
        updates, letters = await self.service.ingest(batch)
        self.table.update(updates)
        return [orjson.loads(x.value) for x in letters]

    def counts(self, creative: str) -> Counts:
        ledger = self.table[b"acme"]
        return ledger.stats.creative(creative)  # type: ignore[attr-defined]


async def test_each_topic_feeds_its_own_count() -> None:
    h = Harness()
    batch = [record(event("send", i), "sends", i) for i in range(5)]
    batch += [record(event("click", i), "clicks", i) for i in range(2)]
    batch += [record(event("conversion", 0, revenue=12.34), "conversions", 0)]
    assert await h.feed(batch) == []
    assert h.counts("c1") == Counts(5, 2, 1, 12_340_000)


async def test_redelivery_and_upstream_duplicates_count_once() -> None:
    h = Harness()
    batch = [record(event("send", i), "sends", i) for i in range(10)]
    await h.feed(batch)
    await h.feed(batch[3:])  # a crash re-delivers from offset 3
    dup = record(event("send", 4), "sends", 10)  # same event_id, new offset
    await h.feed([dup])
    assert h.counts("c1").sends == 10
    assert h.metrics.events.labels("send", "replayed")._value.get() == 7
    assert h.metrics.events.labels("send", "duplicate")._value.get() == 1


async def test_bad_events_are_dead_lettered_with_reasons_and_counted_nowhere() -> None:
    h = Harness()
    bad = [
        record(b"{oops", "sends", 0),
        record({**event("send", 1), "time": "yesterday"}, "sends", 1),
        record({k: v for k, v in event("send", 2).items() if k != "creative_id"}, "sends", 2),
        record(event("click", 3, creative="c99"), "clicks", 3),
        record({**event("send", 4), "account_id": "ghost"}, "sends", 4, key=b"ghost"),
        record(event("conversion", 5, revenue=-1.0), "conversions", 5),
        record(event("conversion", 6, revenue=5e7), "conversions", 6),
        record({**event("click", 7), "time": 9e9}, "clicks", 7),
        record(b"x" * 100_000, "sends", 8),
    ]
    letters = await h.feed(bad)
    assert [x["reason"] for x in letters] == [
        "malformed_json",
        "wrong_type",
        "missing_field",
        "unknown_creative",
        "unknown_account",
        "invalid_value",
        "implausible_value",
        "implausible_value",
        "oversized",
    ]
    assert [x["source"]["offset"] for x in letters] == list(range(9))
    assert b"acme" not in h.table


async def test_a_click_before_its_send_still_counts() -> None:
    h = Harness()
    await h.feed([record(event("click", 1), "clicks", 0)])
    await h.feed([record(event("send", 1), "sends", 0)])
    assert h.counts("c1") == Counts(1, 1, 0, 0)


def correction(sends: int, revenue_micros: int = 0, account: str = "acme") -> bytes:
    counts = {"c1": Counts(sends=sends, revenue_micros=revenue_micros)}
    delta = AccountStats(counts, None, {})  # type: ignore[arg-type]
    return encode(to_message(account, delta, "run-1", 2000.0))


async def test_a_correction_is_added_once_even_when_redelivered() -> None:
    h = Harness()
    await h.feed([record(event("send", i), "sends", i) for i in range(3)])
    fix = record(correction(-1, 250_000), "stats-corrections", 0)
    assert await h.feed([fix]) == []
    await h.feed([fix])  # a crash re-delivers it
    assert h.counts("c1") == Counts(2, 0, 0, 250_000)
    assert h.metrics.corrections.labels("applied")._value.get() == 1
    assert h.metrics.corrections.labels("replayed")._value.get() == 1
    later = record(correction(+1), "stats-corrections", 1)
    await h.feed([record(event("send", 3), "sends", 3), later])  # events and a correction
    assert h.counts("c1") == Counts(4, 0, 0, 250_000)


async def test_a_correction_for_an_account_without_stats_starts_its_ledger() -> None:
    h = Harness()
    await h.feed([record(correction(5), "stats-corrections", 7)])
    assert h.counts("c1") == Counts(sends=5)
    assert h.table[b"acme"].applied_offset("stats-corrections", 0) == 7  # type: ignore[attr-defined]


async def test_an_unreadable_correction_is_dead_lettered_and_counted() -> None:
    h = Harness()
    letters = await h.feed([record(b'{"schema": "stats_correction.v1"}', "stats-corrections", 0)])
    assert [x["reason"] for x in letters] == ["missing_field"]
    assert h.metrics.corrections.labels("rejected")._value.get() == 1
    assert b"acme" not in h.table


async def test_a_click_and_a_send_sharing_an_event_id_both_count() -> None:
    h = Harness()
    shared = {"event_id": "same"}
    await h.feed([record({**event("click", 1), **shared}, "clicks", 0)])
    await h.feed([record({**event("send", 1), **shared}, "sends", 0)])
    await h.feed([record({**event("send", 2), **shared}, "sends", 1)])  # a true duplicate
    assert h.counts("c1") == Counts(1, 1, 0, 0)
    assert h.metrics.events.labels("send", "duplicate")._value.get() == 1


async def test_a_batch_is_never_counted_without_dedup_while_the_store_fails() -> None:
    outage = Outage()
    store = FlakyDedup(outage, marked=False)
    h = Harness()
    h.service = IngestionService(
        kinds=KINDS,
        catalog=Catalogs(catalog_table().get).get,
        stats=h.table.get,  # type: ignore[arg-type]
        dedup=store,
        metrics=h.metrics,
        dead_letters_topic="dead-letters",
    )
    await h.feed([record(event("send", i), "sends", i) for i in range(3)])
    outage.mode = "down"
    again = [record(event("send", i), "sends", 10 + i) for i in range(3)]  # re-published ids
    task = asyncio.create_task(h.feed([*again, record(event("send", 7), "sends", 13)]))
    await asyncio.sleep(0.3)
    assert not task.done() and h.counts("c1").sends == 3  # waiting, nothing counted
    outage.mode = "up"
    assert await task == []
    assert h.counts("c1").sends == 4
    duplicates = h.metrics.events.labels("send", "duplicate")._value.get()
    assert duplicates == 3


async def test_delay_times_on_the_wire_reach_the_stats_timing() -> None:
    h = Harness()
    await h.feed([record(event("send", i, time=1000.0), "sends", i) for i in range(2)])
    clicks = [
        record(event("click", 0, time=1600.0, send_time=1000.0), "clicks", 0),
        record(event("click", 1, time=1700.0), "clicks", 1),  # an older sender: no time
    ]
    conversion = event("conversion", 0, revenue=5.0, time=1900.0, click_time=1600.0)
    assert await h.feed([*clicks, record(conversion, "conversions", 0)]) == []
    timing = h.table[b"acme"].stats.timing  # type: ignore[attr-defined]
    assert h.counts("c1") == Counts(2, 2, 1, 5_000_000)
    assert sum(timing.click_delays) == 1  # only the click that carried its send's time
    assert timing.click_delays[delay_bin(600.0)] == 1
    assert sum(timing.conversion_delays) == 1
    assert timing.conversion_delays[delay_bin(300.0)] == 1


async def test_a_correction_carries_the_timing_difference() -> None:
    h = Harness()
    await h.feed([record(event("send", 0, time=1000.0), "sends", 0)])
    missed = fold([Event("click", "c1", 1600.0, origin_time=1000.0)])
    recomputed = h.table[b"acme"].stats.merge(missed)  # type: ignore[attr-defined]
    delta = reconcile_correction(h.table[b"acme"].stats, recomputed)  # type: ignore[attr-defined]
    assert delta is not None
    body = encode(to_message("acme", delta, "run-1", 2000.0))
    assert await h.feed([record(body, "stats-corrections", 0)]) == []
    assert h.table[b"acme"].stats.timing == recomputed.timing  # type: ignore[attr-defined]
