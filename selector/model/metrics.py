"""Model metrics, and the gate a new model version passes to replace the current one.

- log loss: mean -[y log p + (1 - y) log(1 - p)] (p clipped to [1e-12, 1 - 1e-12]);
- normalized entropy (He et al. 2014): log loss / the entropy of the observed click rate,
  so 1 is no better than predicting the average and lower is better;
- AUC: the probability that a random click is ranked above a random non-click (ties
  count half), from the rank-sum statistic;
- calibration: predicted clicks / observed clicks (1 is calibrated);
- MAE and RMSE of predicted against realized revenue per send.

The gate: the candidate replaces the current model only if, on the same held-out sends,
its normalized entropy is lower than the current model's (lower than 1, the constant
predictor, when there is no current model) and its calibration is within [0.9, 1.1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[Any]
EPS = 1e-12
GateReason = Literal["better", "first_model", "not_better", "miscalibrated", "no_clicks_held_out"]
GATE_REASONS: tuple[GateReason, ...] = get_args(GateReason)
CALIBRATION_RANGE = (0.9, 1.1)


def log_loss(y: FloatArray, p: FloatArray) -> float:
    """Mean binary cross-entropy.

    >>> round(log_loss(np.array([1.0, 0.0]), np.array([0.5, 0.5])), 4)
    0.6931
    """
    if y.size == 0:
        return math.nan
    q = np.clip(p, EPS, 1.0 - EPS)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))


def normalized_entropy(y: FloatArray, p: FloatArray) -> float:
    """Log loss over the entropy of the base rate (nan when every label is the same)."""
    rate = float(np.mean(y)) if y.size else math.nan
    if not 0.0 < rate < 1.0:
        return math.nan
    base = -(rate * math.log(rate) + (1.0 - rate) * math.log(1.0 - rate))
    return log_loss(y, p) / base


def auc(y: FloatArray, score: FloatArray) -> float:
    """Area under the ROC curve, ties counted half.

    >>> auc(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    positives = int(np.sum(y > 0.5))
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    sorted_scores = score[order]
    # average ranks over ties
    edges = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [score.size]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    rank_sum = float(ranks[y > 0.5].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def calibration(y: FloatArray, p: FloatArray) -> float:
    observed = float(np.sum(y))
    return float(np.sum(p)) / observed if observed > 0 else math.nan


def mae(actual: FloatArray, predicted: FloatArray) -> float:
    return float(np.mean(np.abs(actual - predicted))) if actual.size else math.nan


def rmse(actual: FloatArray, predicted: FloatArray) -> float:
    return float(np.sqrt(np.mean((actual - predicted) ** 2))) if actual.size else math.nan


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A model's predictions scored on one set of sends."""

    sends: int
    clicks: int
    log_loss: float
    normalized_entropy: float
    auc: float
    calibration: float
    revenue_mae: float
    revenue_rmse: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(getattr(self, k)) for k in Evaluation.__dataclass_fields__}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def evaluate(
    clicked: FloatArray,
    p_click: FloatArray,
    revenue: FloatArray | None = None,
    predicted_revenue: FloatArray | None = None,
) -> Evaluation:
    """Click metrics, plus revenue-per-send errors when both revenue arrays are given."""
    has_revenue = revenue is not None and predicted_revenue is not None
    return Evaluation(
        sends=int(clicked.size),
        clicks=int(np.sum(clicked)),
        log_loss=log_loss(clicked, p_click),
        normalized_entropy=normalized_entropy(clicked, p_click),
        auc=auc(clicked, p_click),
        calibration=calibration(clicked, p_click),
        revenue_mae=mae(revenue, predicted_revenue) if has_revenue else math.nan,  # type: ignore[arg-type]
        revenue_rmse=rmse(revenue, predicted_revenue) if has_revenue else math.nan,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    promote: bool
    reason: GateReason


def gate(
    candidate: Evaluation,
    current: Evaluation | None,
    calibration_range: tuple[float, float] = CALIBRATION_RANGE,
) -> Verdict:
    """Whether `candidate` replaces `current`, both evaluated on the same held-out sends.

    >>> new = evaluate(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.2, 0.7, 0.3, 0.8]))
    >>> gate(new, None)
    Verdict(promote=True, reason='first_model')
    """
    if candidate.clicks == 0 or not math.isfinite(candidate.normalized_entropy):
        return Verdict(False, "no_clicks_held_out")
    low, high = calibration_range
    if not low <= candidate.calibration <= high:
        return Verdict(False, "miscalibrated")
    if current is None:
        ok = candidate.normalized_entropy < 1.0
        return Verdict(ok, "first_model" if ok else "not_better")
    if candidate.normalized_entropy < current.normalized_entropy:
        return Verdict(True, "better")
    return Verdict(False, "not_better")


def importances(
    names: tuple[str, ...], contributions: FloatArray, top: int = 10
) -> list[tuple[str, float]]:
    """The `top` names by mean absolute contribution to the logit, as shares of the total
    (`contributions` is rows x names)."""
    mass = np.abs(contributions).mean(axis=0)
    total = float(mass.sum())
    if total <= 0:
        return []
    order = np.argsort(-mass, kind="stable")[:top]
    return [(names[i], float(mass[i] / total)) for i in order]
