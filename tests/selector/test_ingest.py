"""Idempotent ingestion: re-deliveries and upstream duplicates never count twice."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from selector.ingest import Ledger, SourcedEvent, advance, apply_events, totals
from selector.stats import Counts
from selector.timing import delay_bin


def stream_of(n: int, topic: str = "sends", partition: int = 0) -> list[SourcedEvent]:
    return [SourcedEvent("send", f"cr{i % 3}", float(i), 0, topic, partition, i) for i in range(n)]


def test_events_at_or_below_the_applied_offset_are_skipped() -> None:
    events = stream_of(10)
    once, outcome = apply_events(Ledger(), events)
    assert totals(outcome) == {"applied": 10, "replayed": 0, "duplicate": 0}
    assert outcome["send", "applied"] == 10
    again, outcome2 = apply_events(once, events[4:])
    assert totals(outcome2) == {"applied": 0, "replayed": 6, "duplicate": 0}
    assert again is once  # nothing changed, nothing rewritten


def test_duplicates_are_dropped_but_advance_the_offset() -> None:
    events = stream_of(3)
    dup = SourcedEvent("send", "cr0", 3.0, 0, "sends", 0, 3, duplicate=True)
    ledger, outcome = apply_events(Ledger(), [*events, dup])
    assert outcome["send", "duplicate"] == 1
    assert ledger.applied_offset("sends", 0) == 3
    assert sum(c.sends for c in ledger.stats.counts.values()) == 3


def test_offsets_are_tracked_per_topic_partition() -> None:
    a = stream_of(5, "sends", 0)
    b = [SourcedEvent("click", "cr0", 1.0, 0, "clicks", 1, i) for i in range(2)]
    ledger, _ = apply_events(Ledger(), a + b)
    assert ledger.applied_offset("sends", 0) == 4
    assert ledger.applied_offset("clicks", 1) == 1
    assert ledger.applied_offset("clicks", 0) == -1
    assert ledger.stats.creative("cr0") == Counts(sends=2, clicks=2)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 80),
    crashes=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), max_size=4),
)
def test_crashes_and_replays_converge_to_the_single_pass_result(
    n: int, crashes: list[tuple[int, int]]
) -> None:
    """Model a worker that processes up to `processed`, persisted its table up to
    `persisted`, committed up to `committed <= persisted`, then crashed and resumed."""
    events = stream_of(n)
    truth, _ = apply_events(Ledger(), events)
    persisted = Ledger()
    position = 0
    for a, b in crashes:
        committed, processed = sorted((min(a, n), min(b, n)))
        committed = min(committed, position) if position else 0
        progressed, _ = apply_events(persisted, events[committed:processed])
        persisted, position = progressed, max(position, processed)
    final, _ = apply_events(persisted, events)
    assert final.stats.same_counts(truth.stats)
    assert final.applied == truth.applied


def test_events_carrying_their_cause_time_make_the_delay_observable() -> None:
    send = SourcedEvent("send", "a", 100.0, 0, "sends", 0, 1)
    click = SourcedEvent("click", "a", 700.0, 0, "clicks", 0, 1, origin_time=100.0)
    ledger, _ = apply_events(Ledger(), [send, click])
    assert ledger.stats.timing.click_delays[delay_bin(600.0)] == 1
    assert sum(ledger.stats.timing.click_delays) == 1


def test_the_items_of_one_batch_message_share_its_offset_and_count_once() -> None:
    before = stream_of(2)
    batch = [SourcedEvent("send", "cr0", 5.0, 0, "sends", 0, 2, index=i) for i in range(4)]
    ledger, outcome = apply_events(Ledger(), [*before, *batch])
    assert totals(outcome) == {"applied": 6, "replayed": 0, "duplicate": 0}
    assert ledger.applied_offset("sends", 0) == 2
    # the message again (a re-delivery), alone or after what came before it: nothing counts
    again, outcome = apply_events(ledger, batch)
    assert again is ledger and totals(outcome)["replayed"] == 4
    again, outcome = apply_events(ledger, [*before, *batch])
    assert again is ledger and totals(outcome)["replayed"] == 6
    # an item repeated within one call counts once
    twice, outcome = apply_events(Ledger(), [batch[0], batch[1], batch[1]])
    assert sum(c.sends for c in twice.stats.counts.values()) == 2
    assert totals(outcome) == {"applied": 2, "replayed": 1, "duplicate": 0}


def test_advance_raises_applied_offsets_and_then_skips_what_it_covers() -> None:
    ledger, _ = apply_events(Ledger(), [SourcedEvent("send", "c1", 0.0, 0, "sends", 0, 3)])
    stamped = advance(ledger, {"sends:0": 9, "clicks:0": 4})
    assert dict(stamped.applied) == {"sends:0": 9, "clicks:0": 4}
    assert stamped.stats == ledger.stats
    replay, outcome = apply_events(stamped, [SourcedEvent("click", "c1", 0.0, 0, "clicks", 0, 4)])
    assert replay is stamped and outcome[("click", "replayed")] == 1
    later, _ = apply_events(stamped, [SourcedEvent("click", "c1", 0.0, 0, "clicks", 0, 5)])
    assert later.stats.creative("c1").clicks == 1


def test_advance_never_lowers_an_offset() -> None:
    ledger = Ledger(applied=MappingProxyType({"sends:0": 7}))
    assert advance(ledger, {"sends:0": 2}) is ledger
    assert advance(ledger, {}) is ledger
