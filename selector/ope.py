"""Off-policy evaluation: what another policy would have earned on the logged decisions.

The log is context-free: per decision the action (creative position), the logging
policy's probability of it (the logged propensity), and the reward (revenue or clicks of
the send). A target policy gives its own probabilities, one vector for all rows (K,) or
one per row (n, K). With weights w_i = target(a_i) / propensity_i:

- IPS (inverse propensity scoring): mean(w r). Unbiased when every action the target may
  take has a positive logged propensity.
- SNIPS (self-normalized IPS): sum(w r) / sum(w). Slightly biased, much less variance.
- DR (doubly robust): mean(sum_a target(a) q(a) + w (r - q(a_i))) with a reward model q;
  unbiased if either the propensities or the model are right.
- Replay, on rows the logging policy drew uniformly: sum(t r) / sum(t) with t = target(a_i),
  the rejection-sampling replay estimate with the target's probability as the acceptance
  weight instead of one sampled acceptance.

Each comes with a percentile bootstrap interval (resamples drawn at once as index matrices
from the generator passed in) and the effective sample size (sum w)^2 / sum w^2: how
many on-policy rows the weighted log is worth.

Examples
--------
>>> import numpy as np
>>> log = LoggedBandit.of([0, 1, 1, 0], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 1.0, 0.0], 2)
>>> est = evaluate(log, np.array([1.0, 0.0]), np.random.default_rng(0), resamples=200)
>>> est["ips"].value, est["snips"].value, est["ips"].effective_sample_size
(0.5, 0.5, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from selector.intervals import CONFIDENCE

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
Estimator = Literal["ips", "snips", "dr", "replay"]
LogProblem = Literal[
    "empty",
    "shape_mismatch",
    "action_out_of_range",
    "propensity_out_of_range",
    "reward_not_finite",
    "target_not_a_distribution",
]
RESAMPLES = 1000
# Bootstrap chunks gather at most this many values at once (~64 MB of float64).
_GATHER_BUDGET = 1 << 23


class LogError(ValueError):
    """Input that cannot be evaluated, with a bounded reason."""

    def __init__(self, reason: LogProblem, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: LogProblem = reason


@dataclass(frozen=True, slots=True, eq=False)
class LoggedBandit:
    """Logged decisions as read-only columns; build it with `LoggedBandit.of`."""

    action: IntArray
    propensity: FloatArray
    reward: FloatArray
    n_actions: int

    @classmethod
    def of(
        cls, action: ArrayLike, propensity: ArrayLike, reward: ArrayLike, n_actions: int
    ) -> LoggedBandit:
        """Validated columns; raises `LogError` naming what is wrong."""
        a = np.array(action, dtype=np.intp).reshape(-1)
        p = np.array(propensity, dtype=np.float64).reshape(-1)
        r = np.array(reward, dtype=np.float64).reshape(-1)
        if a.size == 0:
            raise LogError("empty", "no logged decisions")
        if not a.size == p.size == r.size:
            raise LogError(
                "shape_mismatch", f"{a.size} actions, {p.size} propensities, {r.size} rewards"
            )
        if n_actions < 1 or a.min() < 0 or a.max() >= n_actions:
            raise LogError("action_out_of_range", f"actions must be in [0, {n_actions})")
        if not np.all((p > 0) & (p <= 1)):
            raise LogError("propensity_out_of_range", "propensities must be in (0, 1]")
        if not np.all(np.isfinite(r)):
            raise LogError("reward_not_finite", "rewards must be finite numbers")
        for column in (a, p, r):
            column.setflags(write=False)
        return cls(a, p, r, int(n_actions))

    def __len__(self) -> int:
        return int(self.action.size)

    def subset(self, rows: BoolArray | IntArray) -> LoggedBandit:
        return LoggedBandit.of(
            self.action[rows], self.propensity[rows], self.reward[rows], self.n_actions
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value of a target policy, its bootstrap interval, and the
    effective sample size of the weights behind it."""

    estimator: Estimator
    value: float
    low: float
    high: float
    effective_sample_size: float
    rows: int
    confidence: float = CONFIDENCE

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _target_rows(log: LoggedBandit, target: ArrayLike) -> FloatArray:
    """The target as (1, K) or (n, K), checked to be probability vectors."""
    t = np.asarray(target, dtype=np.float64)
    t = t[None, :] if t.ndim == 1 else t
    if t.ndim != 2 or t.shape[1] != log.n_actions or t.shape[0] not in (1, len(log)):
        raise LogError("shape_mismatch", f"target must be (K,) or (n, K), got {t.shape}")
    if not np.all(t >= 0) or not np.allclose(t.sum(axis=1), 1.0, atol=1e-6):
        raise LogError("target_not_a_distribution", "each target row must sum to 1")
    return t


def _chosen(t: FloatArray, action: IntArray) -> FloatArray:
    """target(a_i | row i) for every logged row."""
    return t[0, action] if t.shape[0] == 1 else t[np.arange(action.size), action]


