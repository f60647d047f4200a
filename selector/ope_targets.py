"""Counterfactual target policies for off-policy evaluation (`selector.ope`).

`thompson_target` answers "what if all automated traffic had gone to
thompson_single_step": from the Beta posteriors in force at each logged version (the daily
job's parameter snapshots, or stats the caller rebuilt), the probability of each creative
under single-step Thompson sampling, the learning pool and the exploration floor
included, estimated from posterior draws as the service's own propensities are. The
`model` method's probabilities come per row from the model (`selector.ope.per_row` maps
versions to rows); `selector.ope.uniform_target` is the uniform policy.

Examples
--------
>>> import numpy as np
>>> post = ThompsonPosteriors.of(
...     ctr_alpha=[[500.0, 5.0]], ctr_beta=[[500.0, 995.0]], goal="clicks")
>>> thompson_target(post, np.random.default_rng(3), draws=1000).round(3).tolist()
[[1.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from selector.ope import BoolArray, FloatArray, LogError

Goal = Literal["clicks", "revenue"]
DRAWS = 4096


@dataclass(frozen=True, slots=True, eq=False)
class ThompsonPosteriors:
    """Posteriors at V versions over K creatives, each (V, K): CTR and CVR Beta
    parameters; `value` (K,) is the scored payout (after the payout floor) per conversion,
    or per click where `per_click`; `allowed` marks candidates and `learning` the
    creatives still in the learning pool, which get `learning_share` of the traffic
    uniformly. Build it with `ThompsonPosteriors.of`."""

    ctr_alpha: FloatArray
    ctr_beta: FloatArray
    cvr_alpha: FloatArray
    cvr_beta: FloatArray
    value: FloatArray
    per_click: BoolArray
    allowed: BoolArray
    learning: BoolArray
    goal: Goal
    learning_share: float
    exploration_floor: float

    @classmethod
    def of(
        cls,
        ctr_alpha: ArrayLike,
        ctr_beta: ArrayLike,
        *,
        cvr_alpha: ArrayLike | None = None,
        cvr_beta: ArrayLike | None = None,
        value: ArrayLike | None = None,
        per_click: ArrayLike | None = None,
        allowed: ArrayLike | None = None,
        learning: ArrayLike | None = None,
        goal: Goal = "revenue",
        learning_share: float = 0.1,
        exploration_floor: float = 0.0,
    ) -> ThompsonPosteriors:
        a = np.atleast_2d(np.asarray(ctr_alpha, dtype=np.float64))
        shape = a.shape

        def full(x: ArrayLike | None, default: float | bool, dtype: type) -> np.ndarray[Any, Any]:
            arr: np.ndarray[Any, Any] = np.asarray(default if x is None else x, dtype=dtype)
            try:
                return np.broadcast_to(arr, shape)
            except ValueError:
                raise LogError("shape_mismatch", f"expected {shape}, got {arr.shape}") from None

        b, ca, cb = (full(x, 1.0, np.float64) for x in (ctr_beta, cvr_alpha, cvr_beta))
        if not (np.all(a > 0) and np.all(b > 0) and np.all(ca > 0) and np.all(cb > 0)):
            raise LogError("shape_mismatch", "Beta parameters must be positive")
        ok = full(allowed, True, bool)
        if not ok.any(axis=1).all():
            raise LogError("target_not_a_distribution", "every version needs an allowed creative")
        return cls(
            a, b, ca, cb,
            full(value, 1.0, np.float64)[0], full(per_click, False, bool)[0], ok,
            full(learning, False, bool), goal, float(learning_share), float(exploration_floor),
        )  # fmt: skip

    @property
    def versions(self) -> int:
        return int(self.ctr_alpha.shape[0])


def _win_probabilities(
    post: ThompsonPosteriors,
    v: int,
    columns: np.ndarray[Any, Any],
    rng: np.random.Generator,
    draws: int,
) -> FloatArray:
    """P(each of `columns` has the highest sampled score) at version v."""
    size = (draws, columns.size)
    score = rng.beta(post.ctr_alpha[v, columns], post.ctr_beta[v, columns], size=size)
    if post.goal == "revenue":
        score *= post.value[columns]
        per_conversion = ~post.per_click[columns]
        if per_conversion.any():
            cvr = rng.beta(post.cvr_alpha[v, columns], post.cvr_beta[v, columns], size=size)
            score = np.where(per_conversion, score * cvr, score)
    wins = np.bincount(np.argmax(score, axis=1), minlength=columns.size)
    return wins / draws


def thompson_target(
    post: ThompsonPosteriors, rng: np.random.Generator, draws: int = DRAWS
) -> FloatArray:
    """(V, K) probabilities of each creative under thompson_single_step at each version."""
    versions, k = post.ctr_alpha.shape
    out = np.zeros((versions, k))
    share, floor = post.learning_share, post.exploration_floor
    for v in range(versions):
        learn = post.allowed[v] & post.learning[v]
        graded = np.flatnonzero(post.allowed[v] & ~post.learning[v])
        if learn.any():
            out[v, learn] = (share if graded.size else 1.0) / learn.sum()
        if graded.size:
            scored = floor / graded.size + (1.0 - floor) * _win_probabilities(
                post, v, graded, rng, draws
            )
            out[v, graded] = (1.0 - share if learn.any() else 1.0) * scored
    return out
