"""Measuring send-time optimization against a randomized control, in ways that survive
weekday effects.

The experiment: every launch splits its contacts at random into an optimized group and
a control group sent at a fixed time; a send's outcome is whether it got a response
within a fixed window from its group's launch (not from its own send, so the optimized
group's later sends are not given a longer or shorter look).

The trap (the seed's story): the optimized group is sent later than the control, mostly
the next morning. When the account's response rate depends on the weekday, each launch
compares the optimized group on day d + 1 with the control on day d: by campaign day the
optimized group seems to lose on weekdays (rates fall from Monday to Friday) and win at
weekends, and a pooled comparison over a period that is not whole weeks is biased.

Estimates, each a ratio of response rates minus one with a 95% interval from the delta
method on the log ratio (variances of each rate are cluster-robust over contacts, as in
`selector.report`; strata are pooled by inverse-variance weights of their log ratios):

* `naive`: all sends of the period pooled (and `per_launch`, the campaign-day view).
* `same_weekday`: strata by the local weekday of *delivery*; within a stratum both
  groups met the same weekday, so the weekday effect cancels. Less data per stratum.
* `weekly`: strata by the launch's week (Monday to Sunday), keeping weeks with launches
  on at least `min_days` days; in a whole week both groups meet every weekday once.
  Weeks with fewer send days are dropped (with 5 or 6 days some bias can remain).
* `launch_alignment`: the pooled comparison of an experiment in which the optimized group
  was launched about 12 hours before the control (e.g. at midnight, the control at noon),
  so that the control goes out in the middle of the optimized spread.

In a simulation each send also carries its true response probability without the
calendar effects; every estimate then reports the true uplift over the same sends and
weights (`truth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

Method = Literal["naive", "same_weekday", "weekly", "launch_alignment"]
METHODS: tuple[Method, ...] = get_args(Method)
OPTIMIZED, CONTROL = 0, 1
CONFIDENCE = 0.95
Int64Array = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Outcomes:
    """One row per send: launch index and the launch's local day, arm (0 optimized,
    1 control), local day of delivery, response within the window, contact, and (in a
    simulation) the true response probability without calendar effects."""

    launch: Int64Array
    launch_day: Int64Array
    arm: Int64Array
    delivery_day: Int64Array
    responded: NDArray[np.bool_]
    contact: Int64Array
    expected: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.launch.size)

    def where(self, rows: NDArray[np.bool_]) -> Outcomes:
        expected = None if self.expected is None else self.expected[rows]
        return Outcomes(
            self.launch[rows], self.launch_day[rows], self.arm[rows], self.delivery_day[rows],
            self.responded[rows], self.contact[rows], expected,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Estimate:
    """Lift of the optimized group over the control, with its interval."""

    method: Method
    lift: float
    low: float
    high: float
    optimized_rate: float
    control_rate: float
    sends: int
    strata: int
    truth: float | None = None

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class DayComparison:
    """One launch compared by campaign day: the naive view the seed's chart showed."""

    launch: int
    day: int
    weekday: int
    optimized_rate: float
    control_rate: float
    lift: float
    low: float
    high: float
    sends: int


def weekday(day: Int64Array) -> Int64Array:
    """Monday = 0, for local day numbers (days since 1970-01-01, a Thursday)."""
    return (day + 3) % 7


def _rate(values: FloatArray, clusters: Int64Array) -> tuple[float, float]:
    """Mean per send and its cluster-robust variance."""
    _, which = np.unique(clusters, return_inverse=True)
    totals = np.bincount(which.reshape(-1), weights=values)
    sends = np.bincount(which.reshape(-1)).astype(np.float64)
    n, j = sends.sum(), totals.size
    mean = totals.sum() / n
    if j < 2:
        return float(mean), math.nan
    return float(mean), float(j / (j - 1) * np.sum((totals - mean * sends) ** 2) / n**2)


