"""Per-account outcome statistics: exact counts plus optional time-decayed counts.

Counts are integers (revenue in micros), so they add and subtract exactly: the daily job
corrects the streamed state by applying differences, and a fold over the same events in
any order gives the same value.

Forgetting is by *event* time: an event at time t carries weight 2^((t - ref) / h) where
`ref` is the latest event time seen and h the half-life. The value is therefore
sum(x_i * 2^((t_i - max t) / h)), which does not depend on arrival order (up to float
rounding), unlike a decay applied on arrival.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from selector.timing import Timing
from selector.timing_batch import add_all

EventKind = Literal["send", "click", "conversion"]
EVENT_KINDS: tuple[EventKind, ...] = ("send", "click", "conversion")
MICROS = 1_000_000
# (kind, creative_id, time, revenue_micros, origin_time): one event for `apply_all`
StatsEvent = tuple[EventKind, str, float, int, float | None]


@dataclass(frozen=True, slots=True)
class Counts:
    """Raw counts for one creative; revenue is kept in integer micros to stay exact."""

    sends: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_micros: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.sends + other.sends,
            self.clicks + other.clicks,
            self.conversions + other.conversions,
            self.revenue_micros + other.revenue_micros,
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.sends - other.sends,
            self.clicks - other.clicks,
            self.conversions - other.conversions,
            self.revenue_micros - other.revenue_micros,
        )

    @property
    def revenue(self) -> float:
        return self.revenue_micros / MICROS

    def is_zero(self) -> bool:
        return not (self.sends or self.clicks or self.conversions or self.revenue_micros)


ZERO = Counts()


@dataclass(frozen=True, slots=True)
class Decayed:
    """Counts weighted by 2^((t_event - ref_time) / half_life)."""

    sends: float = 0.0
    clicks: float = 0.0
    conversions: float = 0.0
    revenue: float = 0.0
    ref_time: float = float("-inf")

    def rebased(self, ref_time: float, half_life: float) -> Decayed:
        """The same quantity expressed against a later reference time."""
        if ref_time <= self.ref_time:
            return self
        if self.ref_time == float("-inf"):
            return Decayed(ref_time=ref_time)
        f = 2.0 ** ((self.ref_time - ref_time) / half_life)
        return Decayed(
            self.sends * f, self.clicks * f, self.conversions * f, self.revenue * f, ref_time
        )

    def combine(self, other: Decayed, half_life: float, sign: float = 1.0) -> Decayed:
        ref = max(self.ref_time, other.ref_time)
        a, b = self.rebased(ref, half_life), other.rebased(ref, half_life)
        return Decayed(
            a.sends + sign * b.sends,
            a.clicks + sign * b.clicks,
            a.conversions + sign * b.conversions,
            a.revenue + sign * b.revenue,
            ref,
        )


def _event_counts(kind: EventKind, revenue_micros: int) -> Counts:
    if kind == "send":
        return Counts(sends=1)
    if kind == "click":
        return Counts(clicks=1)
    return Counts(conversions=1, revenue_micros=revenue_micros)


def _frozen(mapping: Mapping[str, Counts] | Mapping[str, Decayed]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class AccountStats:
    """All creatives' statistics for one account: the value of the streamed stats table.

    `version` increases by one with every applied change, so a decision can name the
    state it was made from. `timing` holds the recent sends and clicks by event time and
    the observed feedback delays (`selector.timing`), from which the posterior discounts
    the sends whose clicks may still arrive.
    """

    counts: Mapping[str, Counts] = field(default_factory=lambda: MappingProxyType({}))
    half_life_seconds: float | None = None
    decayed: Mapping[str, Decayed] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0
    timing: Timing = field(default_factory=Timing)

    def creative(self, creative_id: str) -> Counts:
        return self.counts.get(creative_id, ZERO)

    def apply(
        self,
        kind: EventKind,
        creative_id: str,
        time: float,
        revenue_micros: int = 0,
        origin_time: float | None = None,
    ) -> AccountStats:
        """A new value with one event added. `origin_time` is the time of the event's
        cause when the event carries it (a click's send, a conversion's click): it makes
        the delay observable."""
        delta = _event_counts(kind, revenue_micros)
        counts = dict(self.counts)
        counts[creative_id] = counts.get(creative_id, ZERO) + delta
        decayed = self.decayed
        if self.half_life_seconds is not None:
            decayed = dict(self.decayed)
            point = Decayed(
                float(delta.sends),
                float(delta.clicks),
                float(delta.conversions),
                delta.revenue,
                time,
            )
            decayed[creative_id] = decayed.get(creative_id, Decayed()).combine(
                point, self.half_life_seconds
            )
        return AccountStats(
            MappingProxyType(counts),
            self.half_life_seconds,
            MappingProxyType(dict(decayed)),
            self.version + 1,
            self.timing.add(kind, creative_id, time, origin_time),
        )

    def apply_all(self, events: Sequence[StatsEvent]) -> AccountStats:
        """`apply` for each `(kind, creative_id, time, revenue_micros, origin_time)` in
        order, as one new value (the same counts, decayed floats and timing)."""
        if not events:
            return self
        counts: dict[str, list[int]] = {}
        half_life = self.half_life_seconds
        decayed: dict[str, Decayed] = dict(self.decayed)
        points: dict[str, list[float]] = {}  # the decayed values changed by this batch
        for kind, cid, time, revenue_micros, _ in events:
            c = counts.get(cid)
            if c is None:
                old = self.counts.get(cid, ZERO)
                c = counts[cid] = [old.sends, old.clicks, old.conversions, old.revenue_micros]
            s = k = v = 0
            r = 0
            if kind == "send":
                c[0] += 1
                s = 1
            elif kind == "click":
                c[1] += 1
                k = 1
            else:
                c[2] += 1
                c[3] += revenue_micros
                v, r = 1, revenue_micros
            if half_life is not None:
                d = points.get(cid)
                if d is None:
                    was = decayed.get(cid, Decayed())
                    d = points[cid] = [was.sends, was.clicks, was.conversions, was.revenue,
                                       was.ref_time]  # fmt: skip
                _combine_point(d, float(s), float(k), float(v), r / MICROS, time, half_life)
        new_counts = dict(self.counts)
        for cid, (s, k, v, r) in counts.items():
            new_counts[cid] = Counts(s, k, v, r)
        for cid, d in points.items():
            decayed[cid] = Decayed(*d)
        return AccountStats(
            MappingProxyType(new_counts),
            half_life,
            MappingProxyType(decayed),
            self.version + len(events),
            add_all(self.timing, [(e[0], e[1], e[2], e[4]) for e in events]),
        )

    def merge(self, other: AccountStats, sign: int = 1) -> AccountStats:
        """Add (or with sign=-1 subtract) another stats value; counts are additive."""
        counts = dict(self.counts)
        for cid, c in other.counts.items():
            base = counts.get(cid, ZERO)
            counts[cid] = base + c if sign > 0 else base - c
        decayed = dict(self.decayed)
        if self.half_life_seconds is not None:
            for cid, d in other.decayed.items():
                decayed[cid] = decayed.get(cid, Decayed()).combine(
                    d, self.half_life_seconds, float(sign)
                )
        return AccountStats(
            MappingProxyType(counts),
            self.half_life_seconds,
            MappingProxyType(decayed),
            self.version + 1,
            self.timing.merge(other.timing, sign),
        )

    def difference(self, other: AccountStats) -> AccountStats:
        """self - other, the correction that turns `other` into `self`."""
        return self.merge(other, sign=-1)

    def same_counts(self, other: AccountStats) -> bool:
        keys = set(self.counts) | set(other.counts)
        return all(self.creative(k) == other.creative(k) for k in keys)


@dataclass(frozen=True, slots=True)
class Event:
    """One outcome event as the pure fold sees it (the wire format lives in `stream`)."""

    kind: EventKind
    creative_id: str
    time: float
    revenue_micros: int = 0
    origin_time: float | None = None


def _combine_point(
    d: list[float], s: float, k: float, v: float, r: float, time: float, half_life: float
) -> None:
    """`Decayed.combine` of the value `d` (its fields, changed in place) and one event's
    point at `time`, with the same float operations."""
    ref = max(d[4], time)
    if ref > d[4]:  # d.rebased(ref)
        if d[4] == float("-inf"):
            d[0] = d[1] = d[2] = d[3] = 0.0
        else:
            f = 2.0 ** ((d[4] - ref) / half_life)
            d[0], d[1], d[2], d[3] = d[0] * f, d[1] * f, d[2] * f, d[3] * f
    if ref > time:  # the point rebased (its time is never -inf: events are validated)
        if time == float("-inf"):
            s = k = v = r = 0.0
        else:
            f = 2.0 ** ((time - ref) / half_life)
            s, k, v, r = s * f, k * f, v * f, r * f
    d[0], d[1], d[2], d[3], d[4] = (
        d[0] + 1.0 * s,
        d[1] + 1.0 * k,
        d[2] + 1.0 * v,
        d[3] + 1.0 * r,
        ref,
    )


def fold(events: Iterable[Event], initial: AccountStats | None = None) -> AccountStats:
    """Apply events in order; the same function the stats agent and the daily job use."""
    stats = initial if initial is not None else AccountStats()
    for e in events:
        stats = stats.apply(e.kind, e.creative_id, e.time, e.revenue_micros, e.origin_time)
    return stats
