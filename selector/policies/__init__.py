"""Selection methods, one module each, all behind `Policy`."""

from __future__ import annotations

from selector.domain import Method
from selector.policies.base import Choice, Policy, PolicyContext
from selector.policies.manual import ManualPolicy
from selector.policies.model import ModelPolicy
from selector.policies.thompson_single_step import ThompsonSingleStep
from selector.policies.thompson_two_step import ThompsonTwoStep
from selector.policies.uniform import RandomPolicy

POLICIES: dict[Method, type[Policy]] = {
    cls.name: cls
    for cls in (ThompsonSingleStep, ThompsonTwoStep, RandomPolicy, ManualPolicy, ModelPolicy)
}

__all__ = [
    "POLICIES",
    "Choice",
    "ManualPolicy",
    "ModelPolicy",
    "Policy",
    "PolicyContext",
    "RandomPolicy",
    "ThompsonSingleStep",
    "ThompsonTwoStep",
]
