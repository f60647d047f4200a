"""A contact's history as the model sees it: one small immutable value per (account,
contact), folded from its sends, clicks and conversions.

Exact under replay. The fold remembers, per source topic-partition, the highest offset it
applied to this profile (as `selector.ingest.apply_events` does for the stats), so a
re-delivery after a crash changes nothing; upstream duplicates arrive flagged by the
stream's `event_id` dedup and only advance the offset. And the value depends on which
events were applied, not on the order they arrived in (as long as no gap longer than the
retention opens between them): every total is an integer sum, the recent events are the
latest ones by event time, the clicked creatives are ranked by their latest click time,
and click hours are counted per hour of the day. A crash that replays the sends, clicks
and conversions topics interleaved differently therefore gives the same bytes.

Point in time. The last `MAX_RECENT` events are kept individually, sorted by event time;
older ones are *settled* into running totals. The view of the profile at time t
(`features.contact_features`) counts the settled part and the recent events strictly
before t, so a decision never sees a click that happened after it, as long as t is not
older than the settled events (`settled_until`), which after 8 newer events it is not.

Bounded. Totals, the last click, the clicks per hour of the day (UTC; their circular mean
is the usual engagement hour), up to `MAX_CLICKED` creatives clicked before with the
second of their latest click, `MAX_RECENT` events, `MAX_SOURCES` offsets, one slot per
custom field. Creatives are kept as CRC-32 keys of their ids (`creative_key`).

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
from typing import Any, NamedTuple

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


HOURS = 24
MAX_HOUR_COUNT = 65_535
NO_CLICK_HOURS = (0,) * HOURS


def hour_of_day(time: float) -> int:
    """The UTC hour (0-23) of an epoch time."""
    return int((time % DAY) // 3600.0)


def whole_second(time: float) -> int:
    """An event time as the unsigned 32-bit second the record keeps for ranking clicks."""
    return int(min(max(time, 0.0), 2**32 - 1))


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
    settled_until: float = -math.inf
    clicked: tuple[tuple[int, int], ...] = ()  # (creative key, second), ascending
    click_hours: tuple[int, ...] = NO_CLICK_HOURS
    recent: tuple[Recent, ...] = ()
    sources: tuple[tuple[int, int, float], ...] = ()  # (source key, offset, time), by key
    custom: tuple[float | None, ...] = ()

    @property
    def last_event(self) -> float:
        return max(self.settled_until, self.recent[-1].time if self.recent else -math.inf)

    def applied_offset(self, topic: str, partition: int) -> int:
        key = source_key(topic, partition)
        return next((offset for k, offset, _ in self.sources if k == key), -1)

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
    last_click, clicked, hours = p.last_click, p.clicked, p.click_hours
    if e.kind == KIND_CODE["send"]:
        sends += 1
    elif e.kind == KIND_CODE["conversion"]:
        conversions += 1
        revenue += e.revenue_micros
    else:
        clicks += 1
        last_click = max(last_click, e.time)
        clicked = _clicked_with(clicked, e.creative, whole_second(e.time))
        h = hour_of_day(e.time)
        hours = (*hours[:h], min(hours[h] + 1, MAX_HOUR_COUNT), *hours[h + 1 :])
    return ContactProfile(
        sends, clicks, conversions, revenue, last_click, max(p.settled_until, e.time),
        clicked, hours, recent, p.sources, p.custom,
    )  # fmt: skip


def _clicked_with(
    clicked: tuple[tuple[int, int], ...], key: int, second: int
) -> tuple[tuple[int, int], ...]:
    """The `MAX_CLICKED` creatives with the latest click seconds (ties by key), ascending:
    the same set whatever order the clicks arrived in."""
    latest = dict(clicked)
    latest[key] = max(latest.get(key, second), second)
    ranked = sorted(((s, k) for k, s in latest.items()))[-MAX_CLICKED:]
    return tuple((k, s) for s, k in ranked)


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
        p.sends, p.clicks, p.conversions, p.revenue_micros, p.last_click, p.settled_until,
        p.clicked, p.click_hours, recent, p.sources, p.custom,
    )  # fmt: skip


# One event as the fold takes it: (kind, creative_id, time, revenue_micros, topic,
# partition, offset, duplicate, index), the fields of a `SourcedEvent`. A plain tuple:
# the stream folds one per event, and a frozen dataclass costs more to build than to use.
Row = tuple[EventKind, str, float, int, str, int, int, bool, int]
_SOURCE_KEYS: dict[tuple[str, int], int] = {}  # memoized `source_key`, `creative_key`
_CREATIVE_KEYS: dict[str, int] = {}
_MAX_MEMO = 100_000  # entries of either memo before it starts again
_SEND, _CLICK, _CONVERSION = KIND_CODE["send"], KIND_CODE["click"], KIND_CODE["conversion"]


def _by_time(r: Recent) -> float:
    return r.time


def apply_profile_events(
    profile: ContactProfile,
    events: Iterable[SourcedEvent],
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> tuple[ContactProfile, Counter[Outcome]]:
    """Fold one contact's events, in the order read, into its profile; skips events at or
    below the offset already applied for their topic-partition (re-deliveries) and
    advances past upstream duplicates without counting them. The items of one batch
    message (one offset, `index` 0, 1, ...) are folded together and once, as
    `selector.ingest.apply_events` applies them.

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
    rows = [
        (e.kind, e.creative_id, e.time, e.revenue_micros, e.topic, e.partition, e.offset,
         e.duplicate, e.index)
        for e in events
    ]  # fmt: skip
    return fold_rows(profile, rows, retention_seconds)


