"""Contact profiles: an exact fold under replay, bounded, with retention."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from selector.ingest import SourcedEvent
from selector.model.profile import (
    EMPTY,
    MAX_CLICKED,
    MAX_RECENT,
    MAX_SOURCES,
    ContactProfile,
    add_event,
    apply_profile_events,
    creative_key,
)
from selector.model.record import encode

TOPIC = {"send": "sends", "click": "clicks", "conversion": "conversions"}


def history(n: int, start: float = 0.0) -> list[SourcedEvent]:
    """n events cycling send, send, click, conversion over creatives a-c, one offset
    sequence per topic."""
    kinds = ["send", "send", "click", "conversion"]
    offsets = dict.fromkeys(TOPIC.values(), 0)
    events = []
    for i in range(n):
        kind = kinds[i % 4]
        topic = TOPIC[kind]
        offsets[topic] += 1
        revenue = 2_500_000 if kind == "conversion" else 0
        events.append(
            SourcedEvent(kind, "abc"[i % 3], start + 60.0 * i, revenue, topic, 0, offsets[topic])
        )
    return events


def fold(events: list[SourcedEvent], p: ContactProfile = EMPTY) -> ContactProfile:
    return apply_profile_events(p, events)[0]


def test_a_redelivered_suffix_changes_nothing() -> None:
    events = history(40)
    once = fold(events)
    # a crash after 30 events were written; consumption resumes at the 20th
    replayed, outcome = apply_profile_events(fold(events[:30]), events[20:])
    assert replayed == once
    assert outcome["replayed"] == 10 and outcome["applied"] == 10


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.data())
def test_any_crash_and_resume_point_give_the_same_profile(n: int, data: st.DataObject) -> None:
    events = history(n)
    written = data.draw(st.integers(0, n))
    resumed = data.draw(st.integers(0, written))
    assert fold(events[resumed:], fold(events[:written])) == fold(events)


def test_upstream_duplicates_advance_the_offset_without_counting() -> None:
    first = SourcedEvent("send", "a", 1.0, 0, "sends", 0, 5)
    dup = SourcedEvent("send", "a", 1.0, 0, "sends", 0, 9, duplicate=True)
    p, outcome = apply_profile_events(EMPTY, [first, dup])
    assert dict(outcome) == {"applied": 1, "duplicate": 1}
    assert len(p.recent) == 1 and p.applied_offset("sends", 0) == 9


def test_history_beyond_the_recent_window_is_settled_into_totals() -> None:
    p = fold(history(40))
    assert len(p.recent) == MAX_RECENT
    assert p.sends + sum(e.kind == 1 for e in p.recent) == 20
    assert p.clicks + sum(e.kind == 2 for e in p.recent) == 10
    total = p.revenue_micros + sum(e.revenue_micros for e in p.recent)
    assert total == 10 * 2_500_000
    assert p.settled_until < p.recent[0].time


def test_recent_events_stay_in_time_order_when_they_arrive_out_of_order() -> None:
    p = add_event(EMPTY, "click", "a", 50.0, 0)
    p = add_event(p, "send", "a", 10.0, 0)
    assert [e.time for e in p.recent] == [10.0, 50.0]


def test_sizes_are_bounded() -> None:
    p = EMPTY
    for i in range(100):
        p = add_event(p, "click", f"creative-{i}", float(i), 0)
    assert len(p.clicked) == MAX_CLICKED and len(p.recent) == MAX_RECENT
    assert p.clicked[-1] == (creative_key("creative-91"), 91)  # latest settled click last
    events = [SourcedEvent("send", "a", float(i), 0, f"topic-{i}", 0, 1) for i in range(9)]
    kept = fold(events)
    assert len(kept.sources) == MAX_SOURCES
    # the sources whose latest events are newest survive (old partitions are forgotten)
    assert {t for _, _, t in kept.sources} == {5.0, 6.0, 7.0, 8.0}
    assert kept.applied_offset("topic-8", 0) == 1 and kept.applied_offset("topic-0", 0) == -1


def test_a_silence_longer_than_the_retention_starts_a_new_history() -> None:
    day = 86_400.0
    p = add_event(EMPTY.with_custom((2.0,)), "click", "a", 0.0, 0, retention_seconds=30 * day)
    p = add_event(p, "send", "b", 31 * day, 0, retention_seconds=30 * day)
    assert [e.creative for e in p.recent] == [creative_key("b")]
    assert p.clicks == 0 and math.isinf(p.last_click) and p.custom == (2.0,)
    kept = add_event(EMPTY, "click", "a", 0.0, 0, retention_seconds=30 * day)
    kept = add_event(kept, "send", "b", 29 * day, 0, retention_seconds=30 * day)
    assert len(kept.recent) == 2


def test_custom_slots_drop_trailing_missing_values() -> None:
    assert EMPTY.with_custom((1.0, None, float("nan"))).custom == (1.0,)
    assert EMPTY.with_custom((None, 3.0)).custom == (None, 3.0)


def test_the_fold_is_pure() -> None:
    events = history(12)
    before = fold(events[:6])
    snapshot = (before.sends, before.recent, before.sources)
    fold(events[6:], before)
    assert (before.sends, before.recent, before.sources) == snapshot
    assert np.isfinite(before.last_event)


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_profile_does_not_depend_on_how_the_topics_interleave(rnd: Any) -> None:
    # each topic's events stay in offset order; only the interleaving changes, as it can
    # between a first run and a crash replay
    events = history(48)
    queues = {t: [e for e in events if e.topic == t] for t in TOPIC.values()}
    mixed: list[SourcedEvent] = []
    while any(queues.values()):
        topic = rnd.choice([t for t, q in queues.items() if q])
        mixed.append(queues[topic].pop(0))
    assert encode(fold(mixed)) == encode(fold(events))


def test_clicked_creatives_are_ranked_by_their_latest_click() -> None:
    p = EMPTY
    for i in range(12):  # clicks on c0..c9 arrive newest first (c0, c1 twice)
        p = add_event(p, "click", f"c{i % 10}", 1000.0 - i, 0)
    for i in range(8):  # push every click out of the recent window
        p = add_event(p, "send", "x", 2000.0 + i, 0)
    assert [s for _, s in p.clicked] == sorted(s for _, s in p.clicked)
    kept = {k for k, _ in p.clicked}
    assert kept == {creative_key(f"c{i}") for i in range(8)}  # the 8 latest-clicked
    assert dict(p.clicked)[creative_key("c0")] == 1000
    assert sum(p.click_hours) == 12 and p.click_hours[0] == 12  # all in 00:00-01:00
