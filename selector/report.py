"""Reports over a simulation: arms, methods, creatives, lift with intervals, the oracle.

Lift is the ratio of means minus one, automated over control, for click rate and revenue
per send (RPS), with a delta-method interval on the log ratio and contacts as clusters
(`selector.intervals`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from selector.batch import ARMS, DECIDED_BY
from selector.intervals import CONFIDENCE, Lift, ratio_lift
from selector.simulate import Array, SimulationResult

__all__ = [
    "CONFIDENCE",
    "Lift",
    "Report",
    "Summary",
    "Timeline",
    "build_report",
    "json_safe",
    "ratio_lift",
]


@dataclass(frozen=True, slots=True)
class Summary:
    """Outcomes of one group of sends; `expected_value` is the mean true expected value
    (RPS, or click rate for the clicks goal) of the creatives it was sent."""

    name: str
    sends: int
    clicks: int
    conversions: int
    revenue: float
    expected_value: float

    @property
    def click_rate(self) -> float:
        return self.clicks / self.sends if self.sends else math.nan

    @property
    def conversion_rate(self) -> float:
        """Conversions per click, the rate the selector models."""
        return self.conversions / self.clicks if self.clicks else math.nan

    @property
    def revenue_per_send(self) -> float:
        return self.revenue / self.sends if self.sends else math.nan


@dataclass(frozen=True, slots=True)
class Timeline:
    """Equal time buckets (`starts` in seconds): the automated arm's creative shares
    (bucket x creative), RPS per arm, and the automated arm's cumulative regret at each
    bucket's end."""

    starts: tuple[float, ...]
    creative_share: tuple[tuple[float, ...], ...]
    rps_by_arm: dict[str, tuple[float, ...]]
    cumulative_regret: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a person reads about one run; `to_dict` is JSON-ready."""

    scenario: str
    seed: int
    goal: str
    creative_ids: tuple[str, ...]
    arms: tuple[Summary, ...]
    methods: tuple[Summary, ...]
    creatives: tuple[Summary, ...]
    click_lift: Lift
    rps_lift: Lift
    automated_value: float
    oracle_value: float
    share_of_oracle: float
    expected_share_of_oracle: float
    regret: float
    timeline: Timeline

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN (an empty group) becomes null."""
        data = asdict(self)
        for key in ("arms", "methods", "creatives"):
            data[key] = [_summary_dict(s) for s in getattr(self, key)]
        for key in ("click_lift", "rps_lift"):
            data[key]["excludes_zero"] = getattr(self, key).excludes_zero
        result = json_safe(data)
        assert isinstance(result, dict)
        return result

    def format_table(self) -> str:
        """An aligned terminal table, headed by the one-line summary the product shows."""
        rows = [_row(s) for s in self.arms]
        rows += ["-- by method"] + [_row(s) for s in self.methods]
        rows += ["-- by creative"] + [_row(s) for s in self.creatives]
        unit = "click rate" if self.goal == "clicks" else "RPS"
        return "\n".join([
            f"{self.scenario} (seed {self.seed}): {sum(a.sends for a in self.arms):,} sends, "
            f"goal {self.goal}",
            self.headline(),
            "",
            f"{'':24}{'sends':>10}{'click':>9}{'conv/click':>12}{'RPS':>9}{'true ' + unit:>14}",
            *rows,
            "",
            f"Lift, automated over control ({self.rps_lift.confidence:.0%} CI: delta method on "
            "the log ratio, contacts as clusters)",
            _lift_row("click rate", _pct, self.click_lift),
            _lift_row("RPS", _usd, self.rps_lift),
            f"Oracle over the automated sends: {_value(self.goal, self.oracle_value)}/send; "
            f"automated {_value(self.goal, self.automated_value)} = {self.share_of_oracle:.1%} "
            f"of it (expected {self.expected_share_of_oracle:.1%}); "
            f"regret {_regret(self.goal, self.regret)}",
        ])  # fmt: skip

    def headline(self) -> str:
        """'Automated 14.0% click, $0.52/send; Control 11.0%, $0.41; lift +27% [+18%, +36%]'"""
        c, r = self.click_lift, self.rps_lift
        return (
            f"Automated {_pct(c.treatment)} click, {_usd(r.treatment)}/send; "
            f"Control {_pct(c.control)}, {_usd(r.control)}; RPS lift {_lift(r, 0)}"
        )


def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}%}"


