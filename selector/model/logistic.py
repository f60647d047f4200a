"""Bayesian logistic regression with a Laplace posterior (Chapelle and Li 2011, section
3), fitted by Newton's method (iteratively reweighted least squares) in numpy.

The design row of a training example is `kron(x, d)`: x the P contact features (x[0] =
1), d a side vector shared by every row of the example's group (for the model, a group
is a creative and a pattern of the binary contact-creative features, d = [creative
features, contact-creative features]), so the logit is `x @ W @ d` with W a P x E
matrix. The structure is what keeps training cheap: with the rows sorted by group, the
Hessian is sum_g kron(X_g' R_g X_g, d_g d_g'), so one Newton step costs O(N P^2) plus the
D x D solve (D = P E), never an N x D matrix.

The prior is Gaussian with mean 0 and a precision per weight; the posterior is
N(w_map, A^-1) with A the Hessian of the negative log posterior at the mode. `diagonal`
keeps 1 / diag(A) (Chapelle and Li's choice, cheap to store); `full` keeps the Cholesky
factor of A^-1, and so the correlations between weights (the model's bias, offer and
creative columns are collinear by construction, and only the full posterior knows that
their errors cancel in a prediction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[Any]
PosteriorKind = Literal["diagonal", "full"]
POSTERIOR_KINDS: tuple[PosteriorKind, ...] = get_args(PosteriorKind)


@dataclass(frozen=True, slots=True, eq=False)
class Design:
    """Training rows sorted by group: X (N x P), `bounds[g]:bounds[g+1]` the rows of
    group g, `side` the G x E side vectors."""

    X: FloatArray
    bounds: NDArray[np.intp]
    side: FloatArray

    @classmethod
    def of(
        cls, X: FloatArray, group: NDArray[Any], side: FloatArray
    ) -> tuple[Design, NDArray[np.intp]]:
        """The design with rows sorted by `group`, and the order used (to sort labels)."""
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=side.shape[0])
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        return cls(X[order], bounds, side), order

    @property
    def dims(self) -> tuple[int, int]:
        return self.X.shape[1], self.side.shape[1]

    def _groups(self) -> list[tuple[int, int, int]]:
        b = self.bounds
        return [(g, int(b[g]), int(b[g + 1])) for g in range(self.side.shape[0]) if b[g + 1] > b[g]]

    def logits(self, w: FloatArray) -> FloatArray:
        p, e = self.dims
        M = w.reshape(p, e) @ self.side.T
        out = np.empty(self.X.shape[0])
        for g, lo, hi in self._groups():
            out[lo:hi] = self.X[lo:hi] @ M[:, g]
        return out

    def gradient_and_hessian(
        self, residual: FloatArray, weight: FloatArray, work: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """X' residual and X' diag(weight) X for the implicit design matrix. `work`, an
        N x P scratch array reused across Newton steps, saves a large allocation (and
        its page faults) per step."""
        p, e = self.dims
        count = self.side.shape[0]
        u = np.zeros((count, p))
        gram = np.zeros((count, p, p))
        if work is None:
            work = np.empty_like(self.X)
        np.multiply(self.X, np.sqrt(weight)[:, None], out=work)
        for g, lo, hi in self._groups():
            u[g] = residual[lo:hi] @ self.X[lo:hi]
            wg = work[lo:hi]
            gram[g] = wg.T @ wg
        grad = (u.T @ self.side).reshape(-1)
        d = p * e
        hess = np.einsum("gab,gc,gd->acbd", gram, self.side, self.side, optimize=True)
        return grad, hess.reshape(d, d)


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
    initial: FloatArray | None = None,
) -> tuple[LaplacePosterior, FitInfo]:
    """MAP weights by damped Newton steps (from `initial`, or 0), then the Laplace
    posterior at the mode. `y` must be sorted like the design's rows (`Design.of`)."""
    w = np.zeros(precision.size) if initial is None else initial.copy()
    eta = design.logits(w)
    current = _log_posterior(eta, y, w, precision)
    converged, iterations = False, 0
    work = np.empty_like(design.X)
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


def fit_evidence(
    design: Design,
    y: FloatArray,
    precision: FloatArray,
    groups: Sequence[NDArray[np.intp]],
    kind: PosteriorKind = "diagonal",
    rounds: int = 10,
    bounds: tuple[float, float] = (1.0, 1e6),
) -> tuple[LaplacePosterior, FitInfo, FloatArray]:
    """`fit`, with each group's shared prior precision set from the data: MacKay's
    evidence fixed point under the Laplace approximation, lambda = gamma / |w_g|^2 with
    gamma = sum over the group of (1 - lambda * posterior variance), the group's number of
    well-determined weights. A group the data support settles at a finite precision; for
    one they do not, the evidence keeps growing with the precision (as relevance vector
    machines prune weights), which the fixed point climbs only slowly, so each group is
    then also tried at the upper bound, all but switched off, and left there if the
    Laplace evidence says so (a Bayesian comparison of the model with the group and
    without it). Returns the posterior, its fit and the precisions used."""
    precision = precision.copy()
    post, info = fit(design, y, precision, "full")
    for _ in range(rounds):
        variance = post.marginal_sd() ** 2
        moved = False
        for g in groups:
            if g.size == 0:
                continue
            current = float(precision[g[0]])
            gamma = float(np.sum(1.0 - current * variance[g]))
            squared = max(float(np.sum(post.mean[g] ** 2)), 1e-12)
            new = float(np.clip(max(gamma, 0.0) / squared, *bounds))
            moved |= abs(math.log(new / current)) > 0.05
            precision[g] = new
        if not moved:
            break
        post, info = fit(design, y, precision, "full", initial=post.mean)
    for g in groups:
        if g.size == 0 or precision[g[0]] >= bounds[1]:
            continue
        trial = precision.copy()
        trial[g] = bounds[1]
        post_t, info_t = fit(design, y, trial, "full", initial=post.mean)
        if log_evidence(post_t, info_t, trial) > log_evidence(post, info, precision):
            precision, post, info = trial, post_t, info_t
    if kind == "diagonal":
        post, info = fit(design, y, precision, "diagonal", initial=post.mean)
    return post, info, precision


def log_evidence(post: LaplacePosterior, info: FitInfo, precision: FloatArray) -> float:
    """log p(y | prior precisions), Laplace approximation, up to a constant: the log
    posterior at the mode + 1/2 sum log precision - 1/2 log det A (full posterior)."""
    assert post.chol is not None
    return (
        info.log_posterior
        + 0.5 * float(np.log(precision).sum())
        + float(np.log(np.diag(post.chol)).sum())
    )
