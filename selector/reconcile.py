"""The daily job's arithmetic: recompute an account's stats from its events, compare them
with the streamed value, and build the correction that turns one into the other.

`Tally` gives the value `selector.stats.fold` gives over the same events (the same
counts, and bit for bit the same decayed counts when the events come in the same order),
without building a new immutable value per event: the recomputation reads millions.

The comparison is on exact counts. Decayed counts are floats whose rounding depends on
arrival order, so they never count as drift on their own; a correction carries their
difference for every creative whose counts differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from selector.domain import BetaPrior
from selector.stats import EVENT_KINDS, MICROS, AccountStats, Counts, Decayed, EventKind
from selector.timing import Timing

_INDEX: dict[str, int] = {"send": 0, "click": 1, "conversion": 2}


class Tally:
    """One account's counts, added up event by event (in place, for speed). The feedback
    timing is gathered in `TimingTally` and folded into a `Timing` by `stats()`."""

    __slots__ = ("counts", "decayed", "half_life_seconds", "timing")

    def __init__(self, half_life_seconds: float | None = None) -> None:
        self.half_life_seconds = half_life_seconds
        self.counts: dict[str, list[int]] = {}
        self.decayed: dict[str, list[float]] = {}
        self.timing = TimingTally()

    def add(
        self,
        kind: EventKind,
        creative_id: str,
        time: float,
        revenue_micros: int = 0,
        origin_time: float | None = None,
    ) -> None:
        self.timing.add(kind, creative_id, time, origin_time)
        row = self.counts.get(creative_id)
        if row is None:
            row = self.counts[creative_id] = [0, 0, 0, 0]
        index = _INDEX[kind]
        row[index] += 1
        if index == 2:
            row[3] += revenue_micros
        if self.half_life_seconds is not None:
            self._decay(index, creative_id, time, revenue_micros)

    def _decay(self, index: int, creative_id: str, time: float, revenue_micros: int) -> None:
        """`Decayed.combine` with a one-event value, in place: the same float operations."""
        h = self.half_life_seconds
        assert h is not None
        d = self.decayed.get(creative_id)
        if d is None:
            d = self.decayed[creative_id] = [0.0, 0.0, 0.0, 0.0, time]
        if time > d[4]:
            f = 2.0 ** ((d[4] - time) / h)
            d[0], d[1], d[2], d[3], d[4] = d[0] * f, d[1] * f, d[2] * f, d[3] * f, time
            weight = 1.0
        else:
            weight = 2.0 ** ((time - d[4]) / h)
        d[index] += weight
        if index == 2:
            d[3] += (revenue_micros / MICROS) * weight

    def absorb(self, other: Tally) -> None:
        """Add another tally of the same account (events read elsewhere)."""
        self.timing.absorb(other.timing)
        for cid, row in other.counts.items():
            mine = self.counts.setdefault(cid, [0, 0, 0, 0])
            for i in range(4):
                mine[i] += row[i]
        h = self.half_life_seconds
        if h is None:
            return
        for cid, weights in other.decayed.items():
            mine_d = self.decayed.get(cid)
            if mine_d is None:
                self.decayed[cid] = list(weights)
            else:
                both = Decayed(*mine_d).combine(Decayed(*weights), h)
                self.decayed[cid] = [
                    both.sends,
                    both.clicks,
                    both.conversions,
                    both.revenue,
                    both.ref_time,
                ]

    def stats(self, version: int = 0) -> AccountStats:
        counts = {cid: Counts(*row) for cid, row in self.counts.items()}
        decayed = {cid: Decayed(*row) for cid, row in self.decayed.items()}
        return AccountStats(
            MappingProxyType(counts),
            self.half_life_seconds,
            MappingProxyType(decayed),
            version,
            self.timing.value(),
        )


class TimingTally:
    """`selector.timing.Timing` folded in place: events are gathered in chunks and
    folded (and pruned) a chunk at a time, so memory stays bounded by the windows."""

    __slots__ = ("chunk", "value_so_far")

    CHUNK = 65_536

    def __init__(self) -> None:
        self.chunk: list[tuple[str, str, float, float | None]] = []
        self.value_so_far = Timing()

    def add(self, kind: str, creative_id: str, time: float, origin: float | None) -> None:
        self.chunk.append((kind, creative_id, time, origin))
        if len(self.chunk) >= self.CHUNK:
            self.value()

    def absorb(self, other: TimingTally) -> None:
        self.value_so_far = self.value().merge(other.value())

    def value(self) -> Timing:
        if self.chunk:
            self.value_so_far = self.value_so_far.merge(Timing.of_events(self.chunk))
            self.chunk = []
        return self.value_so_far


def beta_means(counts: Counts, prior: BetaPrior) -> tuple[float, float]:
    """Posterior means of the click rate and the conversion rate (per click), with the
    same clamping as `selector.view.posterior`."""
    a0, b0 = prior.alpha, prior.beta
    ctr_a, ctr_b = a0 + counts.clicks, b0 + max(counts.sends - counts.clicks, 0)
    cvr_a, cvr_b = a0 + counts.conversions, b0 + max(counts.clicks - counts.conversions, 0)
    return ctr_a / (ctr_a + ctr_b), cvr_a / (cvr_a + cvr_b)


@dataclass(frozen=True, slots=True)
class CreativeDrift:
    """One creative whose streamed counts differ from the recomputed ones."""

    creative_id: str
    streamed: Counts
    recomputed: Counts
    ctr_mean: tuple[float, float]  # (streamed, recomputed)
    cvr_mean: tuple[float, float]

    @property
    def delta(self) -> Counts:
        """recomputed - streamed: what the correction adds."""
        return self.recomputed - self.streamed


def creative_drift(
    streamed: AccountStats, recomputed: AccountStats, prior: BetaPrior
) -> tuple[CreativeDrift, ...]:
    """The creatives whose counts differ, by creative id."""
    out = []
    for cid in sorted(set(streamed.counts) | set(recomputed.counts)):
        before, after = streamed.creative(cid), recomputed.creative(cid)
        if before != after:
            b, a = beta_means(before, prior), beta_means(after, prior)
            out.append(CreativeDrift(cid, before, after, (b[0], a[0]), (b[1], a[1])))
    return tuple(out)


def correction(streamed: AccountStats, recomputed: AccountStats) -> AccountStats | None:
    """What to add to `streamed` to get `recomputed`'s counts, or None when they agree.

    Only creatives whose counts differ are included; their decayed difference rides along
    (against `streamed`'s half-life, the one the stats agent merges with), and so does the
    whole feedback timing's difference (recent sends and clicks, observed delays), so
    that `streamed.merge(correction)` has the recomputed timing too. Like decayed counts,
    timing never counts as drift on its own.
    """
    drifting = [
        cid
        for cid in sorted(set(streamed.counts) | set(recomputed.counts))
        if streamed.creative(cid) != recomputed.creative(cid)
    ]
    if not drifting:
        return None
    counts = {cid: recomputed.creative(cid) - streamed.creative(cid) for cid in drifting}
    decayed: dict[str, Decayed] = {}
    half_life = streamed.half_life_seconds
    if half_life is not None:
        for cid in drifting:
            after = recomputed.decayed.get(cid, Decayed())
            before = streamed.decayed.get(cid, Decayed())
            decayed[cid] = after.combine(before, half_life, -1.0)
    timing = recomputed.timing.merge(streamed.timing, -1)
    return AccountStats(
        MappingProxyType(counts), half_life, MappingProxyType(decayed), timing=timing
    )


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """Totals over every compared account; events are absolute count differences."""

    accounts: int
    drifting_accounts: int
    drifting_creatives: int
    events: Mapping[EventKind, int]
    revenue_micros: int
    max_ctr_mean_shift: float
    max_cvr_mean_shift: float

    @property
    def clean(self) -> bool:
        return self.drifting_creatives == 0


def summarize(accounts: int, drifts: Iterable[tuple[CreativeDrift, ...]]) -> DriftSummary:
    events: dict[EventKind, int] = dict.fromkeys(EVENT_KINDS, 0)
    revenue = creatives = drifting_accounts = 0
    ctr_shift = cvr_shift = 0.0
    for account in drifts:
        drifting_accounts += bool(account)
        for d in account:
            creatives += 1
            delta = d.delta
            events["send"] += abs(delta.sends)
            events["click"] += abs(delta.clicks)
            events["conversion"] += abs(delta.conversions)
            revenue += abs(delta.revenue_micros)
            ctr_shift = max(ctr_shift, abs(d.ctr_mean[1] - d.ctr_mean[0]))
            cvr_shift = max(cvr_shift, abs(d.cvr_mean[1] - d.cvr_mean[0]))
    return DriftSummary(
        accounts,
        drifting_accounts,
        creatives,
        MappingProxyType(events),
        revenue,
        ctr_shift,
        cvr_shift,
    )
