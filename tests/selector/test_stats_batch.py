"""`AccountStats.apply_all` (and `selector.timing_batch.add_all`) give exactly the value of
`apply` event by event: counts, decayed floats, version, timing buckets in the same
order, on seeded random streams that cross the timing windows."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType

import numpy as np
import pytest

from selector.ingest import EVERY_INDEX, Ledger, SourcedEvent, apply_events, partition_key
from selector.stats import AccountStats, StatsEvent
from selector.timing import Timing
from stream.wire import ledger_codec

KINDS = ("send", "click", "conversion")


def random_stream(rng: np.random.Generator, n: int) -> list[StatsEvent]:
    clock = float(rng.uniform(1e9, 1.1e9))
    out: list[StatsEvent] = []
    for _ in range(n):
        kind = KINDS[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        clock += float(rng.choice([rng.exponential(300), rng.exponential(40_000)]))
        time = clock - float(rng.exponential(20_000)) if rng.random() < 0.3 else clock
        if rng.random() < 0.02:
            time = clock - 10 * 86_400.0  # older than every window
        origin = None if kind == "send" or rng.random() < 0.3 else time - rng.exponential(5e3)
        if origin is not None and rng.random() < 0.05:
            origin = float("inf")
        revenue = int(rng.integers(0, 10**8)) if kind == "conversion" else 0
        out.append((kind, f"c{int(rng.integers(6))}", time, revenue, origin))  # type: ignore[arg-type]
    return out


def one_by_one(stats: AccountStats, events: list[StatsEvent]) -> AccountStats:
    for kind, cid, time, revenue, origin in events:
        stats = stats.apply(kind, cid, time, revenue, origin)
    return stats


def stored(stats: AccountStats) -> bytes:
    return ledger_codec.dumps(Ledger(stats))


@pytest.mark.parametrize("seed", range(40))
def test_apply_all_is_apply_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    half_life = None if seed % 3 == 0 else float(rng.choice([3600.0, 7 * 86_400.0]))
    mine = theirs = AccountStats(half_life_seconds=half_life)
    events = random_stream(rng, int(rng.integers(1, 400)))
    cuts = sorted(rng.integers(0, len(events) + 1, size=4).tolist())
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        mine = mine.apply_all(events[a:b])
        theirs = one_by_one(theirs, events[a:b])
        assert mine == theirs
        assert stored(mine) == stored(theirs)  # the same order too
        assert list(mine.timing.sends) == list(theirs.timing.sends)
        assert list(mine.timing.clicks) == list(theirs.timing.clicks)


def test_apply_all_of_nothing_is_the_same_value() -> None:
    stats = AccountStats().apply("send", "a", 1.0)
    assert stats.apply_all([]) is stats


def test_a_timing_value_from_its_plain_form_takes_events_alike() -> None:
    rng = np.random.default_rng(5)
    events = random_stream(rng, 200)
    start = one_by_one(AccountStats(half_life_seconds=3600.0), events[:100])
    restored = AccountStats(
        start.counts,
        3600.0,
        start.decayed,
        start.version,
        Timing.from_plain(start.timing.to_plain()),
    )
    assert stored(restored.apply_all(events[100:])) == stored(one_by_one(start, events[100:]))


def reference_apply_events(
    ledger: Ledger, events: list[SourcedEvent]
) -> tuple[Ledger, Counter[tuple[str, str]]]:
    """`apply_events` as it was: `AccountStats.apply` per applied event."""
    outcome: Counter[tuple[str, str]] = Counter()
    stats, applied, changed = ledger.stats, dict(ledger.applied), False
    last: dict[str, tuple[int, int]] = {}
    for e in events:
        key = partition_key(e.topic, e.partition)
        seen = last.get(key) or (applied.get(key, -1), EVERY_INDEX)
        if (e.offset, e.index) <= seen:
            outcome[e.kind, "replayed"] += 1
            continue
        last[key], applied[key], changed = (e.offset, e.index), e.offset, True
        if e.duplicate:
            outcome[e.kind, "duplicate"] += 1
            continue
        stats = stats.apply(e.kind, e.creative_id, e.time, e.revenue_micros, e.origin_time)
        outcome[e.kind, "applied"] += 1
    if not changed:
        return ledger, outcome
    return Ledger(stats, MappingProxyType(applied)), outcome


@pytest.mark.parametrize("seed", range(20))
def test_apply_events_matches_the_event_by_event_fold(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    stream = random_stream(rng, 300)
    offsets = {"sends": 0, "clicks": 0, "conversions": 0}
    events = []
    for kind, cid, time, revenue, origin in stream:
        topic = {"send": "sends", "click": "clicks", "conversion": "conversions"}[kind]
        offsets[topic] += int(rng.random() < 0.5)
        offset = offsets[topic] - int(rng.random() < 0.1) * int(rng.integers(1, 4))
        events.append(
            SourcedEvent(kind, cid, time, revenue, topic, int(rng.integers(2)), offset,
                         bool(rng.random() < 0.05), origin, int(rng.integers(4)))
        )  # fmt: skip
    mine = theirs = Ledger(AccountStats(half_life_seconds=None if seed % 2 else 86_400.0))
    for a in range(0, len(events), 70):
        part = events[max(0, a - 20) : a + 70]
        mine, got = apply_events(mine, part)
        theirs, expected = reference_apply_events(theirs, part)
        assert ledger_codec.dumps(mine) == ledger_codec.dumps(theirs)
        assert mine == theirs and got == expected
