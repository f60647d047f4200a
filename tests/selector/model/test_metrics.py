"""Model metrics against brute force, and every verdict of the promotion gate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selector.model.metrics import (
    Evaluation,
    auc,
    calibration,
    evaluate,
    gate,
    importances,
    log_loss,
    normalized_entropy,
)


def brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def test_auc_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(float)
    s = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    assert auc(y, s) == pytest.approx(brute_auc(y, s), abs=1e-12)


def test_normalized_entropy_is_one_for_the_base_rate_and_lower_when_informative() -> None:
    y = np.array([1.0, 0, 0, 0, 1, 0, 0, 0])
    assert normalized_entropy(y, np.full(8, 0.25)) == pytest.approx(1.0)
    assert normalized_entropy(y, np.where(y > 0, 0.6, 0.1)) < 1.0
    assert math.isnan(normalized_entropy(np.zeros(4), np.full(4, 0.1)))


def test_log_loss_clips_certain_wrong_predictions() -> None:
    assert math.isfinite(log_loss(np.array([1.0]), np.array([0.0])))


def test_calibration_and_revenue_errors() -> None:
    y = np.array([1.0, 0, 1, 0])
    e = evaluate(y, np.full(4, 0.25), np.array([10.0, 0, 0, 0]), np.array([4.0, 2, 2, 0]))
    assert calibration(y, np.full(4, 0.25)) == 0.5 == e.calibration
    assert e.revenue_mae == pytest.approx((6 + 2 + 2 + 0) / 4)
    assert e.revenue_rmse == pytest.approx(math.sqrt((36 + 4 + 4) / 4))
    assert e.to_dict()["sends"] == 4


def held_out(ne: float, cal: float, clicks: int = 10) -> Evaluation:
    return Evaluation(100, clicks, 0.3, ne, 0.6, cal, math.nan, math.nan)


@pytest.mark.parametrize(
    ("candidate", "current", "verdict"),
    [
        (held_out(0.95, 1.0), None, (True, "first_model")),
        (held_out(1.01, 1.0), None, (False, "not_better")),
        (held_out(0.95, 1.0), held_out(0.97, 1.0), (True, "better")),
        (held_out(0.97, 1.0), held_out(0.95, 1.0), (False, "not_better")),
        (held_out(0.90, 1.12), held_out(0.97, 1.0), (False, "miscalibrated")),
        (held_out(0.90, 0.89), None, (False, "miscalibrated")),
        (held_out(math.nan, math.nan, clicks=0), None, (False, "no_clicks_held_out")),
    ],
)
def test_the_gate(candidate: Evaluation, current: Evaluation | None, verdict: tuple) -> None:  # type: ignore[type-arg]
    v = gate(candidate, current)
    assert (v.promote, v.reason) == verdict


def test_importances_are_shares_of_mean_absolute_contribution() -> None:
    contributions = np.array([[1.0, -3.0, 0.0], [-1.0, 3.0, 0.5]])
    top = importances(("a", "b", "c"), contributions, top=2)
    assert [name for name, _ in top] == ["b", "a"]
    assert top[0][1] == pytest.approx(3 / 4.25)
