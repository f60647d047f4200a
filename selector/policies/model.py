"""`model`: the contextual click/revenue model's slot.

Until a trained model is available for the account this method answers like `random`
and says so (reason `model_unavailable`), so traffic routed here is never lost and the
fallback is visible in metrics.
"""

from __future__ import annotations

from typing import ClassVar

from selector.domain import Method
from selector.policies.uniform import RandomPolicy


class ModelPolicy(RandomPolicy):
    name: ClassVar[Method] = "model"
    reason: ClassVar[str] = "model_unavailable"
