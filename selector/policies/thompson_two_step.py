"""`thompson_two_step`: pick the offer first, then the creative within it.

The offer with the highest sampled offer-level score wins (offer-level counts are the
sums over the offer's creatives), among offers with at least one eligible creative;
then the creative with the highest sampled score within that offer. The two draws are
independent, so P(creative) = P(its offer wins) x P(it wins within its offer).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.domain import Method
from selector.policies.base import PolicyContext
from selector.policies.thompson import ThompsonPolicy, creative_tables, offer_tables
from selector.view import BoolArray, FloatArray


class ThompsonTwoStep(ThompsonPolicy):
    name: ClassVar[Method] = "thompson_two_step"

    def win_probabilities(self, ctx: PolicyContext, masks: BoolArray) -> FloatArray:
        view = ctx.view
        offer_of = view.offer_of
        member = offer_of[None, :] == np.arange(len(view.offer_ids))[:, None]  # F x K
        offer_masks = (masks[:, None, :] & member[None, :, :]).reshape(-1, offer_of.size)
        offers = self.tables(ctx, b"offers", offer_tables)
        creatives = self.tables(ctx, b"creatives", creative_tables)
        p_offer = offers.win_probabilities(masks @ member.T.astype(np.int64) > 0)  # G x F
        within = creatives.win_probabilities(offer_masks).reshape(masks.shape[0], -1, offer_of.size)
        columns = np.arange(offer_of.size)
        return np.asarray(p_offer[:, offer_of] * within[:, offer_of, columns])