@dataclass(frozen=True, slots=True)
class _Stratum:
    optimized: float
    control: float
    log_ratio: float
    variance: float
    log_truth: float
    sends: int


def _stratum(o: Outcomes) -> _Stratum | None:
    t, c = o.arm == OPTIMIZED, o.arm == CONTROL
    if t.sum() < 2 or c.sum() < 2:
        return None
    y = o.responded.astype(np.float64)
    m_t, v_t = _rate(y[t], o.contact[t])
    m_c, v_c = _rate(y[c], o.contact[c])
    if m_t <= 0 or m_c <= 0 or not (math.isfinite(v_t) and math.isfinite(v_c)):
        return None
    truth = math.nan
    if o.expected is not None:
        truth = math.log(float(o.expected[t].mean()) / float(o.expected[c].mean()))
    variance = v_t / m_t**2 + v_c / m_c**2
    return _Stratum(m_t, m_c, math.log(m_t / m_c), variance, truth, len(o))


def _pooled(method: Method, strata: list[_Stratum]) -> Estimate:
    if not strata:
        nan = math.nan
        return Estimate(method, nan, nan, nan, nan, nan, 0, 0)
    w = np.array([1.0 / s.variance for s in strata])
    log_ratio = float(np.dot(w, [s.log_ratio for s in strata]) / w.sum())
    se = math.sqrt(1.0 / w.sum())
    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    share = w / w.sum()
    truths = [s.log_truth for s in strata]
    truth = (
        None if any(math.isnan(x) for x in truths) else math.exp(float(np.dot(share, truths))) - 1
    )
    return Estimate(
        method=method,
        lift=math.exp(log_ratio) - 1.0,
        low=math.exp(log_ratio - z * se) - 1.0,
        high=math.exp(log_ratio + z * se) - 1.0,
        optimized_rate=float(np.dot(share, [s.optimized for s in strata])),
        control_rate=float(np.dot(share, [s.control for s in strata])),
        sends=sum(s.sends for s in strata),
        strata=len(strata),
        truth=truth,
    )


def _by(o: Outcomes, key: Int64Array, method: Method) -> Estimate:
    strata = [_stratum(o.where(key == k)) for k in np.unique(key)]
    return _pooled(method, [s for s in strata if s is not None])


def naive(o: Outcomes) -> Estimate:
    """All sends pooled: biased when the period's weekdays are not balanced."""
    return _by(o, np.zeros(len(o), dtype=np.int64), "naive")


def same_weekday(o: Outcomes) -> Estimate:
    """Strata by the local weekday of delivery."""
    return _by(o, weekday(o.delivery_day), "same_weekday")


def weekly(o: Outcomes, min_days: int = 5) -> Estimate:
    """Strata by launch week (Monday to Sunday), weeks with >= `min_days` launch days."""
    week = (o.launch_day - weekday(o.launch_day)) // 7
    kept = np.zeros(len(o), dtype=bool)
    for w in np.unique(week):
        rows = week == w
        kept |= rows & (np.unique(o.launch_day[rows]).size >= min_days)
    return _by(o.where(kept), week[kept], "weekly")


def launch_alignment(aligned: Outcomes) -> Estimate:
    """The pooled comparison of an experiment run with the optimized group launched
    about 12 hours before the control."""
    return _by(aligned, np.zeros(len(aligned), dtype=np.int64), "launch_alignment")


def per_launch(o: Outcomes) -> tuple[DayComparison, ...]:
    """Each launch's own comparison (campaign day), in launch order."""
    out = []
    for launch in np.unique(o.launch):
        rows = o.launch == launch
        e = _by(o.where(rows), np.zeros(int(rows.sum()), dtype=np.int64), "naive")
        day = int(o.launch_day[rows][0])
        day_of_week = int(weekday(np.array([day]))[0])
        comparison = DayComparison(
            int(launch), day, day_of_week, e.optimized_rate, e.control_rate, e.lift, e.low,
            e.high, e.sends,
        )  # fmt: skip
        out.append(comparison)
    return tuple(out)
