"""An account's feedback delay distribution, estimated from the observed delays.

Input: a histogram of observed delays (bins between `edges`, the last one open) and,
per bin, how many parents (sends for click delays, clicks for conversion delays) are old
enough to have shown a delay in that bin (`at_risk`). A bin's count divided by its
at-risk parents estimates P(feedback, with a delay in that bin) per parent, free of the
censoring that hides long delays of young parents.

While the account's history is shorter than the delays' tail, the last bins have few or
no parents at risk, and normalising the bins that are seen would put the whole mass
below the oldest parent's age. Bins with fewer than `COVERED` of the parents at risk
therefore take their mass from a log-normal fitted by maximum likelihood to every bin
(counts Poisson with mean at_risk x rate x (G(upper) - G(lower)), the rate profiled
out; a grid over the median and sigma), and the covered bins keep their own estimate.
Given a `Prior`, the fit is its maximum a posteriori instead: while only the first bins
are seen, laws with a late median and a high rate explain them as well as laws with an
early median and a low rate, and the likelihood alone picks among them at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[Any]
COVERED = 0.2
LOG_MEDIANS = np.log(10.0) + 0.1 * np.arange(125)  # 10 s to ~30 days
SIGMAS = 0.2 + 0.1 * np.arange(29)
PASSES = 3  # weighting passes: the rates settle after two


@dataclass(frozen=True, slots=True, eq=False)
class DelayEstimate:
    """A delay CDF, piecewise linear in log time between the histogram's edges:
    `cdf[j]` is P(delay < edges[j]); the last value (1) is reached at twice the last
    edge."""

    edges: FloatArray
    cdf: FloatArray

    def __call__(self, seconds: FloatArray) -> FloatArray:
        t = np.maximum(np.asarray(seconds, dtype=np.float64), 1.0)
        return np.interp(np.log(t), self._grid(), self.cdf, left=0.0, right=1.0)

    def quantile(self, q: float) -> float:
        return float(np.exp(np.interp(q, self.cdf, self._grid())))

    def _grid(self) -> FloatArray:
        return np.log(np.r_[1.0, self.edges[1:], self.edges[-1] * 2.0])


def _normal_cdf(z: FloatArray) -> FloatArray:
    """Phi(z), vectorised (Abramowitz and Stegun 7.1.26, absolute error < 1.5e-7)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                + t * 1.061405429))))  # fmt: skip
    erf = 1.0 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1.0 + np.sign(z) * erf))


def lognormal_masses(edges: FloatArray, log_median: FloatArray, sigma: FloatArray) -> Any:
    """Mass of every bin (the last one open) under log-normals, one row per parameter."""
    logs = np.log(np.maximum(edges[1:], 1e-300))
    z = (logs[None, :] - log_median[:, None]) / sigma[:, None]
    cdf = np.concatenate(
        [np.zeros((z.shape[0], 1)), _normal_cdf(z), np.ones((z.shape[0], 1))], axis=1
    )
    return np.diff(cdf, axis=1)


@lru_cache(maxsize=4)
def _grid_masses(edges: tuple[float, ...]) -> Any:
    """Bin masses of every log-normal of the fitting grid (the edges are fixed)."""
    mu, sigma = (g.ravel() for g in np.meshgrid(LOG_MEDIANS, SIGMAS, indexing="ij"))
    masses = lognormal_masses(np.array(edges), mu, sigma)
    masses.setflags(write=False)
    return masses


def exposure(edges: FloatArray, ages: FloatArray, parents: FloatArray, old: float) -> Any:
    """Parents at risk per delay bin: each bucketed parent counts for the share of the bin
    (in log time) that its age has already covered; `old` parents (older than the
    window) count fully. A bin's count over its exposure is then unbiased for parents
    part-way through the bin, like an actuarial life table."""
    lo = np.log(np.maximum(edges, 1.0))
    hi = np.r_[lo[1:], lo[-1] + math.log(2.0)]
    covered = np.clip(
        (np.log(np.maximum(ages, 1.0))[:, None] - lo[None, :]) / (hi - lo)[None, :], 0.0, 1.0
    )
    return old + parents @ covered


