"""The report over a send-time simulation: the pitfall and the estimates that survive it.

Built from two runs of one scenario: the standard experiment (both groups launched at
the campaign's launch time, the control sent then) and the launch-alignment experiment
(the optimized group launched at the alignment time, the control delayed). `to_dict` is
JSON-ready (NaN becomes null); `format_table` is what a person reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from selector.sendtime import measure
from selector.sendtime.batch import ARMS, REASONS
from selector.sendtime.measure import DayComparison, Estimate
from selector.sendtime.simulate import SendTimeRun

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_HISTORY = 10  # the learning curve follows contacts with at least this many sends


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One group of the standard run: sends, response rate within the outcome window,
    mean and median hours from its launch to delivery, share deferred by quiet hours."""

    arm: str
    sends: int
    response_rate: float
    mean_delay_hours: float
    median_delay_hours: float
    deferred_share: float


@dataclass(frozen=True, slots=True)
class SendTimeReport:
    """Everything a person reads about one scenario; see the module docstring."""

    scenario: str
    seed: int
    true_uplift: float
    estimates: tuple[Estimate, ...]
    per_launch: tuple[DayComparison, ...]
    arms: tuple[ArmSummary, ...]
    slot_share: dict[str, tuple[float, ...]]
    reasons: dict[str, int]
    learning: tuple[float, ...]
    learning_contacts: int
    prior_routines: int
    prior_strength: float

    def estimate(self, method: measure.Method) -> Estimate:
        return next(e for e in self.estimates if e.method == method)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for item, estimate in zip(data["estimates"], self.estimates, strict=True):
            item["contains_truth"] = estimate.truth is not None and estimate.contains(
                estimate.truth
            )
        result = _json_safe(data)
        assert isinstance(result, dict)
        return result

    def format_table(self) -> str:
        lines = [
            f"{self.scenario} (seed {self.seed}): true uplift {_lift(self.true_uplift)}; prior "
            f"with {self.prior_routines} routine(s), median strength {self.prior_strength:.1f}",
            "",
            f"{'group':12}{'sends':>10}{'response':>10}{'delay h':>9}{'median h':>10}"
            f"{'deferred':>10}",
        ]
        for a in self.arms:
            lines.append(
                f"{a.arm:12}{a.sends:>10,}{_pct(a.response_rate):>10}{a.mean_delay_hours:>9.1f}"
                f"{a.median_delay_hours:>10.1f}{_pct(a.deferred_share):>10}"
            )
        lines += [
            "",
            "Lift of the optimized group over the control (95% intervals; truth: same sends)",
        ]
        for e in self.estimates:
            truth = "n/a" if e.truth is None else _lift(e.truth)
            verdict = (
                "" if e.truth is None else ("  contains" if e.contains(e.truth) else "  MISSES")
            )
            lines.append(
                f"  {e.method:18}{e.strata:>2} strata {_lift(e.lift):>8}  "
                f"[{_lift(e.low)}, {_lift(e.high)}]  {truth:>7}{verdict}"
            )
        lines += ["", "Naive comparison by campaign day"]
        for d in self.per_launch:
            lines.append(
                f"  day {d.launch + 1:>2} {WEEKDAYS[d.weekday]}  optimized {_pct(d.optimized_rate)}"
                f"  control {_pct(d.control_rate)}  lift {_lift(d.lift):>7} "
                f"[{_lift(d.low)}, {_lift(d.high)}]"
            )
        curve = " ".join(f"{x:.2f}" for x in self.learning)
        lines += [
            "",
            f"Best-slot ratio by launch ({self.learning_contacts} contacts with >= {MIN_HISTORY} "
            f"sends whose best slot is not the account's): {curve}",
        ]
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def _lift(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.1%}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _arms(run: SendTimeRun) -> tuple[ArmSummary, ...]:
    out = []
    delay = (run.send_at - run.launch_at) / 3600.0
    for code, name in enumerate(ARMS):
        rows = run.outcomes.arm == code
        if rows.any():
            out.append(
                ArmSummary(
                    name,
                    int(rows.sum()),
                    float(run.outcomes.responded[rows].mean()),
                    float(delay[rows].mean()),
                    float(np.median(delay[rows])),
                    float(run.deferred[rows].mean()),
                )
            )
    return tuple(out)


def learning_curve(run: SendTimeRun) -> tuple[tuple[float, ...], int]:
    """Per launch: the mean, over optimized sends to contacts with >= MIN_HISTORY sends
    whose best allowed slot is not the account's, of the chosen slot's true rate over
    the contact's best allowed slot's; and how many distinct contacts that covers."""
    chosen = run.optimized & run.differs & (run.sends_before >= MIN_HISTORY)
    curve = tuple(
        float(run.best_ratio[chosen & (run.outcomes.launch == launch)].mean())
        for launch in np.unique(run.outcomes.launch)
    )
    return curve, int(np.unique(run.outcomes.contact[chosen]).size)


def build_report(
    standard: SendTimeRun, aligned: SendTimeRun, min_week_days: int = 5
) -> SendTimeReport:
    o = standard.outcomes
    estimates = (
        measure.naive(o),
        measure.same_weekday(o),
        measure.weekly(o, min_week_days),
        measure.launch_alignment(aligned.outcomes),
    )
    shares: dict[str, tuple[float, ...]] = {}
    for code, name in enumerate(ARMS):
        rows = o.arm == code
        counts = np.bincount(standard.slot[rows], minlength=standard.slots)
        shares[name] = tuple((counts / max(int(rows.sum()), 1)).tolist())
    reasons = np.bincount(standard.reason, minlength=len(REASONS))
    curve, contacts = learning_curve(standard)
    truth = estimates[0].truth
    return SendTimeReport(
        scenario=standard.scenario,
        seed=standard.seed,
        true_uplift=math.nan if truth is None else truth,
        estimates=estimates,
        per_launch=measure.per_launch(o),
        arms=_arms(standard),
        slot_share=shares,
        reasons={name: int(reasons[i]) for i, name in enumerate(REASONS)},
        learning=curve,
        learning_contacts=contacts,
        prior_routines=standard.prior.routines,
        prior_strength=standard.prior.strength,
    )