def fold_rows(
    profile: ContactProfile,
    rows: Iterable[Row],
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> tuple[ContactProfile, Counter[Outcome]]:
    """`apply_profile_events` on events given as `Row` tuples: the same value, built once
    at the end rather than once per event."""
    fields, counts, order = fold_fields(profile_fields(profile), rows, retention_seconds)
    outcome: Counter[Outcome] = Counter({name: counts[name] for name in order})
    return (profile if fields is None else ContactProfile(*fields)), outcome


Fields = tuple[Any, ...]  # a `ContactProfile`'s fields, in order


def profile_fields(p: ContactProfile) -> Fields:
    return (
        p.sends, p.clicks, p.conversions, p.revenue_micros, p.last_click, p.settled_until,
        p.clicked, p.click_hours, p.recent, p.sources, p.custom,
    )  # fmt: skip


def fold_fields(
    fields: Fields, rows: Iterable[Row], retention_seconds: float = DEFAULT_RETENTION_SECONDS
) -> tuple[Fields | None, dict[Outcome, int], list[Outcome]]:
    """`fold_rows` on a profile's fields: the new fields (None: unchanged), the count of
    each outcome (zeros too) and the outcomes in the order first seen."""
    fold = _Fold(fields)
    applied = replayed = duplicates = 0
    order: list[Outcome] = []  # the outcomes in the order first seen, as a Counter has them
    last: dict[int, tuple[int, int]] = {}  # per source: (offset, index) applied last here
    for kind, creative_id, time, revenue_micros, topic, partition, offset, dup, index in rows:
        key = _SOURCE_KEYS.get((topic, partition)) or _source_key(topic, partition)
        seen = last.get(key)
        if seen is None:  # every item of the applied offset's message was applied
            seen = (fold.applied_offset(key), 2**62)
        if (offset, index) <= seen:
            if not replayed:
                order.append("replayed")
            replayed += 1
            continue
        last[key] = (offset, index)
        fold.remember_offset(key, offset, time)
        if dup:
            if not duplicates:
                order.append("duplicate")
            duplicates += 1
            continue
        creative = _CREATIVE_KEYS.get(creative_id)
        if creative is None:
            creative = _creative_key(creative_id)
        fold.add(
            Recent(KIND_CODE[kind], creative, float(time), int(revenue_micros)), retention_seconds
        )
        if not applied:
            order.append("applied")
        applied += 1
    counts: dict[Outcome, int] = {
        "applied": applied, "replayed": replayed, "duplicate": duplicates
    }  # fmt: skip
    return fold.fields(), counts, order


def _source_key(topic: str, partition: int) -> int:
    if len(_SOURCE_KEYS) >= _MAX_MEMO:
        _SOURCE_KEYS.clear()
    key = _SOURCE_KEYS[topic, partition] = source_key(topic, partition)
    return key


def _creative_key(creative_id: str) -> int:
    if len(_CREATIVE_KEYS) >= _MAX_MEMO:
        _CREATIVE_KEYS.clear()
    key = _CREATIVE_KEYS[creative_id] = creative_key(creative_id)
    return key


class _Fold:
    """A profile being folded: its fields as mutable values, made a `ContactProfile` once
    at the end (`add_event` and `_settle` make one per event)."""

    __slots__ = (
        "changed", "clicked", "clicks", "conversions", "entries", "hours", "last_click",
        "original", "recent", "revenue", "sends", "settled_until", "sources_changed",
    )  # fmt: skip

    def __init__(self, fields: Fields) -> None:
        self.original = fields
        (
            self.sends, self.clicks, self.conversions, self.revenue, self.last_click,
            self.settled_until, self.clicked, hours, recent, sources, _,
        ) = fields  # fmt: skip
        self.hours, self.recent = list(hours), list(recent)
        self.entries = {k: (o, t) for k, o, t in sources}
        self.sources_changed = self.changed = False

    def applied_offset(self, key: int) -> int:
        if self.sources_changed:  # the sources as now folded (one entry per key)
            return self.entries[key][0] if key in self.entries else -1
        for k, o, _ in self.original[9]:  # as stored: the first entry of the key
            if k == key:
                return o
        return -1

    def remember_offset(self, key: int, offset: int, time: float) -> None:
        """The highest offset applied from each source, with its latest event time. Events
        are keyed by account, so a contact has one source per event topic; more than
        `MAX_SOURCES` only after a repartitioning, and then the source whose latest event
        is oldest (an old partition that no longer delivers) is forgotten."""
        entries = self.entries
        previous = entries.get(key, (offset, time))
        entries[key] = (max(previous[0], offset), max(previous[1], time))
        if len(entries) > MAX_SOURCES:
            del entries[min(entries, key=lambda k: (entries[k][1], k))]
        self.sources_changed = True

    def add(self, event: Recent, retention_seconds: float) -> None:
        """One new event, as `add_event` adds it."""
        recent = self.recent
        last_event = max(self.settled_until, recent[-1].time if recent else -math.inf)
        if event.time - last_event > retention_seconds:
            self.sends = self.clicks = self.conversions = self.revenue = 0
            self.last_click = self.settled_until = -math.inf
            self.clicked, self.hours, self.recent = (), list(NO_CLICK_HOURS), []
            recent = self.recent
        if recent and event.time < recent[-1].time:
            recent.append(event)
            recent.sort(key=_by_time)  # stable, as sorted() is
        else:
            recent.append(event)
        while len(recent) > MAX_RECENT:
            self.settle(recent.pop(0))
        self.changed = True

    def settle(self, e: Recent) -> None:
        """Move one event into the totals, as `_settle`."""
        if e.kind == _SEND:
            self.sends += 1
        elif e.kind == _CONVERSION:
            self.conversions += 1
            self.revenue += e.revenue_micros
        else:
            self.clicks += 1
            self.last_click = max(self.last_click, e.time)
            self.clicked = _clicked_with(self.clicked, e.creative, whole_second(e.time))
            h = hour_of_day(e.time)
            self.hours[h] = min(self.hours[h] + 1, MAX_HOUR_COUNT)
        self.settled_until = max(self.settled_until, e.time)

    def fields(self) -> Fields | None:
        """The folded fields; None if nothing was folded."""
        if not (self.changed or self.sources_changed):
            return None
        sources = self.original[9]
        if self.sources_changed:
            sources = tuple((k, o, t) for k, (o, t) in sorted(self.entries.items()))
        return (
            self.sends, self.clicks, self.conversions, self.revenue, self.last_click,
            self.settled_until, self.clicked, tuple(self.hours), tuple(self.recent), sources,
            self.original[10],
        )  # fmt: skip