def weighted(
    edges: FloatArray,
    counts: FloatArray,
    ages: FloatArray,
    parents: FloatArray,
    who: Any,
    totals: FloatArray,
    children: FloatArray | None = None,
    prior: Prior | None = None,
) -> Any:
    """The delay CDF from bucketed parents (`ages`, `parents`, their creative `who`) and
    each creative's total parents and children (sends and clicks for click delays).

    Creatives convert at different rates, and the mix of creatives changes over time (the
    policy learns): old parents and young ones then differ in how often they have any
    feedback at all, which the histogram would read as a delay. So each parent is
    weighted by its creative's rate, estimated with the exposure of the previous pass
    (children / parents whose feedback could have arrived); without `children`, one
    unweighted pass."""
    k = totals.size
    old = np.maximum(totals - np.bincount(who, weights=parents, minlength=k), 0.0)
    rate = np.ones(k)
    result = None
    for _ in range(1 if children is None else PASSES):
        w = rate / max(float(rate.max()), 1e-300)
        at_risk = exposure(edges, ages, w[who] * parents, float((w * old).sum()))
        result = estimate(edges, counts, at_risk, float((w * totals).sum()), prior)
        if result is None or children is None:
            return result
        seen = old + np.bincount(who, weights=parents * result(ages), minlength=k)
        rate = (children + 1.0) / (seen + 2.0)
    return result


@dataclass(frozen=True, slots=True)
class Prior:
    """A log-normal prior on the delay law: its log median and sigma, each with a
    normal prior of the given spread, for the grid fit's maximum a posteriori."""

    log_median: float
    sigma: float
    log_median_spread: float = 1.0
    sigma_spread: float = 0.5

    def law(self, edges: FloatArray) -> DelayEstimate:
        """The prior's own log-normal, binned on `edges` (the estimate before any data)."""
        masses = lognormal_masses(edges, np.array([self.log_median]), np.array([self.sigma]))
        return DelayEstimate(edges, np.concatenate([[0.0], np.cumsum(masses[0])]))

    def log_density(self) -> FloatArray:
        """Log prior density (up to a constant) of every law of the fitting grid."""
        mu, sigma = (g.ravel() for g in np.meshgrid(LOG_MEDIANS, SIGMAS, indexing="ij"))
        return np.asarray(
            -0.5 * ((mu - self.log_median) / self.log_median_spread) ** 2
            - 0.5 * ((sigma - self.sigma) / self.sigma_spread) ** 2
        )


def estimate(
    edges: FloatArray,
    counts: FloatArray,
    at_risk: FloatArray,
    total: float,
    prior: Prior | None = None,
) -> Any:
    """The delay CDF, or None when nothing can be estimated."""
    seen = at_risk > 0
    if not seen.any() or counts[seen].sum() <= 0:
        return None
    rate = np.divide(counts, at_risk, out=np.zeros_like(counts), where=seen)
    covered = at_risk >= COVERED * total
    if not covered.all():
        masses = _grid_masses(tuple(edges.tolist()))  # P x bins
        expected = masses[:, seen] * at_risk[seen][None, :]
        # laws that put (almost) nothing where delays were seen cannot explain them
        plausible = masses[:, seen].sum(axis=1) > 1e-6
        with np.errstate(divide="ignore"):
            loglik = (counts[seen][None, :] * np.log(np.maximum(masses[:, seen], 1e-300))).sum(1)
        loglik -= counts[seen].sum() * np.log(np.maximum(expected.sum(axis=1), 1e-300))
        if prior is not None:
            loglik = loglik + prior.log_density()
        best = int(np.argmax(np.where(plausible, loglik, -np.inf)))
        scale = counts[seen].sum() / max(float(expected[best].sum()), 1e-300)
        rate = np.where(covered, rate, scale * masses[best])
    if rate.sum() <= 0:
        return None
    return DelayEstimate(edges, np.concatenate([[0.0], np.cumsum(rate) / rate.sum()]))
