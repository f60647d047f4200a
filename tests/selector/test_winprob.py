"""Exact Thompson win probabilities against scipy's numerical integration.

The references integrate with scipy's own Beta densities and CDFs in linear space, a
different method from `selector.winprob`'s log-space grids: clicks by adaptive
quadrature, revenue by quadrature of the score CDF over the conversion rate on a fine
score grid.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import beta as beta_dist

from selector.winprob import ScoreTables

ALL = None


def exact_clicks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(column k has the highest Beta draw), by adaptive quadrature."""
    out = []
    means = a / (a + b)
    for k in range(a.size):
        others = [j for j in range(a.size) if j != k]

        def integrand(x: float, k: int = k, others: list[int] = others) -> float:
            rest = np.prod([beta_dist.cdf(x, a[j], b[j]) for j in others])
            return float(beta_dist.pdf(x, a[k], b[k]) * rest)

        lo, hi = beta_dist.ppf([1e-15, 1 - 1e-15], a[k], b[k])
        points = sorted({float(m) for m in means if lo < m < hi})
        value, _ = integrate.quad(
            integrand, lo, hi, points=points or None, limit=400, epsabs=0, epsrel=1e-10
        )
        out.append(value)
    return np.array(out)


CLICK_CASES = [
    # graduated creatives with close rates
    (np.array([301.0, 401.0, 150.0]), np.array([2700.0, 3600.0, 1400.0])),
    # a new creative (uniform prior) against an established one, and one with no clicks
    (np.array([1.0, 1.0, 30.0]), np.array([1.0, 200.0, 300.0])),
    # a million sends against small and medium counts: small win probabilities
    (np.array([90_001.0, 1.0, 1201.0, 5.0]), np.array([910_001.0, 50.0, 10_800.0, 40.0])),
    (np.array([12.0, 13.0, 20.0, 14.0, 2.0]), np.array([100.0, 90.0, 200.0, 120.0, 30.0])),
    # clear losers: probabilities between 1e-4 and 1e-2
    (np.array([130.0, 100.0, 112.0]), np.array([870.0, 900.0, 888.0])),
]


@pytest.mark.parametrize(("a", "b"), CLICK_CASES)
def test_clicks_win_probabilities_match_quadrature(a: np.ndarray, b: np.ndarray) -> None:
    ours = ScoreTables.clicks(a, b).win_probabilities(np.ones((1, a.size), dtype=bool))[0]
    truth = exact_clicks(a, b)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)
    for p, t in zip(ours, truth, strict=True):
        if t >= 1e-6:
            assert abs(p - t) <= 0.02 * t, (p, t)
        else:
            assert abs(p - t) <= 1e-7


def score_cdf(
    s: np.ndarray, ctr: tuple[float, float], cvr: tuple[float, float] | None, value: float
) -> np.ndarray:
    """CDF of value x CTR x CVR (value x CTR without a CVR) at the points `s`."""
    if cvr is None:
        return np.asarray(beta_dist.cdf(s / value, *ctr))
    lo, hi = beta_dist.ppf([1e-14, 1 - 1e-14], *cvr)

    def integrand(v: float) -> np.ndarray:
        return np.asarray(beta_dist.pdf(v, *cvr) * beta_dist.cdf(s / (value * v), *ctr))

    result, _ = integrate.quad_vec(integrand, lo, hi, epsabs=1e-13, epsrel=1e-9, limit=400)
    return np.asarray(result)


def exact_revenue(
    creatives: list[tuple[tuple[float, float], tuple[float, float] | None, float]],
) -> np.ndarray:
    """P(column k has the highest revenue score): a Stieltjes sum of the product of the
    others' score CDFs against k's, on a grid that is fine around every creative's mean
    (+-12 sd, 4,001 points) and covers the whole support."""
    pieces, top = [], 0.0
    for ctr, cvr, value in creatives:
        parts = [ctr] if cvr is None else [ctr, cvr]
        mean = value * np.prod([beta_dist.mean(*x) for x in parts])
        rel = np.sqrt(sum(beta_dist.var(*x) / beta_dist.mean(*x) ** 2 for x in parts))
        pieces.append(np.linspace(max(mean * (1 - 12 * rel), 0.0), mean * (1 + 12 * rel), 4001))
        top = max(top, value * np.prod([beta_dist.ppf(1 - 1e-13, *x) for x in parts]))
    s = np.unique(np.concatenate([*pieces, np.linspace(0.0, top, 4001)]))[1:]
    cdfs = np.array([score_cdf(s, c, v, value) for c, v, value in creatives])
    out = []
    for k in range(len(creatives)):
        rest = np.prod(np.delete(cdfs, k, axis=0), axis=0)
        mass = np.diff(cdfs[k])
        out.append(float(np.sum(mass * 0.5 * (rest[1:] + rest[:-1]))))
    return np.array(out)


