"""Optional sections of the live report, there only where their data is: the `model`
method's results, and send-time results. A `Section` is a titled table of text cells
with notes, so every renderer (terminal, JSON, HTML) shows any section the same way.

- `model_section`: when an account's reported sends include decisions of the `model`
  method: its sends, rates and revenue-per-send lift over control, and the parameter
  model and parameter versions its decisions named (`model_version`, `params_version`).
- `sendtime_section`: from send-time estimates (anything with `method`, `strata`,
  `lift`, `low`, `high`, `optimized_rate`, `control_rate`, as
  `selector.sendtime.measure.Estimate`), e.g. the send-time join over the topics; with
  `counts` (answers, sends joined, unjoined by reason) as numbers and notes.

A section's `intervals` are its figures as numbers (a plot draws them, JSON carries
them), `counts` its counts by name and `data` anything else JSON carries as values
rather than text (e.g. the model versions seen, as numbers). `AccountSections` holds
the sections of an account that has no reported selection sends (e.g. one using
send-time optimization only).

Examples
--------
>>> from types import SimpleNamespace as E
>>> s = sendtime_section([E(method="naive", strata=1, lift=0.12, low=0.02, high=0.22,
...                         optimized_rate=0.056, control_rate=0.05)], sends=4000)
>>> s.head[:3], s.rows[0][:3]
(('estimate', 'strata', 'lift'), ('naive', '1', '+12.0%'))
>>> s.intervals[0]
Interval(name='naive', value=0.12, low=0.02, high=0.22)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selector.batch import DECIDED_BY
from selector.intervals import Lift
from selector.live_groups import Group

_MODEL = DECIDED_BY.index("model")


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure with its 95% interval (`low`, `high`)."""

    name: str
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Section:
    """A titled table: `key` names it (`model`, `sendtime`), `head` the columns;
    `intervals`, `counts` and `data` its figures as values, where it has any."""

    key: str
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    intervals: tuple[Interval, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountSections:
    """The sections of an account without reported selection sends."""

    account_id: str
    sections: tuple[Section, ...]


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.1%}"


def model_section(methods: Sequence[Group], lifts: Sequence[Lift], rows: Any) -> Section | None:
    """The `model` method's figures among `methods` (with `lifts`, as `AccountReport`
    has them) and the params versions of its rows (one account's reported sends)."""
    at = next((i for i, g in enumerate(methods) if g.name == "model"), None)
    if at is None:
        return None
    g, rps = methods[at], lifts[at]
    mine = rows[rows["method"] == _MODEL]
    models = np.unique(mine["model"][mine["model"] >= 0])
    cells = (
        f"{g.sends:,}", _pct(g.click_rate.value), _pct(g.conversion_rate.value),
        f"{g.revenue_per_send.value:.3f}", f"{_signed(rps.lift)} [{_signed(rps.low)}, "
        f"{_signed(rps.high)}]",
    )  # fmt: skip
    head = ("sends", "click rate", "conversion rate", "revenue/send", "RPS lift over control")
    notes = (_seen("model versions", models), _seen("params versions", np.unique(mine["version"])))
    data = {"model_versions": [int(v) for v in models.tolist()]}
    return Section("model", "Model method", head, (cells,), notes, data=data)


def _seen(what: str, versions: Any) -> str:
    if versions.size == 0:
        return f"{what} seen: none in the responses"
    listed = ", ".join(str(v) for v in versions[:5].tolist())
    more = f" and {versions.size - 5:,} more" if versions.size > 5 else ""
    return f"{what} seen: {listed}{more} ({versions.size:,} distinct)"


def sendtime_section(
    estimates: Sequence[Any],
    sends: int,
    aligned: int = 0,
    counts: Mapping[str, int] | None = None,
) -> Section | None:
    """Send-time lifts, optimized over control, one row per estimate, and `counts` (by
    name, e.g. unjoined records by reason) as notes (None: no estimate and no count)."""
    counts = dict(counts or {})
    if not estimates and not any(counts.values()):
        return None
    rows = tuple(
        (str(e.method), str(e.strata), _signed(e.lift), f"[{_signed(e.low)}, {_signed(e.high)}]",
         _rate(e.optimized_rate), _rate(e.control_rate))
        for e in estimates
    )  # fmt: skip
    head = ("estimate", "strata", "lift", "95% interval", "optimized", "control")
    notes = [f"{sends:,} sends in standard launches, {aligned:,} in aligned ones"]
    if counts:
        notes.append(", ".join(f"{name} {n:,}" for name, n in counts.items()))
    intervals = tuple(Interval(str(e.method), e.lift, e.low, e.high) for e in estimates)
    return Section("sendtime", "Send-time results", head, rows, tuple(notes), intervals, counts)


def _rate(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2%}"


__all__ = ["AccountSections", "Interval", "Section", "model_section", "sendtime_section"]
