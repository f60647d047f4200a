"""The structured Newton fit equals a plain Newton fit on the explicit design matrix."""

from __future__ import annotations

import numpy as np
import pytest

from selector.model.logistic import Design, LaplacePosterior, fit, fit_evidence


def problem(seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n, p, groups = 3000, 4, 6
    x = np.c_[np.ones(n), rng.normal(size=(n, p - 1))]
    group = rng.integers(0, groups, n)
    side = np.c_[np.ones(groups), np.eye(groups)[:, :3], rng.integers(0, 2, (groups, 2))]
    phi = np.stack([np.kron(x[i], side[group[i]]) for i in range(n)])
    w_true = rng.normal(scale=0.4, size=phi.shape[1])
    y = (rng.random(n) < 1 / (1 + np.exp(-phi @ w_true))).astype(float)
    precision = rng.uniform(0.5, 4.0, phi.shape[1])
    return x, group, side, phi, y, precision


def newton(phi: np.ndarray, y: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, ...]:
    w = np.zeros(phi.shape[1])
    for _ in range(50):
        prob = 1 / (1 + np.exp(-phi @ w))
        hess = (phi * (prob * (1 - prob))[:, None]).T @ phi + np.diag(precision)
        w = w + np.linalg.solve(hess, phi.T @ (y - prob) - precision * w)
    prob = 1 / (1 + np.exp(-phi @ w))
    hess = (phi * (prob * (1 - prob))[:, None]).T @ phi + np.diag(precision)
    return w, hess


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_structured_fit_matches_the_explicit_newton_fit(kind: str) -> None:
    x, group, side, phi, y, precision = problem()
    design, order = Design.of(x, group, side)
    post, info = fit(design, y[order], precision, kind)  # type: ignore[arg-type]
    w, hess = newton(phi, y, precision)
    assert info.converged
    np.testing.assert_allclose(post.mean, w, atol=1e-8)
    if kind == "full":
        assert post.chol is not None
        np.testing.assert_allclose(post.chol @ post.chol.T, np.linalg.inv(hess), atol=1e-10)
    else:
        np.testing.assert_allclose(post.marginal_sd(), 1 / np.sqrt(np.diag(hess)), rtol=1e-8)


def test_samples_follow_the_posterior() -> None:
    x, group, side, _, y, precision = problem(1)
    design, order = Design.of(x, group, side)
    post, _ = fit(design, y[order], precision, "full")
    draws = post.sample(20_000, np.random.default_rng(3))
    sd = post.marginal_sd()
    np.testing.assert_allclose(draws.mean(axis=0), post.mean, atol=5 * sd.max() / 100)
    np.testing.assert_allclose(draws.std(axis=0), post.marginal_sd(), rtol=0.05)


def test_an_empty_design_returns_the_prior() -> None:
    design, _ = Design.of(np.zeros((0, 2)), np.zeros(0, dtype=np.intp), np.ones((1, 2)))
    post, info = fit(design, np.zeros(0), np.full(4, 4.0))
    assert info.converged
    np.testing.assert_allclose(post.mean, 0.0)
    np.testing.assert_allclose(post.marginal_sd(), 0.5)
    assert isinstance(post, LaplacePosterior)


def test_the_evidence_shrinks_a_group_the_data_do_not_support() -> None:
    rng = np.random.default_rng(5)
    n, groups = 20_000, 4
    x = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    group = rng.integers(0, groups, n)
    side = np.c_[np.ones(groups), np.eye(groups)]  # shared column, then one per group
    w = np.zeros((3, 1 + groups))
    w[:, 0] = [-1.5, 0.3, -0.2]
    w[1, 1:] = [0.8, -0.8, 0.4, -0.4]  # feature 1 matters per group; feature 2 does not
    logit = np.einsum("np,pe,ne->n", x, w, side[group])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    design, order = Design.of(x, group, side)
    index = np.arange(3 * (1 + groups)).reshape(3, 1 + groups)
    feature_1, feature_2 = index[1, 1:], index[2, 1:]
    _, _, used = fit_evidence(design, y[order], np.ones(index.size), [feature_1, feature_2])
    assert used[feature_2[0]] > 50 * used[feature_1[0]]
    assert used[feature_1[0]] < 10  # its weights (|w| ~ 0.6) stay free
