"""Slot priors from the account's history: empirical Bayes over routines.

People keep different daily routines: most of an account may open in the morning and a
third in the evening. A prior with one Beta per slot, fitted to everybody, would tell an
evening contact that the morning is promising (because most contacts open then) and
make it learn otherwise one unanswered morning send at a time. So the prior is a
mixture over K routines: routine r has a weight w_r and, per cell c (slot, or slot and
day kind), a Beta(m_rc t_rc, (1 - m_rc) t_rc). Given its routine a contact's cells are
independent Betas, updated by its counts exactly as with a single prior; which routine
it follows is inferred from the same counts:

    P(r | contact) ~ w_r prod_c BB(k_c | n_c, m_rc t_rc, (1 - m_rc) t_rc)

(BB the beta-binomial). A contact without history gets the weights w; one response at
19:00 is enough to make the evening routine likely. K = 1 is the plain per-slot prior.

Fitting (the daily job, from every contact's counted history):

* for each K in 1..`max_routines`, EM for a mixture of independent binomials (started
  deterministically from routines peaking at evenly spaced times of day) gives w_r and
  m_rc, then the strengths below; K is chosen by BIC on the resulting beta-binomial
  mixture's likelihood (so contacts merely differing in how much they respond overall
  are not mistaken for routines unless that pays for the extra parameters);
* each strength t_rc maximizes the beta-binomial marginal likelihood of the contacts'
  (sends, responses) in the cell, each contact weighted by its probability of the
  routine: a grid over log t refined by golden section. No special functions are
  needed: with integer counts, log G(x + k) - log G(x) = sum_{i<k} log(x + i), a cumsum.
  Cells with fewer than `min_informative` (weighted) contacts having two or more sends
  use the strength fitted to all cells of the routine together;
* each t_rc is kept at least 1 / min(m_rc, 1 - m_rc), so that both Beta parameters are
  >= 1 (unimodal, as the propensity integration requires), and at most `max_strength`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Int64Array = NDArray[np.int64]
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def log_rising(x: FloatArray, top: int) -> FloatArray:
    """(..., top + 1): sum_{i<k} log(x + i) for k = 0..top, for each x."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((*x.shape, top + 1))
    if top:
        np.cumsum(np.log(x[..., None] + np.arange(top)), axis=-1, out=out[..., 1:])
    return out


