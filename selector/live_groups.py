"""Rates with contact-clustered intervals for many groups at once.

Each reported send falls in one group (an account's arm, method, creative or day and arm).
Per (group, contact) the sends, clicks, conversions and revenue are summed; per group the
three rates are ratios of those totals with the cluster-robust variance of
`selector.intervals`. Everything is a handful of sorts and `bincount`s, so ten million
sends cost seconds, and the per-contact state is a fixed set of numbers per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.intervals import CONFIDENCE, Lift, Moments, lift_of, z_value

FloatArray = NDArray[Any]
IntArray = NDArray[Any]
METRICS = ("click_rate", "conversion_rate", "revenue_per_send")


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate and its normal interval (NaN bounds with fewer than two contacts)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Group:
    """One group's totals and rates. Conversion rate is conversions per click, the rate
    the selector models; `moments` (one per metric of `METRICS`) feed lifts."""

    name: str
    sends: int
    contacts: int
    clicks: int
    conversions: int
    revenue: float
    click_rate: Rate
    conversion_rate: Rate
    revenue_per_send: Rate
    moments: tuple[Moments, Moments, Moments]


def lift(metric: str, treatment: Group | None, control: Group | None) -> Lift:
    """Lift of one group over another on one of `METRICS`."""
    if treatment is None or control is None:
        return Lift(metric, math.nan, math.nan, math.nan, math.nan, math.nan)
    i = METRICS.index(metric)
    return lift_of(metric, treatment.moments[i], control.moments[i])


@dataclass(frozen=True, slots=True, eq=False)
class GroupTable:
    """Groups as columns: `keys` (the distinct group keys, ascending) and per group the
    totals, contacts, and each metric's mean, variance and cluster count."""

    keys: NDArray[np.int64]
    sends: FloatArray
    contacts: IntArray
    clicks: FloatArray
    conversions: FloatArray
    revenue: FloatArray
    means: FloatArray  # (3, G)
    variances: FloatArray  # (3, G)

    def group(self, i: int, name: str, confidence: float = CONFIDENCE) -> Group:
        z = z_value(confidence)
        click, conversion, rps = (
            Moments(float(self.means[m, i]), float(self.variances[m, i]), int(self.contacts[i]))
            for m in range(len(METRICS))
        )

        def rate(mo: Moments) -> Rate:
            half = z * math.sqrt(mo.variance)
            return Rate(mo.mean, mo.mean - half, mo.mean + half)

        return Group(
            name=name,
            sends=int(self.sends[i]),
            contacts=int(self.contacts[i]),
            clicks=int(self.clicks[i]),
            conversions=int(self.conversions[i]),
            revenue=float(self.revenue[i]),
            click_rate=rate(click),
            conversion_rate=rate(conversion),
            revenue_per_send=rate(rps),
            moments=(click, conversion, rps),
        )


def _ratio_columns(
    cluster_group: IntArray, n: int, y: FloatArray, d: FloatArray, clusters: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Per group: sum y / sum d and its cluster-robust variance."""
    total_y = np.bincount(cluster_group, weights=y, minlength=n)
    total_d = np.bincount(cluster_group, weights=d, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total_d > 0, total_y / total_d, np.nan)
        resid = y - np.nan_to_num(mean)[cluster_group] * d
        squares = np.bincount(cluster_group, weights=resid * resid, minlength=n)
        j = clusters.astype(np.float64)
        variance = np.where(clusters >= 2, j / (j - 1) * squares / total_d**2, np.nan)
    return mean, np.where(total_d > 0, variance, np.nan)


def group_table(
    keys: NDArray[np.int64], contact: IntArray, n_contacts: int, sends: Any
) -> GroupTable:
    """Groups of `sends` (rows with clicks, conversions, revenue) by `keys` (one int64
    per send), contacts as clusters (`contact`: a dense rank per send)."""
    group_keys, group = np.unique(keys, return_inverse=True)
    n = group_keys.size
    pairs, cluster = np.unique(group.astype(np.int64) * n_contacts + contact, return_inverse=True)
    cluster_group = (pairs // n_contacts).astype(np.intp)
    per = {
        name: np.bincount(cluster, weights=sends[name].astype(np.float64), minlength=pairs.size)
        for name in ("clicks", "conversions", "revenue")
    }
    d_send = np.bincount(cluster, minlength=pairs.size).astype(np.float64)
    contacts = np.bincount(cluster_group, minlength=n)
    cols = [
        _ratio_columns(cluster_group, n, per["clicks"], d_send, contacts),
        _ratio_columns(cluster_group, n, per["conversions"], per["clicks"], contacts),
        _ratio_columns(cluster_group, n, per["revenue"], d_send, contacts),
    ]
    return GroupTable(
        keys=group_keys,
        sends=np.bincount(cluster_group, weights=d_send, minlength=n),
        contacts=contacts,
        clicks=np.bincount(cluster_group, weights=per["clicks"], minlength=n),
        conversions=np.bincount(cluster_group, weights=per["conversions"], minlength=n),
        revenue=np.bincount(cluster_group, weights=per["revenue"], minlength=n),
        means=np.stack([c[0] for c in cols]),
        variances=np.stack([c[1] for c in cols]),
    )
