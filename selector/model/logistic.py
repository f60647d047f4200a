"""Bayesian logistic regression with a Laplace posterior (Chapelle and Li 2011, section
3), fitted by Newton's method (iteratively reweighted least squares) in numpy.

The design row of a (contact, creative) pair is `kron(x, c)` followed by `q`: x the P
contact features (x[0] = 1), c the C creative features, q the Q contact-creative
features, so the logit is `x @ W @ c + q @ beta` with W a P x C matrix. The structure is
what keeps training cheap: grouping the rows by creative, the Hessian's W block is
sum_k kron(X_k' R_k X_k, c_k c_k'), so one Newton step costs O(N P^2) plus the D x D
solve (D = P C + Q), never an N x D matrix.

The prior is Gaussian with mean 0 and a precision per weight; the posterior is
N(w_map, A^-1) with A the Hessian of the negative log posterior at the mode. `diagonal`
keeps 1 / diag(A) (Chapelle and Li's choice, cheap to store and sample); `full` keeps the
Cholesky factor of A^-1, which also keeps the correlations between weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[Any]
PosteriorKind = Literal["diagonal", "full"]
POSTERIOR_KINDS: tuple[PosteriorKind, ...] = get_args(PosteriorKind)


@dataclass(frozen=True, slots=True, eq=False)
class Design:
    """Training rows sorted by creative: X (N x P), `bounds[k]:bounds[k+1]` the rows of
    creative k, `creative` the K x C creative features, `pair` the N x Q pair features."""

    X: FloatArray
    bounds: NDArray[np.intp]
    creative: FloatArray
    pair: FloatArray

    @classmethod
    def of(
        cls, X: FloatArray, group: NDArray[Any], creative: FloatArray, pair: FloatArray
    ) -> tuple[Design, NDArray[np.intp]]:
        """The design with rows sorted by `group`, and the order used (to sort labels)."""
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=creative.shape[0])
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        return cls(X[order], bounds, creative, pair[order]), order

    @property
    def dims(self) -> tuple[int, int, int]:
        return self.X.shape[1], self.creative.shape[1], self.pair.shape[1]

    def logits(self, w: FloatArray) -> FloatArray:
        p, c, _ = self.dims
        M = w[: p * c].reshape(p, c) @ self.creative.T
        out = self.pair @ w[p * c :]
        for k in range(self.creative.shape[0]):
            lo, hi = self.bounds[k], self.bounds[k + 1]
            if hi > lo:
                out[lo:hi] += self.X[lo:hi] @ M[:, k]
        return out

    def gradient_and_hessian(
        self, residual: FloatArray, weight: FloatArray, work: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """X' residual and X' diag(weight) X for the implicit design matrix. `work`, an
        N x (P + Q) scratch array reused across Newton steps, saves a large allocation
        (and its page faults) per step."""
        p, c, q = self.dims
        k_count = self.creative.shape[0]
        u = np.zeros((k_count, p))
        gram = np.zeros((k_count, p, p))
        cross = np.zeros((k_count, p, q))
        if work is None:
            work = np.empty((self.X.shape[0], p + q))
        root = np.sqrt(weight)[:, None]
        np.multiply(self.X, root, out=work[:, :p])
        np.multiply(self.pair, root, out=work[:, p:])
        for k in range(k_count):
            lo, hi = self.bounds[k], self.bounds[k + 1]
            if hi == lo:
                continue
            u[k] = residual[lo:hi] @ self.X[lo:hi]
            wk = work[lo:hi, :p]
            gram[k] = wk.T @ wk
            cross[k] = wk.T @ work[lo:hi, p:]
        cm = self.creative
        grad = np.concatenate([(u.T @ cm).reshape(-1), self.pair.T @ residual])
        d = p * c
        hess = np.empty((d + q, d + q))
        hess[:d, :d] = np.einsum("kab,kc,kd->acbd", gram, cm, cm).reshape(d, d)
        hess[:d, d:] = np.einsum("kaq,kc->acq", cross, cm).reshape(d, q)
        hess[d:, :d] = hess[:d, d:].T
        hess[d:, d:] = work[:, p:].T @ work[:, p:]
        return grad, hess


@dataclass(frozen=True, slots=True, eq=False)
class LaplacePosterior:
    """N(mean, covariance) over the weights: `sd` (diagonal) or `chol` (full, lower)."""

    mean: FloatArray
    sd: FloatArray | None = None
    chol: FloatArray | None = None

    @property
    def kind(self) -> PosteriorKind:
        return "full" if self.chol is not None else "diagonal"

    def marginal_sd(self) -> FloatArray:
        if self.chol is not None:
            return np.sqrt(np.einsum("ij,ij->i", self.chol, self.chol))
        assert self.sd is not None
        return self.sd

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """n weight vectors (n x D)."""
        z = rng.standard_normal((n, self.mean.size))
        if self.chol is not None:
            return self.mean + z @ self.chol.T
        assert self.sd is not None
        return self.mean + z * self.sd


@dataclass(frozen=True, slots=True)
class FitInfo:
    iterations: int
    converged: bool
    log_posterior: float


def _log_posterior(eta: FloatArray, y: FloatArray, w: FloatArray, precision: FloatArray) -> float:
    return float(y @ eta - np.logaddexp(0.0, eta).sum() - 0.5 * (precision * w * w).sum())


def fit(
    design: Design,
    y: FloatArray,
    precision: FloatArray,
    kind: PosteriorKind = "diagonal",
    max_iterations: int = 30,
    tolerance: float = 1e-6,
) -> tuple[LaplacePosterior, FitInfo]:
    """MAP weights by damped Newton steps, then the Laplace posterior at the mode.
    `y` must be sorted like the design's rows (`Design.of` returns the order)."""
    w = np.zeros(precision.size)
    eta = design.logits(w)
    current = _log_posterior(eta, y, w, precision)
    converged, iterations = False, 0
    p, _, q = design.dims
    work = np.empty((design.X.shape[0], p + q))
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        prob = 1.0 / (1.0 + np.exp(-eta))
        grad, hess = design.gradient_and_hessian(y - prob, prob * (1.0 - prob), work)
        grad -= precision * w
        hess[np.diag_indices_from(hess)] += precision
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:
            candidate = w + scale * step
            eta_c = design.logits(candidate)
            value = _log_posterior(eta_c, y, candidate, precision)
            if value >= current - 1e-9 or scale < 1e-4:
                break
            scale *= 0.5
        w, eta, current = candidate, eta_c, value
        if np.max(np.abs(scale * step)) < tolerance:
            converged = True
            break
    posterior = _posterior(design, eta, w, precision, kind, work)
    return posterior, FitInfo(iterations, converged, current)


def _posterior(
    design: Design,
    eta: FloatArray,
    w: FloatArray,
    precision: FloatArray,
    kind: PosteriorKind,
    work: FloatArray,
) -> LaplacePosterior:
    prob = 1.0 / (1.0 + np.exp(-eta))
    _, hess = design.gradient_and_hessian(np.zeros_like(eta), prob * (1.0 - prob), work)
    hess[np.diag_indices_from(hess)] += precision
    if kind == "diagonal":
        return LaplacePosterior(w, sd=1.0 / np.sqrt(np.diag(hess)))
    covariance = np.linalg.inv(hess)
    covariance = 0.5 * (covariance + covariance.T)
    return LaplacePosterior(w, chol=np.linalg.cholesky(covariance))
