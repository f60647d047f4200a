"""Per-contact predictions with intervals."""

from __future__ import annotations

import numpy as np

from selector.model.predict import describe, predictions
from selector.model.profile import EMPTY
from selector.model.record import records_of
from selector.model.scoring import Prediction
from tests.selector.model.conftest import CREATIVES, RATES, Trained


def test_each_contact_gets_a_prediction_per_creative_with_an_interval(trained: Trained) -> None:
    recs = records_of([EMPTY.with_custom((0.0,)), EMPTY.with_custom((1.0,))])
    rows = predictions(trained.account, trained.model, recs, np.full(2, 2e6),
                       np.random.default_rng(0))  # fmt: skip
    assert [[p.creative_id for p in row] for row in rows] == [list(CREATIVES)] * 2
    for row, plan in zip(rows, ("free", "pro"), strict=True):
        for p, rate in zip(row, RATES[plan], strict=True):
            assert p.click_low < p.click < p.click_high and p.level == 0.8
            assert abs(p.click - rate) < 0.05
            assert p.revenue_low <= p.revenue <= p.revenue_high
            # cpa at $20: expected revenue = P(click) x P(conversion | click, ~0.3) x 20
            assert 0.1 * 20 * p.click < p.revenue < 0.6 * 20 * p.click


def test_the_line_reads_like_the_product() -> None:
    p = Prediction("loan-a", 0.121, 0.109, 0.134, 0.452, 0.39, 0.52, 0.8)
    assert describe(p) == "loan-a: 12.1% click [10.9, 13.4], $0.45 expected revenue [0.39, 0.52]"
