"""The empirical-Bayes prior recovers a known strength and keeps its parameters >= 1; the
integrated propensities agree with a fine reference integral and with Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest

from selector.sendtime.prior import PriorFit, SlotPrior, fit_prior
from selector.sendtime.propensity import win_probability


def population(strength: float, means: list[float], sends: int, contacts: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    m = np.asarray(means)
    rates = rng.beta(m * strength, (1 - m) * strength, size=(contacts, m.size))
    n = rng.poisson(sends, size=(contacts, m.size))
    return n, rng.binomial(n, rates)


@pytest.mark.parametrize(("strength", "within"), [(8.0, 1.4), (40.0, 1.4), (300.0, 2.0)])
def test_one_routine_recovers_the_strength_and_means(strength: float, within: float) -> None:
    """With 15 sends a contact, a strength of 300 (contacts nearly alike) is only
    weakly identified: its estimates are allowed a factor of 2."""
    means = [0.1, 0.2, 0.35, 0.25]
    n, k = population(strength, means, sends=15, contacts=6000, seed=int(strength))
    prior = fit_prior(n, k)
    assert prior.routines == 1
    fitted = (prior.alpha + prior.beta)[0]
    assert (fitted > strength / within).all() and (fitted < strength * within).all()
    assert np.allclose(prior.mean, means, atol=0.01)
    assert prior.contacts == 6000


def test_two_routines_are_found_and_tell_contacts_apart() -> None:
    rng = np.random.default_rng(2)
    morning = np.array([0.4, 0.3, 0.05, 0.05, 0.05, 0.05])
    evening = morning[::-1]
    kind = rng.random(5000) < 0.3  # 30% evening people
    rate = np.where(kind[:, None], evening, morning)
    n = rng.poisson(3, size=(5000, 6))
    k = rng.binomial(n, rate)
    prior = fit_prior(n, k)
    assert prior.routines == 2
    evening_routine = int(np.argmax(prior.alpha[:, -1] / (prior.alpha + prior.beta)[:, -1]))
    assert abs(prior.weight[evening_routine] - 0.3) < 0.03
    guess = prior.routine_probabilities(n, k).argmax(axis=1) == evening_routine
    assert (guess == kind).mean() > 0.9
    # a new contact gets the mixture weights; one evening response makes it an evening one
    blank = np.zeros((1, 6), int)
    assert np.allclose(prior.routine_probabilities(blank, blank)[0], prior.weight)
    one, two = np.array([[0, 0, 0, 0, 0, 1]]), np.array([[0, 0, 0, 0, 0, 2]])
    assert prior.routine_probabilities(one, one)[0, evening_routine] > 0.7
    assert prior.routine_probabilities(two, two)[0, evening_routine] > 0.9


def test_strengths_keep_both_parameters_at_least_one() -> None:
    n, k = population(3.0, [0.02, 0.5], sends=20, contacts=4000, seed=1)
    prior = fit_prior(n, k)
    assert prior.alpha.min() >= 1.0 - 1e-9 and prior.beta.min() >= 1.0 - 1e-9
    rare = int(np.argmin(prior.mean))
    assert prior.alpha[:, rare].min() == pytest.approx(1.0)  # the floor binds there


def test_no_history_gives_the_uniform_prior_and_single_sends_the_default_strength() -> None:
    empty = fit_prior(np.zeros((5, 12), int), np.zeros((5, 12), int))
    assert empty.routines == 1 and (empty.alpha == 1).all() and (empty.beta == 1).all()
    n = np.zeros((400, 12), int)
    n[:, 3] = 1
    k = (np.arange(400) % 4 == 0).astype(int)[:, None] * (np.arange(12) == 3)
    prior = fit_prior(n, k, PriorFit(default_strength=30.0))
    assert prior.routines == 1
    assert (prior.alpha + prior.beta)[0, 3] == pytest.approx(30.0)
    assert prior.mean[3] == pytest.approx(0.25, abs=0.01)


def test_a_prior_survives_its_dict_form_and_rejects_bad_values() -> None:
    prior = SlotPrior(
        np.array([[1.5, 2.0], [3.0, 1.0]]), np.array([[8.0, 9.0], [2.0, 4.0]]), 10.5, 7,
        np.array([0.25, 0.75]),
    )  # fmt: skip
    again = SlotPrior.from_dict(prior.to_dict())
    assert np.array_equal(again.alpha, prior.alpha) and again.contacts == 7
    assert np.array_equal(again.weight, prior.weight)
    for bad in (
        {"alpha": [0.5], "beta": [2.0], "strength": 2.5},
        {"alpha": [[1.5]], "beta": [[2.0]], "strength": 2.5, "weight": [0.5]},
        {"alpha": "x", "beta": [2.0], "strength": 2.5},
        {"beta": [2.0], "strength": 2.5},
    ):
        with pytest.raises(ValueError):
            SlotPrior.from_dict(bad)


# --- propensities ------------------------------------------------------------------------


def reference(a: np.ndarray, b: np.ndarray, allowed: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Midpoint rule on 2^16 cells of [0, 1], in float64."""
    points = 1 << 16
    x = (np.arange(points) + 0.5) / points
    lx, l1x = np.log(x), np.log1p(-x)
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        cols = np.flatnonzero(allowed[i])
        lp = (a[i, cols, None] - 1) * lx + (b[i, cols, None] - 1) * l1x
        f = np.exp(lp - lp.max(axis=1, keepdims=True))
        f /= f.sum(axis=1, keepdims=True)
        cdf = np.cumsum(f, axis=1) - 0.5 * f
        k = int(np.flatnonzero(cols == chosen[i])[0])
        others = np.prod(np.delete(cdf, k, axis=0), axis=0)
        out[i] = float((f[k] * others).sum())
    return out


