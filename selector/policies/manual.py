"""`manual`: the campaign's own creative subset, in random or round-robin rotation.

Manual creatives need not be of type `automated`; they must be active. A campaign
without a subset rotates over the account's candidates. Round-robin positions are per
campaign and live in the context's `rotation` mapping, which the decide call returns.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.domain import Method
from selector.policies.base import Choice, Masks, Policy, PolicyContext, pick_uniform
from selector.view import BoolArray, FloatArray, IntArray, rows_any


class ManualPolicy(Policy):
    name: ClassVar[Method] = "manual"
    pool = "manual"

    def candidates(self, ctx: PolicyContext, rows: IntArray) -> BoolArray:
        view = ctx.view
        subset = view.manual_subset[ctx.campaign[rows]]
        no_subset = ~rows_any(subset)
        chosen = np.where(no_subset[:, None], view.candidate[None, :], subset)
        return chosen & view.active[None, :]

    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        creative, count = pick_uniform(eligible, rng)
        propensity = 1.0 / count
        round_robin = ctx.view.round_robin[ctx.campaign[rows]]
        for i in np.flatnonzero(round_robin):
            mask = eligible.patterns[eligible.groups[i]]
            creative[i] = self._next_in_rotation(ctx, int(rows[i]), mask, advance=True)
            propensity[i] = 1.0
        return self._plain(creative, propensity)

    def _next_in_rotation(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, advance: bool
    ) -> int:
        campaign = ctx.view.campaign_ids[int(ctx.campaign[row])]
        position = ctx.rotation.get(campaign, 0)
        order = np.flatnonzero(self.candidates(ctx, np.array([row]))[0])
        for step in range(order.size):
            slot = (position + step) % order.size
            creative = int(order[slot])
            if eligible[creative]:
                if advance:
                    ctx.rotation[campaign] = slot + 1
                return creative
        raise AssertionError("called without an eligible creative")

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        if ctx.view.round_robin[ctx.campaign[row]]:
            dist = np.zeros(eligible.size)
            dist[self._next_in_rotation(ctx, row, eligible, advance=False)] = 1.0
            return dist
        return eligible / eligible.sum()