@dataclass(frozen=True, slots=True, eq=False)
class SlotPrior:
    """A mixture over routines: `weight` (K,), `alpha` and `beta` (K, cells).
    `strength` is the typical (median) alpha + beta, `contacts` the contacts fitted."""

    alpha: FloatArray
    beta: FloatArray
    strength: float
    contacts: int = 0
    weight: FloatArray = field(default_factory=lambda: np.ones(1))

    def __post_init__(self) -> None:
        alpha, beta = np.atleast_2d(self.alpha), np.atleast_2d(self.beta)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        if self.weight.shape != (alpha.shape[0],) or alpha.shape != beta.shape:
            raise ValueError("a prior needs alpha and beta of shape (routines, cells)")
        if not ((alpha >= 1.0 - 1e-9).all() and (beta >= 1.0 - 1e-9).all()):
            raise ValueError("prior parameters must be >= 1")

    @classmethod
    def uniform(cls, cells: int) -> SlotPrior:
        """Beta(1, 1) everywhere, one routine: an account without history."""
        return cls(np.ones((1, cells)), np.ones((1, cells)), 2.0, 0, np.ones(1))

    @property
    def cells(self) -> int:
        return int(self.alpha.shape[1])

    @property
    def routines(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def mean(self) -> FloatArray:
        """(cells,): the prior mean rate of each cell over the mixture."""
        return self.weight @ (self.alpha / (self.alpha + self.beta))

    def log_marginals(self, sends: Int64Array, responses: Int64Array) -> FloatArray:
        """(N, K): log w_r + log P(a contact's counts | routine r), up to the binomial
        coefficients (which do not depend on r)."""
        return RoutineTables(self).log_marginals(sends, responses)

    def routine_probabilities(self, sends: Int64Array, responses: Int64Array) -> FloatArray:
        """(N, K): P(routine | a contact's counts) for each row of (N, cells) counts."""
        return RoutineTables(self).probabilities(sends, responses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.tolist(),
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "strength": self.strength,
            "contacts": self.contacts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotPrior:
        """The inverse of `to_dict`; raises ValueError on a malformed document."""
        try:
            alpha = np.atleast_2d(np.asarray(data["alpha"], dtype=np.float64))
            beta = np.atleast_2d(np.asarray(data["beta"], dtype=np.float64))
            weight = np.asarray(data.get("weight", [1.0]), dtype=np.float64)
            strength, contacts = float(data["strength"]), int(data.get("contacts", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed prior: {exc}") from None
        if weight.ndim != 1 or not np.isclose(weight.sum(), 1.0) or (weight <= 0).any():
            raise ValueError("prior weights must be positive and sum to 1")
        return cls(alpha, beta, strength, contacts, weight)


class RoutineTables:
    """sum_{i<k} log(x + i) for a prior's alpha, beta and alpha + beta, for k up to the
    largest count seen so far, kept (a prior only changes when the daily job refits it):
    P(routine | counts) for a batch is then a gather and a sum. Counts above `cap` are
    handled without keeping their tables."""

    def __init__(self, prior: SlotPrior, cap: int = 4096) -> None:
        self.prior = prior
        self.cap = cap
        self.top = -1
        self._tables: tuple[FloatArray, FloatArray, FloatArray] | None = None

    def _for(self, top: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        if self._tables is not None and top <= self.top:
            return self._tables
        grown = max(top, min(2 * self.top, self.cap), 64)
        p = self.prior
        tables = (
            log_rising(p.alpha, grown),
            log_rising(p.beta, grown),
            log_rising(p.alpha + p.beta, grown),
        )
        if grown <= self.cap:
            self._tables, self.top = tables, grown
        return tables

    def log_marginals(self, sends: Int64Array, responses: Int64Array) -> FloatArray:
        """(N, K): log w_r + log P(a contact's counts | routine r), up to the binomial
        coefficients (which do not depend on r)."""
        n = np.asarray(sends, dtype=np.int64)
        k = np.clip(np.asarray(responses, dtype=np.int64), 0, n)
        ra, rb, rt = self._for(int(n.max()) if n.size else 0)
        cells = np.arange(self.prior.cells)[None, :]
        terms = ra[:, cells, k] + rb[:, cells, n - k] - rt[:, cells, n]  # (K, N, cells)
        return np.log(self.prior.weight)[None, :] + terms.sum(axis=2).T

    def probabilities(self, sends: Int64Array, responses: Int64Array) -> FloatArray:
        """(N, K): P(routine | a contact's counts)."""
        if self.prior.routines == 1:
            return np.ones((np.shape(sends)[0], 1))
        log = self.log_marginals(sends, responses)
        log -= log.max(axis=1, keepdims=True)
        p = np.exp(log)
        return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True, slots=True)
class PriorFit:
    """How the prior is fitted."""

    max_routines: int = 4
    max_contacts: int = 20_000
    em_steps: int = 200
    mean_pseudo_sends: float = 2.0
    min_strength: float = 1.0
    max_strength: float = 200.0
    default_strength: float = 20.0
    min_informative: float = 100.0
    grid_points: int = 41
    refine_steps: int = 30


@dataclass(frozen=True, slots=True, eq=False)
class _Mixture:
    weight: FloatArray  # (K,)
    rate: FloatArray  # (K, C)
    responsibility: FloatArray  # (J, K)
    log_likelihood: float


def _log_binomial(n: FloatArray, k: FloatArray, rate: FloatArray) -> FloatArray:
    """(J, K): sum_c k log p + (n - k) log(1 - p), without the binomial coefficients."""
    return k @ np.log(rate).T + (n - k) @ np.log1p(-rate).T


def _em(n: FloatArray, k: FloatArray, routines: int, period: int, fit: PriorFit) -> _Mixture:
    """Mixture of independent binomials, started from routines whose rate peaks at
    evenly spaced positions of the `period` (the slots of a day)."""
    # each cell's rate, pulled towards the account's overall rate (cells nobody was
    # sent in start there)
    overall = (k.sum(axis=0) + k.sum() / n.sum()) / (n.sum(axis=0) + 1.0)
    position = np.arange(n.shape[1]) % period / period
    shift = np.arange(routines)[:, None] / routines
    rate = np.clip(
        overall[None, :] * (1.0 + 0.5 * np.cos(2 * np.pi * (position - shift))), 1e-4, 1 - 1e-4
    )
    weight = np.full(routines, 1.0 / routines)
    prior_k, prior_n = fit.mean_pseudo_sends * overall, fit.mean_pseudo_sends
    previous = -math.inf
    for _ in range(fit.em_steps):
        log = np.log(weight)[None, :] + _log_binomial(n, k, rate)
        top = log.max(axis=1, keepdims=True)
        resp = np.exp(log - top)
        total = resp.sum(axis=1, keepdims=True)
        loglik = float((top[:, 0] + np.log(total[:, 0])).sum())
        if loglik - previous < 1e-6 * abs(loglik):
            break
        previous = loglik
        resp /= total
        weight = np.maximum(resp.mean(axis=0), 1e-12)
        rate = np.clip((resp.T @ k + prior_k) / (resp.T @ n + prior_n), 1e-6, 1 - 1e-6)
    log = np.log(weight)[None, :] + _log_binomial(n, k, rate)
    top = log.max(axis=1, keepdims=True)
    loglik = float((top[:, 0] + np.log(np.exp(log - top).sum(axis=1))).sum())
    resp = np.exp(log - top)
    resp /= resp.sum(axis=1, keepdims=True)
    return _Mixture(weight / weight.sum(), rate, resp, loglik)


class _Cell:
    """Distinct (sends, responses) pairs of one cell with their (weighted) counts."""

    def __init__(self, n: Int64Array, k: Int64Array, weight: FloatArray) -> None:
        seen = (n > 0) & (weight > 1e-9)
        width = int(n.max()) + 1 if n.size else 1
        keys, which = np.unique(n[seen] * width + k[seen], return_inverse=True)
        self.weight = np.bincount(which.reshape(-1), weights=weight[seen], minlength=keys.size)
        self.n, self.k = keys // width, keys % width
        self.top = int(self.n.max()) if self.n.size else 0
        self.informative = float(self.weight[self.n >= 2].sum())

    def log_likelihood(self, mean: float, strength: float) -> float:
        if self.top == 0:
            return 0.0
        a, b = mean * strength, (1.0 - mean) * strength
        la, lb, lt = log_rising(np.array([a, b, strength]), self.top)
        return float(np.dot(self.weight, la[self.k] + lb[self.n - self.k] - lt[self.n]))


def _of_strength(cell: _Cell, mean: float) -> Any:
    return lambda t: cell.log_likelihood(mean, t)


def _strengths(cells: list[_Cell], mean: FloatArray, fit: PriorFit) -> FloatArray:
    """Per cell: its own fit, or the fit of all cells together, floored so both Beta
    parameters are >= 1."""
    shared = fit.default_strength
    if any(c.informative > 0 for c in cells):
        shared = _maximize(
            lambda t: sum(c.log_likelihood(float(m), t) for c, m in zip(cells, mean, strict=True)),
            fit,
        )
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        m = float(mean[i])
        t = shared
        if cell.informative >= fit.min_informative:
            t = _maximize(_of_strength(cell, m), fit)
        floor = 1.0 / min(m, 1.0 - m)
        out[i] = min(max(t, floor), max(fit.max_strength, floor))
    return out


def fit_prior(
    sends: Int64Array, responses: Int64Array, fit: PriorFit | None = None, period: int | None = None
) -> SlotPrior:
    """Fit the account's prior from (contacts, cells) window counts (at most
    `max_contacts` of them, evenly spaced); `period` is the number of slots in a day
    when cells also split weekdays and weekends.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rates = rng.beta(6.0, 14.0, size=(4000, 1))  # one routine: strength 20, mean 0.3
    >>> n = np.full((4000, 1), 12)
    >>> prior = fit_prior(n, rng.binomial(n, rates))
    >>> prior.routines, 14 < prior.strength < 28, round(float(prior.mean[0]), 2)
    (1, True, 0.3)
    """
    fit = fit or PriorFit()
    n = np.asarray(sends, dtype=np.int64)
    k = np.clip(np.asarray(responses, dtype=np.int64), 0, n)
    used = n.sum(axis=1) > 0
    if not used.any():
        return SlotPrior.uniform(n.shape[1])
    n, k = n[used], k[used]
    if n.shape[0] > fit.max_contacts:  # an evenly spaced sample, the same every time
        keep = np.linspace(0, n.shape[0] - 1, fit.max_contacts).astype(np.int64)
        n, k = n[keep], k[keep]
    nf, kf = n.astype(np.float64), k.astype(np.float64)
    best: tuple[float, SlotPrior] | None = None
    for routines in range(1, fit.max_routines + 1):
        prior = _fitted(n, k, _em(nf, kf, routines, period or n.shape[1], fit), fit)
        log = prior.log_marginals(n, k)
        top = log.max(axis=1)
        loglik = float((top + np.log(np.exp(log - top[:, None]).sum(axis=1))).sum())
        params = 2 * routines * n.shape[1] + routines - 1
        bic = -2.0 * loglik + params * math.log(n.shape[0])
        if best is None or bic < best[0]:
            best = (bic, prior)
    assert best is not None
    return best[1]


def _fitted(n: Int64Array, k: Int64Array, mixture: _Mixture, fit: PriorFit) -> SlotPrior:
    """The mixture's routines with their fitted strengths."""
    alpha, beta = np.empty_like(mixture.rate), np.empty_like(mixture.rate)
    for r in range(mixture.weight.size):
        weight = mixture.responsibility[:, r]
        cells = [_Cell(n[:, c], k[:, c], weight) for c in range(n.shape[1])]
        strength = _strengths(cells, mixture.rate[r], fit)
        alpha[r], beta[r] = mixture.rate[r] * strength, (1.0 - mixture.rate[r]) * strength
    median = float(np.median(alpha + beta))
    return SlotPrior(alpha, beta, median, int(n.shape[0]), mixture.weight)


def _maximize(f: Any, fit: PriorFit) -> float:
    """Maximize f over [min_strength, max_strength] in log space: grid, golden section."""
    grid = np.linspace(math.log(fit.min_strength), math.log(fit.max_strength), fit.grid_points)
    values = [f(math.exp(x)) for x in grid]
    best = int(np.argmax(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
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
