"""A small trained model shared by the model tests: two plans that prefer different
creatives, learned from simulated events through the same path as the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from selector import Account, account_from_dict
from selector.custom_fields import CategoricalField
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.train import Examples, train

FIELDS = (CategoricalField("plan", ("free", "pro")),)
# click rates: free contacts like "deal", pro contacts like "premium"; "basic" is middling
RATES = {"free": (0.20, 0.05, 0.10), "pro": (0.04, 0.18, 0.10)}
CREATIVES = ("deal", "premium", "basic")


def account_doc(**settings: Any) -> dict[str, Any]:
    return {
        "account_id": "acct-m",
        "settings": {"learning_threshold": 100, **settings},
        "offers": [{"offer_id": "o1", "payout": 20}, {"offer_id": "o2", "payout": 20}],
        "creatives": [
            {"creative_id": "deal", "offer_id": "o1"},
            {"creative_id": "premium", "offer_id": "o2"},
            {"creative_id": "basic", "offer_id": "o1"},
        ],
        "campaigns": [
            {"campaign_id": "camp", "default_creative_id": "basic", "automated_percent": 100}
        ],
    }


def world_events(
    sends: int, contacts: int, seed: int
) -> tuple[list[OutcomeEvent], dict[str, tuple[float | None, ...]]]:
    rng = np.random.default_rng(seed)
    plan = rng.integers(0, 2, contacts)
    events: list[OutcomeEvent] = []
    for i in range(sends):
        c, k, t = int(rng.integers(contacts)), int(rng.integers(3)), 30.0 * i
        contact, creative = f"u{c}", CREATIVES[k]
        events.append(OutcomeEvent("send", f"s{i}", contact, creative, t))
        if rng.random() < RATES[("free", "pro")[plan[c]]][k]:
            events.append(OutcomeEvent("click", f"k{i}", contact, creative, t + 60, 0, f"s{i}"))
            if rng.random() < 0.3:
                events.append(OutcomeEvent("conversion", f"v{i}", contact, creative, t + 90,
                                           20_000_000, f"s{i}"))  # fmt: skip
    custom = {f"u{c}": (float(plan[c]),) for c in range(contacts)}
    return events, custom


@dataclass(frozen=True)
class Trained:
    account: Account
    examples: Examples
    model: ContextualModel
    holdout: Examples


@pytest.fixture(scope="session")
def trained() -> Trained:
    account = account_from_dict(account_doc())
    events, custom = world_events(40_000, 4_000, seed=1)
    examples = examples_from_events(account, events, FIELDS, 1e9, 3600.0, 1e12, custom)
    model, holdout = train(account, examples, FIELDS, 1e9, version=3, now=1.2e6)
    return Trained(account, examples, model, holdout)
