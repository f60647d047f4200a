"""The peers, set up on exactly the posteriors our selector sees.

Every peer is built from a `Posteriors` value taken from the selector's own compiled view
(`selector.view.posterior`), so the Beta parameters are the same numbers for every method:

- River: `river.bandit.ThompsonSampling` with a `proba.Beta(1, 1)` prior per arm, its arm
  statistics set to the state its `update()` would reach after the same successes and
  failures (`Beta.update` adds one to alpha or beta; `Policy.update` counts the pull).
- MABWiser: `MAB(arms, LearningPolicy.ThompsonSampling())` fitted on the raw outcomes
  (one row per send, reward 1 for a click); its Beta(1, 1) prior is built in.
- numpy: `Generator.beta` on the same parameter vectors, the floor of exact sampling.

Neither peer has a revenue goal. For revenue both are given the same model we use,
score = CTR x CVR x payout (CTR x payout for per-click offers), built from their own
samplers: River pulls through `ThompsonSampling.pull` over a per-arm reward object that
multiplies two River `proba.Beta` samples; MABWiser uses two fitted Thompson MABs (CTR on
sends, CVR on clicks), one `predict_expectations()` each per decision, and the argmax in
Python. `PEER_MODELS` states this in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mabwiser.mab import MAB, LearningPolicy
from numpy.typing import NDArray
from river import bandit, proba

from selector import AccountStats, Selector
from selector.view import posterior

Call = Callable[[], object]

PEER_MODELS = {
    "river": {
        "clicks": "river.bandit.ThompsonSampling(proba.Beta(1, 1)).pull(arms): one Beta per arm",
        "revenue": (
            "ThompsonSampling.pull(arms) over a reward object per arm that samples two River "
            "proba.Beta (CTR, CVR) and multiplies by payout; no native revenue goal"
        ),
    },
    "mabwiser": {
        "clicks": "MAB(arms, LearningPolicy.ThompsonSampling()).predict(), one call per decision",
        "revenue": (
            "two fitted Thompson MABs (CTR, CVR), predict_expectations() each per decision, "
            "score CTR x CVR x payout, argmax in Python; no native revenue goal"
        ),
    },
    "mabwiser_batch": {
        "clicks": "MAB.predict(contexts) with a batch of dummy contexts (context-free policy)",
        "revenue": "predict_expectations(contexts) on both MABs for a batch, argmax per row",
    },
    "numpy_floor": {
        "clicks": "Generator.beta draws/s on the CTR parameters; decisions/s = draws/s / K",
        "revenue": (
            "Generator.beta draws/s on CTR and CVR parameters; decisions/s = draws/s / "
            "(K + per-conversion creatives)"
        ),
    },
}


@dataclass(frozen=True, slots=True)
class Posteriors:
    """Per-creative Beta posteriors and counts, as the selector computes them (the
    conversion rates without the offer pooling)."""

    ids: tuple[str, ...]
    goal: str
    sends: NDArray[np.int64]
    clicks: NDArray[np.int64]
    conversions: NDArray[np.int64]
    ctr_alpha: NDArray[np.float64]
    ctr_beta: NDArray[np.float64]
    cvr_alpha: NDArray[np.float64]
    cvr_beta: NDArray[np.float64]
    value: NDArray[np.float64]
    per_click: NDArray[np.bool_]

    @classmethod
    def of(cls, selector: Selector, stats: AccountStats) -> Posteriors:
        view = selector.view
        prior = view.settings.prior
        if (prior.alpha, prior.beta) != (1.0, 1.0):
            raise ValueError("the peers' priors are Beta(1, 1); use the default prior")
        post = posterior(view, stats, 0.0)
        counts = [stats.creative(cid) for cid in view.creative_ids]
        return cls(
            ids=view.creative_ids,
            goal=view.settings.goal,
            sends=np.array([c.sends for c in counts], dtype=np.int64),
            clicks=np.array([c.clicks for c in counts], dtype=np.int64),
            conversions=np.array([c.conversions for c in counts], dtype=np.int64),
            ctr_alpha=post.ctr_alpha,
            ctr_beta=post.ctr_beta,
            # the counts' own Beta: the selector's also pools the offer's other creatives
            # (`selector.view.offer_prior`), which no peer can hold; a draw costs the same
            cvr_alpha=np.array([1.0 + c.conversions for c in counts]),
            cvr_beta=np.array([1.0 + max(c.clicks - c.conversions, 0) for c in counts]),
            value=np.asarray(view.value, dtype=np.float64),
            per_click=np.asarray(view.per_click, dtype=bool),
        )

    @property
    def draws_per_decision(self) -> int:
        """Beta draws one Thompson decision needs: CTR per creative, plus CVR per
        per-conversion creative for the revenue goal."""
        k = len(self.ids)
        return k if self.goal == "clicks" else k + int((~self.per_click).sum())


class _RevenuePerSend:
    """A River reward object for the revenue goal: CTR x CVR x payout from two Betas."""

    __slots__ = ("ctr", "cvr", "value")

    def __init__(self, ctr: Any, cvr: Any | None, value: float) -> None:
        self.ctr, self.cvr, self.value = ctr, cvr, value

    def sample(self) -> float:
        score = float(self.ctr.sample()) * self.value
        return score if self.cvr is None else score * float(self.cvr.sample())


def _observe(beta: Any, successes: int, failures: int) -> None:
    """The state `successes` update(True) and `failures` update(False) calls reach."""
    beta.alpha += successes
    beta.beta += failures


def river_policy(post: Posteriors, seed: int) -> Any:
    """A River ThompsonSampling policy whose arms hold our posteriors."""
    policy: Any = bandit.ThompsonSampling(reward_obj=proba.Beta(1, 1), seed=seed)
    for j, arm in enumerate(post.ids):
        sends, clicks, conv = int(post.sends[j]), int(post.clicks[j]), int(post.conversions[j])
        ctr = policy._rewards[arm]  # River's own seeded clone of the prior
        _observe(ctr, clicks, sends - clicks)
        policy._counts[arm] += sends
        policy._n += sends
        if post.goal == "revenue":
            cvr = None
            if not post.per_click[j]:
                cvr = policy._clone_reward_obj_with_seed()
                _observe(cvr, conv, clicks - conv)
            policy._rewards[arm] = _RevenuePerSend(ctr, cvr, float(post.value[j]))
    return policy


def river_call(post: Posteriors, seed: int) -> Call:
    policy, arms = river_policy(post, seed), list(post.ids)
    return lambda: policy.pull(arms)


def _fitted(arms: Sequence[str], trials: NDArray[Any], successes: NDArray[Any], seed: int) -> Any:
    """A MABWiser Thompson MAB fitted on one row per trial (reward 1 for a success)."""
    decisions = np.repeat(np.array(arms), trials)
    rewards = np.concatenate(
        [
            np.r_[np.ones(s, dtype=np.int64), np.zeros(t - s, dtype=np.int64)]
            for t, s in zip(trials, successes, strict=True)
        ]
    )
    mab = MAB(list(arms), LearningPolicy.ThompsonSampling(), seed=seed)
    mab.fit(decisions, rewards)
    return mab


def mabwiser_models(post: Posteriors, seed: int) -> tuple[Any, Any | None]:
    """The CTR MAB (fitted on sends) and, for revenue, the CVR MAB (fitted on clicks of
    per-conversion creatives)."""
    ctr = _fitted(post.ids, post.sends, post.clicks, seed)
    if post.goal == "clicks":
        return ctr, None
    cpa = np.flatnonzero(~post.per_click)
    arms = [post.ids[j] for j in cpa]
    return ctr, _fitted(arms, post.clicks[cpa], post.conversions[cpa], seed + 1)


def mabwiser_calls(post: Posteriors, seed: int, batch_size: int) -> tuple[Call, Call]:
    """One decision per call, and `batch_size` decisions per call."""
    ctr, cvr = mabwiser_models(post, seed)
    contexts = np.zeros((batch_size, 1))
    if cvr is None:
        return (lambda: ctr.predict()), (lambda: ctr.predict(contexts))
    value = dict(zip(post.ids, post.value.tolist(), strict=True))

    def best(c: dict[str, float], v: dict[str, float]) -> str:
        return max(value, key=lambda a: c[a] * value[a] * v.get(a, 1.0))

    def one() -> str:
        return best(ctr.predict_expectations(), cvr.predict_expectations())

    def many() -> list[str]:
        pairs = zip(
            ctr.predict_expectations(contexts), cvr.predict_expectations(contexts), strict=True
        )
        return [best(c, v) for c, v in pairs]

    return one, many


def numpy_floor_call(post: Posteriors, seed: int, batch_size: int) -> tuple[Call, int]:
    """`Generator.beta` on every parameter a batch of decisions needs; draws per call."""
    alpha, beta = post.ctr_alpha, post.ctr_beta
    if post.goal == "revenue":
        cpa = ~post.per_click
        alpha = np.concatenate([alpha, post.cvr_alpha[cpa]])
        beta = np.concatenate([beta, post.cvr_beta[cpa]])
    rng = np.random.default_rng(seed)
    size = (batch_size, alpha.size)
    return (lambda: rng.beta(alpha, beta, size=size)), batch_size * alpha.size
