"""Feedback timing: which sends may still be clicked, which clicks may still convert, and
how long an account's feedback takes to arrive.

A send enters the stats at once and its click (if any) later, so right after a blast a
creative's sends outnumber the clicks they will bring: counted as non-clicks, they make
it look worse until the clicks come in. The posterior therefore counts a recent send as
`F(age)` of a send, with F the account's send-to-click delay CDF (Chapelle 2014, expected
exposure), and likewise a recent click as `G(age)` of a click for the conversion rate.

Everything here is an exact integer count, added event by event, so it folds in any
order and subtracts exactly:

- per creative, sends by event-time bucket (`CLICK_BUCKET` wide) over the last
  `CLICK_WINDOW` before the latest event time seen, and clicks by bucket over the last
  `CONVERSION_WINDOW`: per bucket the count and the sum of the events' whole seconds
  since the bucket's start, so a blast at the end of a bucket is aged as such. Buckets
  older than the window are pruned relative to the latest event time; an event older
  than the window is not bucketed (nor would it be kept), so the value depends on the
  set of events only;
- per account, histograms of observed delays (`DELAY_EDGES`, log-spaced): send to click
  for clicks that carry their send's time, click to conversion for conversions that
  carry their click's time.

`delay_cdf` estimates F from the histogram, corrected for censoring
(`selector.delay_estimate`): a delay in bin j is fully observable only for a parent older
than the bin's end, so each bin's count is divided by the number of parents that old
(the recent buckets give the young ones; every parent older than the window counts as at
risk), and bins that too few parents are old enough for take their mass from a fitted
log-normal (the maximum a posteriori under a prior law per kind, `PRIORS`). Each parent
is weighted by its creative's rate (click rate for sends, conversion rate for clicks):
the policy shifts traffic between creatives that convert at different rates, and
unweighted, a cohort of parents from a low-rate creative would read as feedback that is
late rather than rare. Without any observed delay there is no
estimate and no correction (events that carry no origin time say nothing about delays);
with fewer than `MIN_DELAYS`, the estimate is the prior law itself: without it, the
first day's young clicks would all count as clicks that did not convert, and the offers
paid per conversion would look worst exactly while their conversions are on the way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.delay_estimate import DelayEstimate, Prior, weighted

CLICK_BUCKET = 900.0
CLICK_WINDOW = 86_400.0
CONVERSION_BUCKET = 6 * 3600.0
CONVERSION_WINDOW = 7 * 86_400.0
DELAY_EDGES: tuple[float, ...] = (0.0, *(10.0 * 2.0 ** (j / 2) for j in range(39)))
MIN_DELAYS = 30
# The prior delay law of each kind: log-normal, sigma 1, with 99% of the delays inside
# the kind's window (the horizon over which the stats keep parents pending at all), so a
# median of 2.3 hours for clicks and 16 hours for conversions.
PRIOR_SIGMA = 1.0
PRIORS = {
    kind: Prior(math.log(window) - 2.326 * PRIOR_SIGMA, PRIOR_SIGMA)
    for kind, window in (("click", CLICK_WINDOW), ("conversion", CONVERSION_WINDOW))
}

Buckets = Mapping[str, Mapping[int, tuple[int, int]]]  # bucket -> (count, offset sum)
FloatArray = NDArray[Any]


def _empty() -> Buckets:
    return MappingProxyType({})


def _no_delays() -> tuple[int, ...]:
    return (0,) * (len(DELAY_EDGES))


def delay_bin(seconds: float) -> int:
    """The histogram bin of a delay: bin j holds [DELAY_EDGES[j], DELAY_EDGES[j + 1]);
    the last bin is open-ended. Negative delays (clock skew) go to bin 0."""
    if seconds < DELAY_EDGES[1]:
        return 0
    return min(int(2.0 * math.log2(seconds / 10.0)) + 1, len(DELAY_EDGES) - 1)


def _oldest_bucket(latest: float, window: float, width: float) -> int:
    if not math.isfinite(latest):
        return -(1 << 62)
    return math.floor((latest - window) / width)


@dataclass(frozen=True, slots=True)
class Timing:
    """Recent sends and clicks by event-time bucket, and the observed delay histograms."""

    latest: float = -math.inf
    sends: Buckets = field(default_factory=_empty)
    clicks: Buckets = field(default_factory=_empty)
    click_delays: tuple[int, ...] = field(default_factory=_no_delays)
    conversion_delays: tuple[int, ...] = field(default_factory=_no_delays)

    def is_empty(self) -> bool:
        return not (self.sends or self.clicks or any(self.click_delays)) and not any(
            self.conversion_delays
        )

    def add(
        self, kind: str, creative_id: str, time: float, origin_time: float | None = None
    ) -> Timing:
        """A new value with one event added (`origin_time`: the send's time for a click,
        the click's time for a conversion, when the event carries it). Copies only the
        event's creative's buckets, and prunes only when `latest` enters a new bucket."""
        latest = max(self.latest, time)
        sends, clicks = self.sends, self.clicks
        if kind == "send":
            sends = _bumped(sends, creative_id, time, latest, CLICK_WINDOW, CLICK_BUCKET)
        elif kind == "click":
            clicks = _bumped(
                clicks, creative_id, time, latest, CONVERSION_WINDOW, CONVERSION_BUCKET
            )
        if _oldest_bucket(latest, CLICK_WINDOW, CLICK_BUCKET) > _oldest_bucket(
            self.latest, CLICK_WINDOW, CLICK_BUCKET
        ):
            sends = _merged(sends, _empty(), 1, latest, CLICK_WINDOW, CLICK_BUCKET)
            clicks = _merged(clicks, _empty(), 1, latest, CONVERSION_WINDOW, CONVERSION_BUCKET)
        click_delays, conversion_delays = self.click_delays, self.conversion_delays
        if kind != "send" and origin_time is not None and math.isfinite(origin_time):
            j = delay_bin(time - origin_time)
            if kind == "click":
                click_delays = (*click_delays[:j], click_delays[j] + 1, *click_delays[j + 1 :])
            else:
                conversion_delays = (
                    *conversion_delays[:j], conversion_delays[j] + 1, *conversion_delays[j + 1 :]
                )  # fmt: skip
        return Timing(latest, sends, clicks, click_delays, conversion_delays)

    @classmethod
    def of_events(cls, events: Iterable[tuple[str, str, float, float | None]]) -> Timing:
        """The value of these events (kind, creative, time, origin time) folded into an
        empty one, built directly."""
        rows = list(events)
        if not rows:
            return cls()
        latest = max(t for _, _, t, _ in rows)
        sends: dict[str, dict[int, tuple[int, int]]] = {}
        clicks: dict[str, dict[int, tuple[int, int]]] = {}
        delays = {"click": [0] * len(DELAY_EDGES), "conversion": [0] * len(DELAY_EDGES)}
        for kind, creative_id, time, origin in rows:
            if kind == "send":
                _count(sends, creative_id, time, latest, CLICK_WINDOW, CLICK_BUCKET, 1)
                continue
            if kind == "click":
                _count(clicks, creative_id, time, latest, CONVERSION_WINDOW, CONVERSION_BUCKET, 1)
            if origin is not None and math.isfinite(origin):
                delays[kind][delay_bin(time - origin)] += 1
        return cls(
            latest,
            _frozen(sends),
            _frozen(clicks),
            tuple(delays["click"]),
            tuple(delays["conversion"]),
        )

    @classmethod
    def of_columns(
        cls,
        kind: str,
        creative_ids: tuple[str, ...],
        creative: FloatArray,
        time: FloatArray,
        origin: FloatArray | None = None,
    ) -> Timing:
        """`of_events` for many events of one kind given as columns (positions into
        `creative_ids`, event times, origin times or None)."""
        if creative.size == 0:
            return cls()
        latest = float(np.max(time))
        buckets: dict[str, dict[int, tuple[int, int]]] = {}
        if kind in ("send", "click"):
            window, width = (CLICK_WINDOW, CLICK_BUCKET) if kind == "send" else (
                CONVERSION_WINDOW, CONVERSION_BUCKET)  # fmt: skip
            t = np.asarray(time, dtype=np.float64)
            index = np.floor(t / width).astype(np.int64)
            offset = np.floor(t - index * width).astype(np.int64)
            keep = index >= _oldest_bucket(latest, window, width)
            pairs, which, counts = np.unique(
                np.stack([np.asarray(creative)[keep], index[keep]]),
                axis=1,
                return_inverse=True,
                return_counts=True,
            )
            sums = np.bincount(which.reshape(-1), weights=offset[keep], minlength=counts.size)
            rows = zip(pairs.T.tolist(), counts.tolist(), sums.tolist(), strict=True)
            for (k, b), n, total in rows:
                buckets.setdefault(creative_ids[k], {})[b] = (n, round(total))
        delays = [0] * len(DELAY_EDGES)
        if origin is not None and kind != "send":
            d = np.asarray(time, dtype=np.float64) - np.asarray(origin, dtype=np.float64)
            d = d[np.isfinite(d)]
            with np.errstate(divide="ignore", invalid="ignore"):
                j = np.floor(2.0 * np.log2(np.maximum(d, 1e-300) / 10.0)).astype(np.int64) + 1
            j = np.where(d < DELAY_EDGES[1], 0, np.minimum(j, len(DELAY_EDGES) - 1))
            delays = np.bincount(j, minlength=len(DELAY_EDGES)).tolist()
        no = _no_delays()
        return cls(
            latest,
            _frozen(buckets) if kind == "send" else _empty(),
            _frozen(buckets) if kind == "click" else _empty(),
            tuple(delays) if kind == "click" else no,
            tuple(delays) if kind == "conversion" else no,
        )

    def merge(self, other: Timing, sign: int = 1) -> Timing:
        """Add (sign=-1: subtract) another value, then prune to the windows."""
        if other.is_empty() and other.latest <= self.latest:
            return self
        latest = max(self.latest, other.latest)
        return Timing(
            latest,
            _merged(self.sends, other.sends, sign, latest, CLICK_WINDOW, CLICK_BUCKET),
            _merged(self.clicks, other.clicks, sign, latest, CONVERSION_WINDOW, CONVERSION_BUCKET),
            tuple(a + sign * b for a, b in zip(self.click_delays, other.click_delays, strict=True)),
            tuple(
                a + sign * b
                for a, b in zip(self.conversion_delays, other.conversion_delays, strict=True)
            ),
        )

    def to_plain(self) -> dict[str, Any]:
        """JSON types only, exact integers (the stats table's changelog form)."""

        def rows(buckets: Buckets) -> dict[str, list[list[int]]]:
            return {cid: [[b, n, o] for b, (n, o) in r.items()] for cid, r in buckets.items()}

        return {
            "latest": self.latest if math.isfinite(self.latest) else None,
            "sends": rows(self.sends),
            "clicks": rows(self.clicks),
            "click_delays": list(self.click_delays),
            "conversion_delays": list(self.conversion_delays),
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any] | None) -> Timing:
        """The inverse of `to_plain`; None (a value stored without timing) is empty."""
        if data is None:
            return cls()

        def rows(raw: Mapping[str, Any]) -> Buckets:
            return _frozen(
                {cid: {int(b): (int(n), int(o)) for b, n, o in r} for cid, r in raw.items()}
            )

        latest = data["latest"]
        return cls(
            -math.inf if latest is None else float(latest),
            rows(data["sends"]),
            rows(data["clicks"]),
            tuple(int(x) for x in data["click_delays"]),
            tuple(int(x) for x in data["conversion_delays"]),
        )

    def delay_cdf(
        self,
        kind: str,
        totals: int | Mapping[str, int],
        children: Mapping[str, int] | None = None,
    ) -> DelayEstimate | None:
        """The estimated delay CDF of `kind` (`click` or `conversion`), given the
        account's parents (sends for clicks, clicks for conversions): a total, or per
        creative with each creative's children (clicks, conversions), so that every
        parent is weighted by its creative's rate (`selector.delay_estimate.weighted`).
        None without any observed delay; with fewer than `MIN_DELAYS`, the kind's prior
        law (`PRIORS`);
        after, the log-normal that fills the uncensored bins is the prior's maximum a
        posteriori, so a fit to the first day's short delays cannot settle on a law
        whose median is days or whose tail is absent."""
        counts = np.array(self.click_delays if kind == "click" else self.conversion_delays, float)
        prior = PRIORS[kind]
        if not counts.any():  # the stream may not carry origin times at all
            return None
        if counts.sum() < MIN_DELAYS:
            return prior.law(np.array(DELAY_EDGES))
        buckets, width = (
            (self.sends, CLICK_BUCKET) if kind == "click" else (self.clicks, CONVERSION_BUCKET)
        )
        per = totals if isinstance(totals, Mapping) else {}
        ids = tuple(sorted(set(per) | set(buckets)))
        ages, parents, who = _ages(buckets, self.latest, width, ids)
        if isinstance(totals, Mapping):
            parent_totals = np.array([float(per.get(c, 0)) for c in ids])
            rates = None if children is None else np.array([children.get(c, 0) for c in ids], float)
        else:  # one total: every parent alike
            who, parent_totals, rates = np.zeros_like(who), np.array([float(totals)]), None
        result: DelayEstimate | None = weighted(
            np.array(DELAY_EDGES), counts, ages, parents, who, parent_totals, rates, prior
        )
        return result


def _mean_times(rows: Mapping[int, tuple[int, int]], width: float) -> tuple[Any, Any]:
    """Each bucket's mean event time and count."""
    index, count, offsets = np.array([(b, n, o) for b, (n, o) in rows.items()], float).T
    mean = index * width + np.divide(offsets, count, out=np.full_like(count, 0.5 * width),
                                     where=count > 0)  # fmt: skip
    return mean, count


def _ages(
    buckets: Buckets, latest: float, width: float, ids: tuple[str, ...]
) -> tuple[FloatArray, FloatArray, Any]:
    """Age at `latest` of every bucket's mean event time, its count, and its creative's
    position in `ids`, over all creatives."""
    parts = [(k, *_mean_times(buckets[c], width)) for k, c in enumerate(ids) if buckets.get(c)]
    if not parts:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.intp)
    who = np.concatenate([np.full(m.size, k, np.intp) for k, m, _ in parts])
    ages = latest - np.concatenate([m for _, m, _ in parts])
    return ages, np.concatenate([c for _, _, c in parts]), who