def _usd(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"${x:,.{digits}f}"


def _value(goal: str, x: float, digits: int = 3) -> str:
    return _pct(x) if goal == "clicks" else _usd(x, digits)


def _regret(goal: str, x: float) -> str:
    """Regret is a total, not a rate: expected clicks lost, or money for revenue."""
    if math.isnan(x):
        return "n/a"
    return f"{x:,.1f} expected clicks" if goal == "clicks" else _usd(x, 2)


def _lift(lift: Lift, digits: int = 1) -> str:
    if math.isnan(lift.lift):
        return "n/a"
    return f"{lift.lift:+.{digits}%} [{lift.low:+.{digits}%}, {lift.high:+.{digits}%}]"


def _lift_row(label: str, fmt: Callable[[float], str], lift: Lift) -> str:
    return f"  {label:12}{fmt(lift.treatment):>7} vs {fmt(lift.control):>7}  {_lift(lift)}"


def _row(s: Summary) -> str:
    return (
        f"{s.name:24}{s.sends:>10,}{_pct(s.click_rate, 2):>9}{_pct(s.conversion_rate, 2):>12}"
        f"{_usd(s.revenue_per_send):>9}{_usd(s.expected_value):>14}"
    )


def _summary_dict(s: Summary) -> dict[str, Any]:
    extra = {"click_rate": s.click_rate, "conversion_rate": s.conversion_rate}
    return {**asdict(s), **extra, "revenue_per_send": s.revenue_per_send}


def json_safe(value: Any) -> Any:
    """Plain JSON types with NaN and infinities as None (null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _summaries(result: SimulationResult, codes: Array, names: tuple[str, ...]) -> list[Summary]:
    k = len(names)
    sends = np.bincount(codes, minlength=k)
    per = {
        name: np.bincount(codes, weights=getattr(result, name), minlength=k)
        for name in ("click", "conversion", "revenue", "expected")
    }
    return [
        Summary(
            names[i],
            int(sends[i]),
            int(per["click"][i]),
            int(per["conversion"][i]),
            float(per["revenue"][i]),
            float(per["expected"][i] / sends[i]) if sends[i] else math.nan,
        )
        for i in range(k)
        if sends[i]
    ]


def _timeline(result: SimulationResult, automated: Array, buckets: int) -> Timeline:
    times = result.time
    end = float(times.max()) if times.size else 0.0
    count = max(1, min(buckets, np.unique(times).size))
    starts = np.linspace(0.0, end, count, endpoint=False) if end > 0 else np.zeros(1)
    bucket = np.searchsorted(starts, times, side="right") - 1
    m, k = starts.size, len(result.creative_ids)
    picks = np.zeros((m, k))
    np.add.at(picks, (bucket[automated], result.creative[automated]), 1.0)
    totals = picks.sum(axis=1, keepdims=True)
    share = np.divide(picks, totals, out=np.full_like(picks, np.nan), where=totals > 0)
    rps: dict[str, tuple[float, ...]] = {}
    for code, arm in enumerate(ARMS):
        rows = result.arm == code
        if rows.any():
            sends = np.bincount(bucket[rows], minlength=m)
            revenue = np.bincount(bucket[rows], weights=result.revenue[rows], minlength=m)
            rps[arm] = tuple(np.where(sends > 0, revenue / np.maximum(sends, 1), np.nan).tolist())
    regret = np.bincount(bucket[automated], weights=result.regret[automated], minlength=m)
    return Timeline(
        starts=tuple(starts.tolist()),
        creative_share=tuple(tuple(row) for row in share.tolist()),
        rps_by_arm=rps,
        cumulative_regret=tuple(np.cumsum(regret).tolist()),
    )


def _arm_lift(metric: str, values: Array, treated: Array, control: Array, contact: Array) -> Lift:
    return ratio_lift(metric, values[treated], values[control], contact[treated], contact[control])


def build_report(result: SimulationResult, buckets: int = 40) -> Report:
    """Summarize a run. The oracle comparison covers the automated arm's sends only: the
    control is held to its default creative on purpose."""
    automated = result.arm == ARMS.index("automated")
    control = result.arm == ARMS.index("control")
    contact = result.contact
    realized = result.click if result.goal == "clicks" else result.revenue
    oracle = float(result.oracle[automated].sum())
    value = float(realized[automated].sum())
    expected = float(result.expected[automated].sum())
    n = max(int(automated.sum()), 1)
    return Report(
        scenario=result.scenario,
        seed=result.seed,
        goal=result.goal,
        creative_ids=result.creative_ids,
        arms=tuple(_summaries(result, result.arm, ARMS)),
        methods=tuple(_summaries(result, result.method, DECIDED_BY)),
        creatives=tuple(_summaries(result, result.creative, result.creative_ids)),
        click_lift=_arm_lift("click_rate", result.click, automated, control, contact),
        rps_lift=_arm_lift("revenue_per_send", result.revenue, automated, control, contact),
        automated_value=value / n,
        oracle_value=oracle / n,
        share_of_oracle=value / oracle if oracle > 0 else math.nan,
        expected_share_of_oracle=expected / oracle if oracle > 0 else math.nan,
        regret=oracle - expected,
        timeline=_timeline(result, automated, buckets),
    )
