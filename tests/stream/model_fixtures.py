"""A small world for the stream's model tests: creatives with clearly different click
rates (whatever the contact), and a model trained on it through the training job's path."""

from __future__ import annotations

from typing import Any

import numpy as np

from selector import Account, account_from_dict
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.train import TrainingConfig, train
from tests.selector.model.conftest import CREATIVES, account_doc

MODEL_ONLY = {"methods": [{"method": "model", "traffic_pct": 100}]}


def model_account(account_id: str, **settings: Any) -> Account:
    return account_from_dict({**account_doc(**settings), "account_id": account_id})


def world(sends: int, contacts: int, seed: int) -> list[OutcomeEvent]:
    """Click rates 25%, 4% and 10% for deal, premium and basic; 30% of clicks convert."""
    rng = np.random.default_rng(seed)
    rates = (0.25, 0.04, 0.10)
    out = []
    for i in range(sends):
        c, k, t = int(rng.integers(contacts)), int(rng.integers(3)), 30.0 * i
        contact, creative = f"u{c}", CREATIVES[k]
        out.append(OutcomeEvent("send", f"s{i}", contact, creative, t))
        if rng.random() < rates[k]:
            out.append(OutcomeEvent("click", f"k{i}", contact, creative, t + 60, 0, f"s{i}"))
            if rng.random() < 0.3:
                out.append(OutcomeEvent("conversion", f"v{i}", contact, creative, t + 90,
                                        20_000_000, f"s{i}"))  # fmt: skip
    return out


def trained_model(account: Account, version: int = 1, sends: int = 6000) -> ContextualModel:
    events = world(sends, sends // 8, seed=3)
    examples = examples_from_events(account, events, (), 1e9, 3600.0, 1e9)
    config = TrainingConfig(evidence_rounds=0)
    model, _ = train(account, examples, (), 1e9, version, 1e6, config)
    return model