def posteriors(strength: float, max_sends: int, rows: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.01, 0.5, size=(rows, 12))
    n = rng.integers(0, max_sends + 1, size=(rows, 12)) * (rng.random((rows, 12)) < 0.6)
    k = rng.binomial(n, rate)
    m = rng.uniform(0.02, 0.4)
    a = np.maximum(m * strength, 1.0) + k
    b = np.maximum((1 - m) * strength, 1.0) + n - k
    allowed = rng.random((rows, 12)) < 0.7
    allowed[:, 0] = True
    draws = np.where(allowed, rng.beta(a, b), -1.0)
    return a, b, allowed, draws.argmax(axis=1)


@pytest.mark.parametrize(
    ("strength", "max_sends"), [(2.0, 3), (2.0, 20), (20.0, 300), (50.0, 3000), (5.0, 20000)]
)
def test_propensities_match_a_fine_reference_integral(strength: float, max_sends: int) -> None:
    a, b, allowed, chosen = posteriors(strength, max_sends, 80, seed=max_sends)
    got = win_probability(a, b, allowed, chosen)
    assert np.abs(got - reference(a, b, allowed, chosen)).max() < 1e-3


def test_propensities_match_monte_carlo() -> None:
    a, b, allowed, chosen = posteriors(10.0, 40, 12, seed=2)
    rng = np.random.default_rng(9)
    draws = np.where(
        allowed[:, None, :], rng.beta(a[:, None, :], b[:, None, :], size=(12, 100_000, 12)), -1.0
    )
    share = (draws.argmax(axis=2) == chosen[:, None]).mean(axis=1)
    got = win_probability(a, b, allowed, chosen)
    se = np.sqrt(np.maximum(got * (1 - got), 1e-6) / 100_000)
    assert (np.abs(share - got) < 5 * se + 1e-4).all()


def test_the_propensities_of_all_candidates_sum_to_one() -> None:
    a, b, allowed, _ = posteriors(20.0, 200, 40, seed=4)
    total = np.zeros(40)
    for c in range(12):
        rows = np.flatnonzero(allowed[:, c])
        total[rows] += win_probability(a[rows], b[rows], allowed[rows], np.full(rows.size, c))
    assert np.abs(total - 1.0).max() < 2e-3


def test_a_lone_candidate_has_probability_one_and_a_hopeless_one_zero() -> None:
    a = np.array([[5.0, 500.0], [5.0, 5.0]])
    b = np.array([[95.0, 500.0], [5.0, 5.0]])
    allowed = np.array([[True, True], [True, False]])
    got = win_probability(a, b, allowed, np.array([0, 0]))
    assert got[0] < 1e-9 and got[1] == 1.0
