"""The table Beta sampler against numpy's exact one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta as scipy_beta

from selector.sampling import ExactBetaSampler, TableBetaSampler

CASES = [
    (301.0, 2700.0),  # a graduated click rate
    (31.0, 271.0),  # a conversion rate on few clicks
    (1.5, 3000.0),  # no clicks yet: strongly skewed
    (2.0, 2.0),  # nearly flat
    (90_001.0, 910_001.0),  # a million sends: very narrow
]


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    both = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), both, side="right") / a.size
    fb = np.searchsorted(np.sort(b), both, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


@pytest.mark.parametrize(("a", "b"), CASES)
def test_table_draws_match_numpy_beta(a: float, b: float) -> None:
    n = 200_000
    alpha, beta = np.array([a]), np.array([b])
    table = TableBetaSampler().sample(alpha, beta, n, np.random.default_rng(1))[:, 0]
    exact = ExactBetaSampler().sample(alpha, beta, n, np.random.default_rng(2))[:, 0]
    # two-sample KS critical value at alpha=0.001 for n=m=200k is 1.95*sqrt(2/n) = 0.0062
    assert ks_statistic(table.astype(np.float64), exact) < 0.0062
    for q in (0.001, 0.01, 0.5, 0.99, 0.999):
        truth = scipy_beta.ppf(q, a, b)
        # standard error of a sample quantile: sqrt(q(1-q)/n) / density at the quantile
        se = np.sqrt(q * (1 - q) / n) / scipy_beta.pdf(truth, a, b)
        assert abs(np.quantile(table, q) - truth) < 5 * se


def test_draws_stay_inside_the_unit_interval_and_have_the_right_shape() -> None:
    alpha = np.array([1.0, 2.0, 500.0, 0.5])
    beta = np.array([1.0, 9000.0, 500.0, 0.5])
    draws = TableBetaSampler().sample(alpha, beta, 5000, np.random.default_rng(3))
    assert draws.shape == (5000, 4)
    assert np.all((draws >= 0) & (draws <= 1))


def test_small_parameters_use_the_exact_sampler() -> None:
    alpha, beta = np.array([0.5]), np.array([0.5])
    draws = TableBetaSampler().sample(alpha, beta, 100_000, np.random.default_rng(4))[:, 0]
    # arcsine distribution: a quarter of the mass lies below sin(pi/8)^2
    assert abs(np.mean(draws < np.sin(np.pi / 8) ** 2) - 0.25) < 0.01


def test_same_seed_same_draws_and_bounded_cache() -> None:
    sampler = TableBetaSampler(max_tables=3, max_prepared=2)
    a = sampler.sample(np.array([10.0, 20.0]), np.array([90.0, 80.0]), 10, np.random.default_rng(5))
    for k in range(6):
        sampler.sample(np.array([10.0 + k]), np.array([50.0]), 10, np.random.default_rng(0))
    b = sampler.sample(np.array([10.0, 20.0]), np.array([90.0, 80.0]), 10, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert len(sampler._tables) <= 3 and len(sampler._prepared) <= 2
