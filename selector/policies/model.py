"""`model`: contextual Thompson sampling on the account's click and revenue models.

With a promoted model (`decide_batch(..., model=...)`), each request's contact features
(from its profile record, at the request's time) are scored against every eligible
creative under S posterior draws, and the request takes the best creative under one draw
picked at random (`selector.model.scoring`); cooldowns, the learning pool and the
exploration floor apply as for the Beta methods, and the control split and routing
happen before any policy runs. The propensity is exact given the batch's draws.

Without a model the method falls back to the account's Thompson method (two-step if the
account routes traffic to two-step and not to single-step, else single-step), and says
so with reason `model_unavailable`, so the fallback is visible in metrics.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.batch import REASON
from selector.domain import Method
from selector.model.predict import catalog_for
from selector.model.record import records
from selector.model.scoring import Catalog, thompson
from selector.policies.base import Choice, Masks, PolicyContext
from selector.policies.scored import ScoredPolicy
from selector.policies.thompson import ThompsonPolicy
from selector.policies.thompson_single_step import ThompsonSingleStep
from selector.policies.thompson_two_step import ThompsonTwoStep
from selector.view import BoolArray, FloatArray, IntArray


class ModelPolicy(ScoredPolicy):
    """Contextual Thompson sampling, or the account's Thompson method without a model.

    Examples
    --------
    >>> ModelPolicy().name
    'model'
    """

    name: ClassVar[Method] = "model"

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

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        if ctx.model is None:
            return self.fallback(ctx).distribution(ctx, row, eligible, rng)
        return super().distribution(ctx, row, eligible, rng)

    def catalog(self, ctx: PolicyContext) -> Catalog:
        """The model's tables for this account's catalog, rebuilt when the model changes."""
        model = ctx.model
        assert model is not None
        if self._catalog is None or self._catalog.model is not model:
            self._catalog = catalog_for(ctx.view.account, model)
        return self._catalog

    def _inputs(self, ctx: PolicyContext, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        assert ctx.times is not None
        profiles = ctx.profiles
        recs = profiles[rows] if profiles is not None else records([None] * rows.size)[0]
        return self.catalog(ctx).inputs(recs, ctx.times[rows])

    def _scored(
        self, ctx: PolicyContext, rows: IntArray, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray, IntArray]:
        x, pair = self._inputs(ctx, rows)
        goal = ctx.view.settings.goal
        chosen, dist = thompson(
            self.catalog(ctx), x, pair, masks.rows(), goal, ctx.model_samples, rng
        )
        return chosen, dist, np.arange(rows.size)

    def _scored_distribution(
        self, ctx: PolicyContext, row: int, graded: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        x, pair = self._inputs(ctx, np.array([row]))
        samples = max(ctx.propensity_samples, ctx.model_samples)
        goal = ctx.view.settings.goal
        _, dist = thompson(self.catalog(ctx), x, pair, graded[None, :], goal, samples, rng)
        return dist[0]
