"""Means per send with cluster-robust variances, and lifts with delta-method intervals.

A rate here is a ratio of totals, `sum y / sum d`, where `d` is sends (click rate, revenue
per send) or clicks (conversions per click). Its variance is the linearized
(cluster-robust) variance of a ratio estimator over clusters (contacts):
J / (J - 1) * sum_j (y_j - m d_j)^2 / (sum d)^2 with y_j and d_j a contact's totals. A
contact keeps its arm, so its sends are not independent draws. With one send per cluster
it is the usual var / n.

Lift is the ratio of means minus one, treatment over control. Its 95% interval comes from
the delta method on the log of the ratio: se(log r)^2 = var(m_t) / m_t^2 + var(m_c) / m_c^2,
and the interval exp(log r +- z se) - 1 is asymmetric like the ratio itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile: 1.96 for 95%."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True)
class Moments:
    """A ratio mean, its cluster-robust variance, and the number of clusters behind it."""

    mean: float
    variance: float
    clusters: int

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """mean -+ z se (NaN when fewer than two clusters)."""
        half = z_value(confidence) * math.sqrt(self.variance)
        return self.mean - half, self.mean + half


NO_MOMENTS = Moments(math.nan, math.nan, 0)


@dataclass(frozen=True, slots=True)
class Lift:
    """treatment / control - 1 with a delta-method interval on the log ratio."""

    metric: str
    treatment: float
    control: float
    lift: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def cluster_moments(totals: Array, sizes: Array) -> Moments:
    """The ratio `sum(totals) / sum(sizes)` over clusters and its variance (see the module
    docstring); `totals[j]` and `sizes[j]` are cluster j's outcome and denominator."""
    y = np.asarray(totals, dtype=np.float64)
    d = np.asarray(sizes, dtype=np.float64)
    n, j = float(d.sum()), int(y.size)
    if n <= 0:
        return Moments(math.nan, math.nan, j)
    mean = float(y.sum()) / n
    if j < 2:
        return Moments(mean, math.nan, j)
    variance = j / (j - 1) * float(np.sum((y - mean * d) ** 2)) / n**2
    return Moments(mean, variance, j)


def per_send_moments(values: Array, clusters: Array | None) -> Moments:
    """Mean per send of `values` (one per send) with `clusters` (one id per send, or None
    for independent sends)."""
    if clusters is None:
        return cluster_moments(values, np.ones(values.size))
    _, which = np.unique(clusters, return_inverse=True)
    totals = np.bincount(which, weights=values.astype(np.float64))
    return cluster_moments(totals, np.bincount(which).astype(np.float64))


def lift_of(
    metric: str, treatment: Moments, control: Moments, confidence: float = CONFIDENCE
) -> Lift:
    """The lift of one mean over another, from their moments."""
    m_t, m_c = treatment.mean, control.mean
    if math.isnan(m_t) or math.isnan(m_c) or m_t <= 0 or m_c <= 0:
        return Lift(metric, m_t, m_c, math.nan, math.nan, math.nan, confidence)
    log_ratio = math.log(m_t / m_c)
    se = math.sqrt(treatment.variance / m_t**2 + control.variance / m_c**2)
    z = z_value(confidence)
    return Lift(
        metric,
        m_t,
        m_c,
        m_t / m_c - 1.0,
        math.exp(log_ratio - z * se) - 1.0,
        math.exp(log_ratio + z * se) - 1.0,
        confidence,
    )


def ratio_lift(
    metric: str,
    treatment: Array,
    control: Array,
    treatment_clusters: Array | None = None,
    control_clusters: Array | None = None,
    confidence: float = CONFIDENCE,
) -> Lift:
    """Lift of mean(treatment) over mean(control) per send, with its interval."""
    if treatment.size == 0 or control.size == 0:
        return Lift(metric, math.nan, math.nan, math.nan, math.nan, math.nan, confidence)
    t = per_send_moments(treatment, treatment_clusters)
    c = per_send_moments(control, control_clusters)
    return lift_of(metric, t, c, confidence)
