"""`model`: contextual Thompson sampling on the account's click and revenue models.

With a promoted model (`decide_batch(..., model=...)`), each request's contact features
(from its profile record, at the request's time) are scored against every eligible
creative under S posterior draws, and the creative is drawn from its win shares over
those draws (`selector.model.scoring`). The learning mode and the exploration floor mix
in as for the Beta methods (`selector.policies.thompson.mix`), with the win shares per
request instead of per eligibility pattern; cooldowns and the fallback are `Policy`'s;
the control split and routing happen before any policy runs. The propensity is exact
given the batch's draws.

Without a model the method falls back to the account's Thompson method (two-step if the
account routes traffic to two-step and not to single-step, else single-step), and says
so with reason `model_unavailable`, so the fallback is visible in metrics. The method is
not a `ThompsonPolicy`, so a single `Selector.decide` always takes the batch path for it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.batch import POOL, REASON, Pool
from selector.domain import Method
from selector.model.predict import catalog_for
from selector.model.record import records
from selector.model.scoring import POOL as DRAW_POOL
from selector.model.scoring import Catalog, win_shares
from selector.policies.base import Choice, Masks, Policy, PolicyContext
from selector.policies.thompson import ThompsonPolicy, mix
from selector.policies.thompson_single_step import ThompsonSingleStep
from selector.policies.thompson_two_step import ThompsonTwoStep
from selector.view import BoolArray, FloatArray, IntArray


class ModelPolicy(Policy):
    """Contextual Thompson sampling, or the account's Thompson method without a model.

    Examples
    --------
    >>> ModelPolicy().name
    'model'
    """

    name: ClassVar[Method] = "model"
    pool: ClassVar[Pool] = "scored"

    def __init__(self) -> None:
        self._single = ThompsonSingleStep()
        self._two = ThompsonTwoStep()
        self._catalog: Catalog | None = None

    def fallback(self, ctx: PolicyContext) -> ThompsonPolicy:
        methods = ctx.view.methods
        two_only = "thompson_two_step" in methods and "thompson_single_step" not in methods
        return self._two if two_only else self._single

    def choose(self, ctx: PolicyContext, rows: IntArray, rng: np.random.Generator) -> Choice:
        if ctx.model is not None:
            return super().choose(ctx, rows, rng)
        choice = self.fallback(ctx).choose(ctx, rows, rng)
        unavailable = np.where(
            choice.reason == REASON["none"], REASON["model_unavailable"], choice.reason
        ).astype(np.uint8)
        return Choice(choice.creative, choice.pool, choice.propensity, unavailable)

    def catalog(self, ctx: PolicyContext) -> Catalog:
        """The model's tables for this account's catalog, rebuilt when the model changes."""
        model = ctx.model
        assert model is not None
        if self._catalog is None or self._catalog.model is not model:
            self._catalog = catalog_for(ctx.view.account, model)
        return self._catalog

    def _distributions(
        self, ctx: PolicyContext, rows: IntArray, masks: BoolArray, samples: int,
        rng: np.random.Generator,
    ) -> FloatArray:  # fmt: skip
        """(n x K) P(creative) per request: win shares, mixed with the learning mode."""
        assert ctx.times is not None
        profiles, times = ctx.profiles, ctx.times
        whole = rows.size == times.size and np.array_equal(rows, np.arange(rows.size))
        if profiles is None:
            recs = records([None] * rows.size)[0]
        else:
            recs = profiles if whole else profiles[rows]
        catalog = self.catalog(ctx)
        x, pair = catalog.inputs(recs, times if whole else times[rows])
        goal = ctx.view.settings.goal
        return mix(ctx, masks, lambda sets: win_shares(catalog, x, pair, sets, goal, samples, rng))

    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        dists = self._distributions(ctx, rows, eligible.rows(), ctx.model_samples, rng)
        n = rows.size
        creative = _draw(dists, rng)
        propensity = dists[np.arange(n), creative]
        learning = ctx.posterior.raw_sends < ctx.view.settings.learning_threshold
        pool = np.where(learning[creative], POOL["learning"], POOL["scored"]).astype(np.uint8)
        return Choice(creative, pool, propensity, np.full(n, REASON["none"], dtype=np.uint8))

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        if ctx.model is None:
            return self.fallback(ctx).distribution(ctx, row, eligible, rng)
        samples = max(ctx.model_samples, DRAW_POOL)
        return self._distributions(ctx, np.array([row]), eligible[None, :], samples, rng)[0]


def _draw(dists: FloatArray, rng: np.random.Generator) -> IntArray:
    """One column per row, drawn from the row's distribution: the first column whose
    cumulative probability exceeds u x the row's total, which always has positive mass."""
    cumulative = np.cumsum(dists, axis=1)
    u = rng.random(dists.shape[0]) * cumulative[:, -1]
    return np.minimum((cumulative <= u[:, None]).sum(axis=1), dists.shape[1] - 1)