REVENUE_CASES = [
    [((301.0, 2700.0), (31.0, 270.0), 30.0), ((401.0, 3600.0), (41.0, 360.0), 25.0),
     ((150.0, 1400.0), None, 0.35), ((40.0, 500.0), (3.0, 40.0), 20.0)],
    # win probabilities from 0.9 down to 1e-3 and 4e-5
    [((600.0, 4400.0), (120.0, 480.0), 20.0), ((560.0, 4440.0), (100.0, 460.0), 20.0),
     ((480.0, 4520.0), (90.0, 390.0), 20.0), ((500.0, 4500.0), (80.0, 420.0), 20.0),
     ((500.0, 4500.0), (70.0, 430.0), 20.0)],
    [((2.0, 60.0), (1.0, 1.0), 30.0), ((1300.0, 8700.0), (260.0, 1040.0), 20.0)],
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("creatives", REVENUE_CASES)
def test_revenue_win_probabilities_are_within_10_percent_down_to_1e_4(creatives: list) -> None:
    ctr = tuple(np.array([c[0][i] for c in creatives]) for i in range(2))
    cvr = tuple(np.array([(c[1] or (1.0, 1.0))[i] for c in creatives]) for i in range(2))
    value = np.array([c[2] for c in creatives])
    per_click = np.array([c[1] is None for c in creatives])
    tables = ScoreTables.revenue(ctr, cvr, value, per_click)  # type: ignore[arg-type]
    ours = tables.win_probabilities(np.ones((1, len(creatives)), dtype=bool))[0]
    truth = exact_revenue(creatives)
    assert truth.sum() == pytest.approx(1.0, abs=1e-6)
    for p, t in zip(ours, truth, strict=True):
        if t >= 1e-4:
            assert abs(p - t) <= 0.10 * t, (p, t)
        else:
            assert abs(p - t) <= 1e-5


def test_masks_restrict_the_competition_and_ties_split_evenly() -> None:
    a = np.array([50.0, 50.0, 80.0, 10.0])
    b = np.array([450.0, 450.0, 420.0, 490.0])
    tables = ScoreTables.clicks(a, b)
    masks = np.array(
        [[True, True, False, False], [False, False, True, False], [False] * 4, [True] * 4]
    )
    p = tables.win_probabilities(masks)
    assert p[0, 0] == pytest.approx(0.5, abs=1e-12) and p[0, 1] == pytest.approx(0.5, abs=1e-12)
    assert p[0, 2:].tolist() == [0.0, 0.0]
    assert p[1].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert p[2].tolist() == [0.0] * 4
    assert p[3].sum() == pytest.approx(1.0) and p[3, 2] > p[3, 0] > p[3, 3] > 0
    alone = tables.win_probabilities(masks[3:])[0]
    np.testing.assert_allclose(alone, p[3])


def test_win_probabilities_match_thompson_draws() -> None:
    """Plain Monte Carlo of the definition agrees within its sampling error."""
    rng = np.random.default_rng(5)
    a, b = np.array([20.0, 25.0, 18.0, 2.0]), np.array([180.0, 190.0, 150.0, 30.0])
    draws = rng.beta(a, b, size=(400_000, 4))
    freq = np.bincount(draws.argmax(axis=1), minlength=4) / 400_000
    ours = ScoreTables.clicks(a, b).win_probabilities(np.ones((1, 4), dtype=bool))[0]
    se = np.sqrt(freq * (1 - freq) / 400_000)
    assert np.all(np.abs(ours - freq) < 5 * se + 1e-6)