def _count(
    into: dict[str, dict[int, tuple[int, int]]],
    creative_id: str,
    time: float,
    latest: float,
    window: float,
    width: float,
    n: int,
) -> None:
    bucket = math.floor(time / width)
    if bucket >= _oldest_bucket(latest, window, width):
        rows = into.setdefault(creative_id, {})
        count, offsets = rows.get(bucket, (0, 0))
        rows[bucket] = (count + n, offsets + n * math.floor(time - bucket * width))


def _bumped(
    buckets: Buckets, creative_id: str, time: float, latest: float, window: float, width: float
) -> Buckets:
    """`buckets` with one event added (a new mapping; the others' rows are shared)."""
    rows: dict[str, dict[int, tuple[int, int]]] = {creative_id: dict(buckets.get(creative_id, {}))}
    _count(rows, creative_id, time, latest, window, width, 1)
    if not rows[creative_id]:
        return buckets
    out = dict(buckets)
    out[creative_id] = MappingProxyType(rows[creative_id])
    return MappingProxyType(out)


def _merged(
    a: Buckets, b: Buckets, sign: int, latest: float, window: float, width: float
) -> Buckets:
    oldest = _oldest_bucket(latest, window, width)
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for cid in set(a) | set(b):
        rows = {k: v for k, v in a.get(cid, {}).items() if k >= oldest}
        for k, (n, offsets) in b.get(cid, {}).items():
            if k >= oldest:
                mine = rows.get(k, (0, 0))
                rows[k] = (mine[0] + sign * n, mine[1] + sign * offsets)
        rows = {k: v for k, v in rows.items() if v != (0, 0)}
        if rows:
            out[cid] = rows
    return _frozen(out)


def _frozen(buckets: dict[str, dict[int, tuple[int, int]]]) -> Buckets:
    return MappingProxyType({cid: MappingProxyType(rows) for cid, rows in buckets.items()})


def pending(
    buckets: Buckets,
    creative_ids: tuple[str, ...],
    now: float,
    width: float,
    cdf: DelayEstimate,
    half_life: float | None = None,
) -> FloatArray:
    """Per creative: sum over its buckets of count x (1 - F(age of the bucket's mean
    event time at `now`)), the expected number whose feedback has not arrived yet;
    weighted by 2^((t - now) / h) when forgetting is on."""
    out = np.zeros(len(creative_ids))
    for k, cid in enumerate(creative_ids):
        rows = buckets.get(cid)
        if not rows:
            continue
        mean, count = _mean_times(rows, width)
        weight = count * (1.0 - cdf(now - mean))
        if half_life is not None:
            weight *= 2.0 ** ((mean - now) / half_life)
        out[k] = weight.sum()
    return out
