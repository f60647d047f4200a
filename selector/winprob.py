"""Exact Thompson win probabilities by numerical integration on fixed grids.

Thompson sampling picks the creative whose posterior draw scores highest, so the
probability that creative k is picked among an eligible set E is

    P(k | E) = integral of prod_{j in E, j != k} F_j(s) dF_k(s)

with F_j the CDF of creative j's score. Every score is handled in log space, where a
Beta's density has no singularity at 0 and a product of rates is a sum:

- clicks goal: score = CTR ~ Beta(a, b); log CTR has density
  exp(a y) (1 - exp(y))^(b - 1) / B(a, b), tabulated on `POINTS` points spanning
  `SPAN_SD` standard deviations each side of its mean and integrated by the trapezoid rule;
- revenue goal: log score = log CTR + log CVR + log value (log CTR + log value for
  per-click offers); the two log densities are binned on one step and convolved directly
  (no FFT: every term is positive, so the far tails keep their relative accuracy).

The CDFs of all creatives are interpolated (in log CDF) onto the union of their grids,
and the integral above is a trapezoid sum over that union, for every eligibility mask at
once: with L_j = log F_j and S_m = sum_{j in m} L_j, the integrand is
exp(S_m - L_k), so all masks cost two matrix products. Identical posteriors come out
exactly even. `tests/selector/test_winprob.py` checks the results against scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[Any]
BoolArray = NDArray[Any]

POINTS = 512
UNION_POINTS = 128
SPAN_SD = 14.0
CONVOLUTION_CELLS = 384
LOG_FLOOR = -600.0


def _digamma(x: FloatArray) -> FloatArray:
    """psi(x) for x > 0: recurrence up to x >= 6, then the asymptotic series."""
    x = np.asarray(x, dtype=np.float64).copy()
    shift = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        shift -= np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1.0, x)
    inv2 = 1.0 / (x * x)
    series = np.log(x) - 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))
    return np.asarray(series + shift)


def _trigamma(x: FloatArray) -> FloatArray:
    """psi'(x) for x > 0, like `_digamma`."""
    x = np.asarray(x, dtype=np.float64).copy()
    shift = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        shift += np.where(small, 1.0 / (x * x), 0.0)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv + 0.5 * inv2 + inv * inv2 * (1 / 6 - inv2 * (1 / 30 - inv2 / 42))
    return np.asarray(series + shift)


def log_beta_cdfs(alpha: FloatArray, beta: FloatArray, points: int = POINTS) -> tuple[Any, Any]:
    """Grids (K x points, in log x) and CDFs of log X for X ~ Beta(alpha_k, beta_k)."""
    a = np.asarray(alpha, dtype=np.float64)[:, None]
    b = np.asarray(beta, dtype=np.float64)[:, None]
    mean = _digamma(a) - _digamma(a + b)
    sd = np.sqrt(np.maximum(_trigamma(a) - _trigamma(a + b), 1e-300))
    lo = mean - SPAN_SD * sd
    hi = np.minimum(mean + SPAN_SD * sd, -1e-12)
    lo = np.minimum(lo, hi - 1e-9)
    ys = lo + (hi - lo) * np.linspace(0.0, 1.0, points)[None, :]
    tail = np.where(b == 1.0, 0.0, (b - 1.0) * np.log(-np.expm1(ys)))
    log_density = a * ys + tail
    density = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    cells = 0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(ys, axis=1)
    cdf = np.zeros_like(ys)
    np.cumsum(cells, axis=1, out=cdf[:, 1:])
    cdf /= cdf[:, -1:]
    return ys, cdf


def _binned(ys: FloatArray, cdf: FloatArray, start: float, step: float, cells: int) -> Any:
    """Probability mass of each cell [start + i step, start + (i + 1) step)."""
    edges = start + step * np.arange(cells + 1)
    return np.diff(np.interp(edges, ys, cdf, left=0.0, right=1.0))


def _product_cdf(first: tuple[Any, Any], second: tuple[Any, Any]) -> tuple[Any, Any]:
    """Grid and CDF of the sum of two independent log rates."""
    (ya, fa), (yb, fb) = first, second
    span = max(ya[-1] - ya[0], yb[-1] - yb[0])
    step = span / CONVOLUTION_CELLS
    na = max(1, int(np.ceil((ya[-1] - ya[0]) / step)))
    nb = max(1, int(np.ceil((yb[-1] - yb[0]) / step)))
    mass = np.convolve(_binned(ya, fa, ya[0], step, na), _binned(yb, fb, yb[0], step, nb))
    # cell i of a plus cell j of b: centres add up to ya0 + yb0 + (i + j + 1) step
    upper = ya[0] + yb[0] + step * (np.arange(mass.size) + 1.5)
    grid = np.concatenate([[upper[0] - step], upper])
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    return grid, np.minimum(cdf / cdf[-1], 1.0)


def _log(cdf: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(cdf), LOG_FLOOR)


@dataclass(frozen=True, slots=True, eq=False)
class ScoreTables:
    """Every column's log-score CDF on one shared grid: `log_cdf` (K x U, floored at
    `LOG_FLOOR`) and `cdf` (its exponential)."""

    log_cdf: FloatArray
    cdf: FloatArray

    @classmethod
    def of(cls, grids: list[tuple[Any, Any]]) -> ScoreTables:
        stride = max(1, max(g.size for g, _ in grids) // UNION_POINTS)
        union = np.unique(np.concatenate([np.r_[g[::stride], g[-1]] for g, _ in grids]))
        rows = [np.interp(union, g, _log(f), left=LOG_FLOOR, right=0.0) for g, f in grids]
        log_cdf = np.array(rows)
        return cls(log_cdf, np.exp(log_cdf))

    @classmethod
    def clicks(cls, alpha: FloatArray, beta: FloatArray) -> ScoreTables:
        ys, cdf = log_beta_cdfs(alpha, beta)
        return cls.of(list(zip(ys, cdf, strict=True)))

    @classmethod
    def revenue(
        cls,
        ctr: tuple[FloatArray, FloatArray],
        cvr: tuple[FloatArray, FloatArray],
        value: FloatArray,
        per_click: BoolArray,
    ) -> ScoreTables:
        """Score = CTR x CVR x value, or CTR x value where `per_click`."""
        cy, cf = log_beta_cdfs(*ctr)
        vy, vf = log_beta_cdfs(*cvr)
        grids = []
        for k in range(cy.shape[0]):
            ctr_k = (cy[k], cf[k])
            grid, cdf = ctr_k if per_click[k] else _product_cdf(ctr_k, (vy[k], vf[k]))
            grids.append((grid + np.log(max(float(value[k]), 1e-300)), cdf))
        return cls.of(grids)

    def win_probabilities(self, masks: BoolArray) -> FloatArray:
        """P(column k has the highest score | only the mask's columns compete), G x K;
        rows of an empty mask are zero."""
        masks = np.asarray(masks, dtype=bool)
        log_cdf, cdf = self.log_cdf, self.cdf
        mass = np.diff(cdf, axis=1)  # K x (U - 1)
        inverse = np.exp(-log_cdf)
        left, right = 0.5 * mass * inverse[:, :-1], 0.5 * mass * inverse[:, 1:]
        total = np.exp(masks.astype(np.float64) @ log_cdf)  # G x U: prod over the mask
        p = total[:, :-1] @ left.T + total[:, 1:] @ right.T
        p = np.where(masks, np.maximum(p, 0.0), 0.0)
        sums = p.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(p, sums, out=np.zeros_like(p), where=sums > 0))
