"""A contact's history as the model sees it: one small immutable value per (account,
contact), folded from its sends, clicks and conversions.

Exact under replay. The fold remembers, per source topic-partition, the highest offset it
applied to this profile (as `selector.ingest.apply_events` does for the stats), so a
re-delivery after a crash changes nothing; upstream duplicates arrive flagged by the
stream's `event_id` dedup and only advance the offset. The same events in the same order
always give the same value, float sums included.

Point in time. The last `MAX_RECENT` events are kept individually, sorted by event time;
older ones are *settled* into running totals. The view of the profile at time t
(`features.contact_features`) counts the settled part and the recent events strictly
before t, so a decision never sees a click that happened after it, as long as t is not
older than the settled events (`settled_until`), which after 8 newer events it is not.

Bounded. Totals, the last click, the clicks' hour of day as a sum of unit vectors (their
circular mean is the usual engagement hour), up to `MAX_CLICKED` creatives clicked before
(most recent last), `MAX_RECENT` events, `MAX_SOURCES` offsets, one slot per custom field.
Creatives are kept as CRC-32 keys of their ids (`creative_key`).

Retention. A contact silent for longer than `retention_seconds` starts again from an
empty history (offsets are kept): the next event after such a gap resets the totals, and
a view at time t more than `retention_seconds` after the last visible event is empty.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from selector.ingest import Outcome, SourcedEvent, partition_key
from selector.stats import EventKind

MAX_RECENT = 8
MAX_CLICKED = 8
MAX_SOURCES = 4
MAX_CUSTOM = 8
KIND_CODE: dict[EventKind, int] = {"send": 1, "click": 2, "conversion": 3}
DAY = 86_400.0
DEFAULT_RETENTION_SECONDS = 180 * DAY


def creative_key(creative_id: str) -> int:
    """The 32-bit key a profile stores for a creative id."""
    return zlib.crc32(creative_id.encode())


def source_key(topic: str, partition: int) -> int:
    return zlib.crc32(partition_key(topic, partition).encode())


def hour_angle(time: float) -> float:
    """Time of day (UTC) as an angle in radians."""
    return 2.0 * math.pi * ((time % DAY) / DAY)


class Recent(NamedTuple):
    kind: int  # KIND_CODE
    creative: int  # creative_key
    time: float
    revenue_micros: int


@dataclass(frozen=True, slots=True)
class ContactProfile:
    """Settled totals plus the recent events, the applied offsets and custom-field slots."""

    sends: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_micros: int = 0
    last_click: float = -math.inf
    hour_cos: float = 0.0
    hour_sin: float = 0.0
    settled_until: float = -math.inf
    clicked: tuple[int, ...] = ()
    recent: tuple[Recent, ...] = ()
    sources: tuple[tuple[int, int], ...] = ()
    custom: tuple[float | None, ...] = ()

    @property
    def last_event(self) -> float:
        return max(self.settled_until, self.recent[-1].time if self.recent else -math.inf)

    def applied_offset(self, topic: str, partition: int) -> int:
        key = source_key(topic, partition)
        return next((offset for k, offset in self.sources if k == key), -1)

    def with_custom(self, slots: tuple[float | None, ...]) -> ContactProfile:
        """The same history with new custom-field slots (`fields.to_slots`; None: missing);
        trailing missing slots are dropped, as the stored record cannot tell them apart."""
        values = [None if s is None or math.isnan(s) else float(s) for s in slots[:MAX_CUSTOM]]
        while values and values[-1] is None:
            values.pop()
        return replace(self, custom=tuple(values))


EMPTY = ContactProfile()


def _settle(p: ContactProfile, e: Recent, recent: tuple[Recent, ...]) -> ContactProfile:
    """Move one event into the totals; `recent` is what stays recent. (Positional
    construction: this runs for every event the stream ingests.)"""
    sends, clicks, conversions, revenue = p.sends, p.clicks, p.conversions, p.revenue_micros
    last_click, hour_cos, hour_sin, clicked = p.last_click, p.hour_cos, p.hour_sin, p.clicked
    if e.kind == KIND_CODE["send"]:
        sends += 1
    elif e.kind == KIND_CODE["conversion"]:
        conversions += 1
        revenue += e.revenue_micros
    else:
        angle = hour_angle(e.time)
        clicks += 1
        last_click = max(last_click, e.time)
        hour_cos += math.cos(angle)
        hour_sin += math.sin(angle)
        clicked = (*(c for c in clicked if c != e.creative), e.creative)[-MAX_CLICKED:]
    return ContactProfile(
        sends, clicks, conversions, revenue, last_click, hour_cos, hour_sin,
        max(p.settled_until, e.time), clicked, recent, p.sources, p.custom,
    )  # fmt: skip


def _remember_offset(p: ContactProfile, key: int, offset: int) -> ContactProfile:
    others = tuple(s for s in p.sources if s[0] != key)
    # The least recently advanced source is forgotten first; with events keyed by account
    # a contact has one source per event topic, so four slots are only full after a
    # repartitioning, whose old partitions no longer deliver.
    return replace(p, sources=(*others, (key, offset))[-MAX_SOURCES:])


def add_event(
    p: ContactProfile, kind: EventKind, creative_id: str, time: float, revenue_micros: int,
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> ContactProfile:  # fmt: skip
    """The profile with one (new, non-duplicate) event added; no offset bookkeeping."""
    if time - p.last_event > retention_seconds:
        p = replace(EMPTY, sources=p.sources, custom=p.custom)
    event = Recent(KIND_CODE[kind], creative_key(creative_id), float(time), int(revenue_micros))
    recent = p.recent
    if recent and event.time < recent[-1].time:
        recent = tuple(sorted((*recent, event), key=lambda r: r.time))
    else:
        recent = (*recent, event)
    while len(recent) > MAX_RECENT:
        p = _settle(p, recent[0], recent[1:])
        recent = p.recent
    return _with_recent(p, recent)


def _with_recent(p: ContactProfile, recent: tuple[Recent, ...]) -> ContactProfile:
    return ContactProfile(
        p.sends, p.clicks, p.conversions, p.revenue_micros, p.last_click, p.hour_cos,
        p.hour_sin, p.settled_until, p.clicked, recent, p.sources, p.custom,
    )  # fmt: skip


def apply_profile_events(
    profile: ContactProfile,
    events: Iterable[SourcedEvent],
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> tuple[ContactProfile, Counter[Outcome]]:
    """Fold one contact's events, in the order read, into its profile; skips events at or
    below the offset already applied for their topic-partition (re-deliveries) and
    advances past upstream duplicates without counting them.

    Examples
    --------
    >>> from selector.ingest import SourcedEvent
    >>> sends = [SourcedEvent("send", "a", 10.0, 0, "sends", 0, 7),
    ...          SourcedEvent("click", "a", 20.0, 0, "clicks", 0, 3)]
    >>> once, _ = apply_profile_events(EMPTY, sends)
    >>> twice, outcome = apply_profile_events(once, sends)
    >>> twice == once, dict(outcome)
    (True, {'replayed': 2})
    """
    outcome: Counter[Outcome] = Counter()
    for e in events:
        key = source_key(e.topic, e.partition)
        if e.offset <= next((o for k, o in profile.sources if k == key), -1):
            outcome["replayed"] += 1
            continue
        profile = _remember_offset(profile, key, e.offset)
        if e.duplicate:
            outcome["duplicate"] += 1
            continue
        profile = add_event(
            profile, e.kind, e.creative_id, e.time, e.revenue_micros, retention_seconds
        )
        outcome["applied"] += 1
    return profile, outcome
