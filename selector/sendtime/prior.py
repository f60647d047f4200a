"""Slot priors from the account's history: empirical Bayes with a fitted strength.

Per cell c (slot, or slot and day kind) the prior is Beta(m_c t, (1 - m_c) t):

* m_c, the account's response rate in that cell over its contacts' counted history,
  pulled towards the overall rate by `mean_pseudo_sends` sends (so a cell the account
  rarely sends in starts at the overall rate, not at a noisy or empty estimate);
* t, one strength shared by all cells, is the maximum of the beta-binomial marginal
  likelihood of every contact's (sends, responses) per cell,

      sum_j sum_c log B(k_jc + m_c t, n_jc - k_jc + (1 - m_c) t) - log B(m_c t, (1 - m_c) t),

  found by a grid over log t refined by golden-section search. No special functions are
  needed: with integer counts, log G(x + k) - log G(x) = sum_{i<k} log(x + i), a cumsum.

A large t says contacts respond alike and a contact's own history moves its posterior
slowly; a small t lets a few sends personalize it. t is kept at least
1 / min(m_c, 1 - m_c) so that both prior parameters are >= 1 (unimodal priors with no
mass piled at 0 or 1, which the propensity integration relies on), and at most
`max_strength`. With no contact having two or more sends in a cell the strength is not
identifiable and `default_strength` is used.

The daily job fits this from the counts it recomputes and publishes it with the
parameter snapshot; decisions add each contact's own window counts to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Int64Array = NDArray[np.int64]
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, slots=True, eq=False)
class SlotPrior:
    """Beta prior per cell; `strength` = alpha + beta, `contacts` the contacts fitted."""

    alpha: FloatArray
    beta: FloatArray
    strength: float
    contacts: int = 0

    @classmethod
    def uniform(cls, cells: int) -> SlotPrior:
        """Beta(1, 1) everywhere: an account without history."""
        return cls(np.ones(cells), np.ones(cells), 2.0, 0)

    @property
    def mean(self) -> FloatArray:
        return self.alpha / (self.alpha + self.beta)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "strength": self.strength,
            "contacts": self.contacts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotPrior:
        alpha = np.asarray(data["alpha"], dtype=np.float64)
        beta = np.asarray(data["beta"], dtype=np.float64)
        ok = alpha.shape == beta.shape and alpha.ndim == 1 and alpha.size > 0
        if not ok or not ((alpha >= 1.0).all() and (beta >= 1.0).all()):
            raise ValueError("prior alpha and beta must be equal-length lists of numbers >= 1")
        return cls(alpha, beta, float(data["strength"]), int(data.get("contacts", 0)))


@dataclass(frozen=True, slots=True)
class PriorFit:
    """How the strength is fitted."""

    mean_pseudo_sends: float = 100.0
    min_strength: float = 2.0
    max_strength: float = 10_000.0
    default_strength: float = 20.0
    grid_points: int = 41
    refine_steps: int = 30


def _log_rising(x: FloatArray, top: int) -> FloatArray:
    """(C, top + 1): sum_{i<k} log(x_c + i) for k = 0..top."""
    out = np.zeros((x.size, top + 1))
    if top:
        np.cumsum(np.log(x[:, None] + np.arange(top)[None, :]), axis=1, out=out[:, 1:])
    return out


class _Data:
    """Distinct (cell, n, k) triples with their multiplicities, for fast evaluation."""

    def __init__(self, sends: Int64Array, responses: Int64Array) -> None:
        n = np.asarray(sends, dtype=np.int64)
        k = np.minimum(np.asarray(responses, dtype=np.int64), n)
        cells = np.broadcast_to(np.arange(n.shape[1]), n.shape)
        seen = n > 0
        triples = np.stack([cells[seen], n[seen], k[seen]], axis=1)
        self.unique, self.weight = np.unique(triples, axis=0, return_counts=True)
        self.top = int(self.unique[:, 1].max()) if self.unique.size else 0
        self.informative = bool((self.unique[:, 1] >= 2).any()) if self.unique.size else False

    def log_likelihood(self, mean: FloatArray, strength: float) -> float:
        a, b = mean * strength, (1.0 - mean) * strength
        la, lb = _log_rising(a, self.top), _log_rising(b, self.top)
        lt = _log_rising(np.array([strength]), self.top)[0]
        c, n, k = self.unique[:, 0], self.unique[:, 1], self.unique[:, 2]
        terms = la[c, k] + lb[c, n - k] - lt[n]
        return float(np.dot(self.weight, terms))


def fit_prior(sends: Int64Array, responses: Int64Array, fit: PriorFit | None = None) -> SlotPrior:
    """Fit the account's prior from (contacts, cells) window counts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rates = rng.beta(6.0, 14.0, size=(4000, 1))  # true strength 20, mean 0.3
    >>> n = np.full((4000, 1), 12)
    >>> prior = fit_prior(n, rng.binomial(n, rates))
    >>> 14 < prior.strength < 28, round(float(prior.mean[0]), 2)
    (True, 0.3)
    """
    fit = fit or PriorFit()
    n = np.asarray(sends, dtype=np.int64)
    k = np.minimum(np.asarray(responses, dtype=np.int64), n)
    total_n, total_k = n.sum(axis=0), k.sum(axis=0)
    if total_n.sum() == 0:
        return SlotPrior.uniform(n.shape[1])
    overall = float(total_k.sum() / total_n.sum())
    mean = (total_k + fit.mean_pseudo_sends * overall) / (total_n + fit.mean_pseudo_sends)
    mean = np.clip(mean, 1e-6, 1.0 - 1e-6)
    floor = max(fit.min_strength, float((1.0 / np.minimum(mean, 1.0 - mean)).max()))
    ceiling = max(floor, fit.max_strength)
    data = _Data(n, k)
    if not data.informative:
        strength = min(max(fit.default_strength, floor), ceiling)
    else:
        strength = _maximize(lambda t: data.log_likelihood(mean, t), floor, ceiling, fit)
    contacts = int((n.sum(axis=1) > 0).sum())
    return SlotPrior(mean * strength, (1.0 - mean) * strength, strength, contacts)


def _maximize(f: Any, low: float, high: float, fit: PriorFit) -> float:
    """Maximize f over [low, high] in log space: a grid, then golden section."""
    if high <= low:
        return low
    grid = np.linspace(math.log(low), math.log(high), fit.grid_points)
    values = [f(math.exp(x)) for x in grid]
    best = int(np.argmax(values))
    a = grid[max(best - 1, 0)]
    b = grid[min(best + 1, grid.size - 1)]
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    for _ in range(fit.refine_steps):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(math.exp(d))
    return math.exp((a + b) / 2.0)
