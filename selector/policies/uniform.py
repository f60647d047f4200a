"""`random`: uniform over the eligible creatives; useful for gathering baseline data."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.domain import Method
from selector.policies.base import Choice, Masks, Policy, PolicyContext, pick_uniform
from selector.view import BoolArray, FloatArray, IntArray


class RandomPolicy(Policy):
    """Each eligible creative with probability 1/|eligible|.

    Examples
    --------
    >>> import numpy as np
    >>> from selector.policies.uniform import RandomPolicy
    >>> RandomPolicy().name
    'random'
    """

    name: ClassVar[Method] = "random"
    reason: ClassVar[str] = "none"

    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        creative, count = pick_uniform(eligible, rng)
        return self._plain(creative, 1.0 / count, self.reason)

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        return eligible / eligible.sum()
