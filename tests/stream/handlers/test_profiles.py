"""Contact profiles kept by the stats path: the events the stats count, once each, under
re-delivery, duplicates, a racing writer and a store that fails."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from selector.model.profile import EMPTY, add_event
from selector.model.record import decode, encode
from stream.handlers.catalog import Catalogs
from stream.handlers.ingestion import IngestionService
from stream.handlers.profiles import (
    CooldownsWithProfiles,
    MemoryProfiles,
    ProfileFolder,
    Write,
)
from stream.handlers.stores import MemoryCooldowns, MemoryDedup, Pair
from stream.ops.metrics import Metrics
from tests.stream.handlers.service_fixtures import catalog_table, event, record

KINDS = {"sends": "send", "clicks": "click", "conversions": "conversion"}


class Harness:
    def __init__(self, store: MemoryProfiles | None = None) -> None:
        self.store = store or MemoryProfiles()
        self.metrics = Metrics()
        self.outcomes: dict[str, int] = {}
        self.folder = ProfileFolder(self.store, on_outcome=self.count, sleep=_no_sleep)
        self.service = IngestionService(
            kinds=KINDS,
            catalog=Catalogs(catalog_table().get).get,
            stats=lambda key: None,
            dedup=MemoryDedup(),
            metrics=self.metrics,
            dead_letters_topic="dead-letters",
            clock=lambda: 2000.0,
            profiles=self.folder,
        )

    def count(self, outcome: str, n: int) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n

    async def feed(self, batch):  # type: ignore[no-untyped-def]
        _, letters = await self.service.ingest(batch)
        return [orjson.loads(x.value)["reason"] for x in letters]

    def profile(self, contact: str):  # type: ignore[no-untyped-def]
        return decode(self.store.values[("acme", contact)])


async def _no_sleep(seconds: float) -> None:
    return None


def history(contact: str = "u1") -> list:  # type: ignore[type-arg]
    """Three sends, a click and a conversion of one contact, in its topics' order."""
    return [
        record(event("send", 0, contact_id=contact, time=100.0), "sends", 0),
        record(event("send", 1, contact_id=contact, time=200.0), "sends", 1),
        record(event("click", 0, contact_id=contact, time=250.0), "clicks", 0),
        record(event("send", 2, contact_id=contact, creative="c2", time=300.0), "sends", 2),
        record(
            event("conversion", 0, contact_id=contact, time=260.0, revenue=4.5), "conversions", 0
        ),
    ]


async def test_a_batch_folds_each_contacts_events_into_its_profile() -> None:
    h = Harness()
    assert await h.feed(history()) == []
    p = h.profile("u1")
    assert (p.sends, p.clicks, p.conversions, p.revenue_micros) == (0, 0, 0, 0)  # all recent
    assert [r.kind for r in p.recent] == [1, 1, 2, 3, 1]  # by event time
    assert p.recent[-2].revenue_micros == 4_500_000
    assert h.outcomes == {"applied": 5}


async def test_redelivery_and_duplicates_change_nothing_and_match_one_delivery() -> None:
    once, twice = Harness(), Harness()
    batch = history()
    await once.feed(batch)
    await twice.feed(batch[:3])
    await twice.feed(batch[1:])  # a crash re-delivers from offset 1
    dup = record(event("send", 1, contact_id="u1", time=200.0), "sends", 7)  # same event id
    await once.feed([dup])
    await twice.feed([dup])
    assert twice.store.values == once.store.values
    assert twice.outcomes["replayed"] == 2 and twice.outcomes["duplicate"] == 1


async def test_the_value_does_not_depend_on_how_the_topics_interleave() -> None:
    a, b = Harness(), Harness()
    batch = history()
    await a.feed(batch)
    topics_last_first = sorted(batch, key=lambda m: -len(m.topic))  # each in its own order
    for message in topics_last_first:
        await b.feed([message])
    assert a.store.values == b.store.values


async def test_rejected_events_fold_into_no_profile() -> None:
    h = Harness()
    bad = [
        record(event("click", 3, creative="c99"), "clicks", 3),
        record(event("conversion", 5, revenue=-1.0), "conversions", 5),
    ]
    assert await h.feed(bad) == ["unknown_creative", "invalid_value"]
    assert h.store.values == {}


class RacingProfiles(MemoryProfiles):
    """Another writer changes a value between this writer's read and its write, once."""

    def __init__(self, pair: Pair, value: bytes) -> None:
        super().__init__()
        self.race: tuple[Pair, bytes] | None = (pair, value)

    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        if self.race is not None:
            pair, value = self.race
            self.values[pair], self.race = value, None
        return await super().write_profiles(writes, ttl_seconds)


async def test_a_write_that_lost_a_race_is_folded_again_on_the_newer_value() -> None:
    other = add_event(EMPTY, "click", "c1", 50.0, 0)
    h = Harness(RacingProfiles(("acme", "u1"), encode(other)))
    await h.feed(history())
    p = h.profile("u1")
    assert [r.time for r in p.recent] == [50.0, 100.0, 200.0, 250.0, 260.0, 300.0]
    assert h.outcomes == {"applied": 5}  # counted once, for the write that was kept


class FailingProfiles(MemoryProfiles):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def read_profiles(self, pairs: Sequence[Pair]) -> list[bytes | None]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("refused")
        return await super().read_profiles(pairs)


async def test_a_failing_store_makes_the_batch_wait_until_it_answers() -> None:
    h = Harness(FailingProfiles(failures=3))
    await h.feed(history())
    assert h.profile("u1").recent[0].time == 100.0
    assert h.outcomes["store_failure"] == 3 and not h.folder.waiting


async def test_a_value_that_does_not_decode_is_replaced_and_counted() -> None:
    store = MemoryProfiles()
    store.values[("acme", "u1")] = b"\x09garbage"
    h = Harness(store)
    await h.feed(history()[:1])
    assert h.profile("u1").recent[0].time == 100.0
    assert h.outcomes == {"unknown_version": 1, "applied": 1}


async def test_cooldowns_with_profiles_read_both() -> None:
    profiles = MemoryProfiles()
    profiles.values[("a", "x")] = b"\x01"
    both = CooldownsWithProfiles(MemoryCooldowns(), profiles)
    await both.record([("a", "x", "c1", 10.0, 60.0)])
    last, blobs = await both.last_sent_and_profiles([("a", "x")], [("a", "x"), ("a", "y")])
    assert last == [{"c1": 10.0}] and blobs == [b"\x01", None]