def importance_weights(log: LoggedBandit, target: ArrayLike) -> FloatArray:
    """w_i = target(a_i) / propensity_i."""
    return _chosen(_target_rows(log, target), log.action) / log.propensity


def effective_sample_size(weights: FloatArray) -> float:
    """(sum w)^2 / sum w^2: n for equal weights, 1 when one row carries all of them."""
    squares = float(np.sum(weights * weights))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


def action_means(log: LoggedBandit) -> FloatArray:
    """A context-free reward model: the mean logged reward of each action, the overall
    mean for actions never logged."""
    counts = np.bincount(log.action, minlength=log.n_actions).astype(np.float64)
    sums = np.bincount(log.action, weights=log.reward, minlength=log.n_actions)
    overall = float(log.reward.mean())
    return np.divide(sums, counts, out=np.full(log.n_actions, overall), where=counts > 0)


Statistic = Callable[[FloatArray, int], FloatArray]


def _bootstrap(
    columns: FloatArray, statistic: Statistic, rng: np.random.Generator, resamples: int
) -> FloatArray:
    """`statistic(column_sums, n)` over `resamples` resamples of the rows: (B, m) sums in,
    (B, e) statistics out. Indices are drawn as (chunk, n) matrices."""
    n, m = columns.shape
    chunk = max(1, _GATHER_BUDGET // max(1, n * m))
    out = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        out.append(statistic(columns[idx].sum(axis=1), n))
    return np.concatenate(out, axis=0)


def _interval(samples: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def _ratio(sums: FloatArray, n: int) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([sums[:, 0] / n, sums[:, 0] / sums[:, 1], sums[:, 2] / n], axis=1)


def evaluate(
    log: LoggedBandit,
    target: ArrayLike,
    rng: np.random.Generator,
    *,
    reward_model: ArrayLike | None = None,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[Estimator, Estimate]:
    """IPS, SNIPS and DR of `target` on `log`, sharing one set of bootstrap resamples.
    `reward_model` is q, (K,) or (n, K); by default `action_means(log)`."""
    t = _target_rows(log, target)
    q = np.asarray(action_means(log) if reward_model is None else reward_model, dtype=np.float64)
    q = q[None, :] if q.ndim == 1 else q
    if q.shape[1] != log.n_actions or q.shape[0] not in (1, len(log)):
        raise LogError("shape_mismatch", f"reward_model must be (K,) or (n, K), got {q.shape}")
    w = _chosen(t, log.action) / log.propensity
    direct = np.sum(t * q, axis=1)
    dr = direct + w * (log.reward - _chosen(q, log.action))
    columns = np.column_stack([w * log.reward, w, np.broadcast_to(dr, w.shape)])
    point = _ratio(columns.sum(axis=0)[None, :], len(log))[0]
    low, high = _interval(_bootstrap(columns, _ratio, rng, resamples), confidence)
    ess = effective_sample_size(w)
    names: tuple[Estimator, ...] = ("ips", "snips", "dr")
    return {
        name: Estimate(
            name, float(point[i]), float(low[i]), float(high[i]), ess, len(log), confidence
        )
        for i, name in enumerate(names)
    }


def _replay_ratio(sums: FloatArray, n: int) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums[:, 0] / sums[:, 1])[:, None]


def replay(
    log: LoggedBandit,
    target: ArrayLike,
    uniform: ArrayLike,
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """The replay estimate of `target` on the rows flagged `uniform` (drawn uniformly
    among the eligible creatives, e.g. the `random` method's). The effective sample size
    is that of the target's acceptance weights on those rows."""
    rows = np.asarray(uniform, dtype=bool).reshape(-1)
    if rows.size != len(log):
        raise LogError("shape_mismatch", f"uniform has {rows.size} flags for {len(log)} rows")
    t = _chosen(_target_rows(log, target), log.action)
    accept = t[rows] / log.propensity[rows]
    if accept.size == 0 or accept.sum() <= 0:
        return Estimate("replay", math.nan, math.nan, math.nan, 0.0, int(accept.size), confidence)
    columns = np.column_stack([accept * log.reward[rows], accept])
    value = float(columns[:, 0].sum() / columns[:, 1].sum())
    low, high = _interval(_bootstrap(columns, _replay_ratio, rng, resamples), confidence)
    ess = effective_sample_size(accept)
    return Estimate(
        "replay", value, float(low[0]), float(high[0]), ess, int(accept.size), confidence
    )


def uniform_target(n_actions: int, allowed: Sequence[bool] | BoolArray | None = None) -> FloatArray:
    """Uniform over all actions, or over the `allowed` ones."""
    mask = np.ones(n_actions, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if mask.size != n_actions or not mask.any():
        raise LogError("target_not_a_distribution", "a uniform target needs an allowed action")
    return mask / mask.sum()


def per_row(by_version: FloatArray, version_index: ArrayLike) -> FloatArray:
    """(n, K) target rows from one probability vector per version (V, K) and each row's
    version position."""
    return np.asarray(by_version, dtype=np.float64)[np.asarray(version_index, dtype=np.intp)]
