"""`thompson_two_step`: pick the offer first, then the creative within it.

The offer with the highest sampled offer-level score wins (offer-level counts are the
sums over the offer's creatives), among offers with at least one eligible creative;
then the creative with the highest sampled score within that offer.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.domain import Method
from selector.policies.base import PolicyContext
from selector.policies.thompson import ThompsonPolicy, sample_scores
from selector.view import BoolArray, FloatArray, IntArray


class ThompsonTwoStep(ThompsonPolicy):
    name: ClassVar[Method] = "thompson_two_step"

    def draw(
        self, ctx: PolicyContext, n: int, columns: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        post, view = ctx.posterior, ctx.view
        creative_params = (
            post.ctr_alpha[columns],
            post.ctr_beta[columns],
            post.cvr_alpha[columns],
            post.cvr_beta[columns],
        )
        creatives = sample_scores(
            ctx, n, rng, creative_params, view.value[columns], view.per_click[columns]
        )
        offer_params = (
            post.offer_ctr_alpha,
            post.offer_ctr_beta,
            post.offer_cvr_alpha,
            post.offer_cvr_beta,
        )
        offers = sample_scores(ctx, n, rng, offer_params, view.offer_value, view.offer_per_click)
        return offers, creatives

    def winners(
        self,
        ctx: PolicyContext,
        draws: tuple[FloatArray, FloatArray],
        columns: IntArray,
        allowed: BoolArray,
    ) -> IntArray:
        offers, creatives = draws
        keep = np.flatnonzero(allowed)
        offer_of = ctx.view.offer_of[columns[keep]]
        candidate_offers = np.unique(offer_of)
        best_offer = candidate_offers[np.argmax(offers[:, candidate_offers], axis=1)]
        scores = creatives[:, keep]
        in_offer = offer_of[None, :] == best_offer[:, None]
        return columns[keep][np.argmax(np.where(in_offer, scores, -np.inf), axis=1)]
