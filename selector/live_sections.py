"""Optional sections of the live report, there only where their data is: the `model`
method's results, and send-time results. A `Section` is a titled table of text cells
with notes, so every renderer (terminal, JSON, HTML) shows any section the same way.

- `model_section`: when an account's reported sends include decisions of the `model`
  method: its sends, rates and revenue-per-send lift over control, and the parameter
  model and parameter versions its decisions named (`model_version`, `params_version`).
- `sendtime_section`: from send-time estimates (anything with `method`, `strata`,
  `lift`, `low`, `high`, `optimized_rate`, `control_rate`, as
  `selector.sendtime.measure.Estimate`), e.g. the send-time join over the topics.

Examples
--------
>>> from types import SimpleNamespace as E
>>> s = sendtime_section([E(method="naive", strata=1, lift=0.12, low=0.02, high=0.22,
...                         optimized_rate=0.056, control_rate=0.05)], sends=4000)
>>> s.head[:3], s.rows[0][:3]
(('estimate', 'strata', 'lift'), ('naive', '1', '+12.0%'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector.batch import DECIDED_BY
from selector.intervals import Lift
from selector.live_groups import Group

_MODEL = DECIDED_BY.index("model")


@dataclass(frozen=True, slots=True)
class Section:
    """A titled table: `key` names it (`model`, `sendtime`), `head` the columns."""

    key: str
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


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
    return Section("model", "Model method", head, (cells,), notes)


def _seen(what: str, versions: Any) -> str:
    if versions.size == 0:
        return f"{what} seen: none in the responses"
    listed = ", ".join(str(v) for v in versions[:5].tolist())
    more = f" and {versions.size - 5:,} more" if versions.size > 5 else ""
    return f"{what} seen: {listed}{more} ({versions.size:,} distinct)"


def sendtime_section(estimates: Sequence[Any], sends: int, aligned: int = 0) -> Section | None:
    """Send-time lifts, optimized over control, one row per estimate (None: none)."""
    if not estimates:
        return None
    rows = tuple(
        (str(e.method), str(e.strata), _signed(e.lift), f"[{_signed(e.low)}, {_signed(e.high)}]",
         f"{e.optimized_rate:.2%}", f"{e.control_rate:.2%}")
        for e in estimates
    )  # fmt: skip
    head = ("estimate", "strata", "lift", "95% interval", "optimized", "control")
    note = f"{sends:,} sends in standard launches, {aligned:,} in aligned ones"
    return Section("sendtime", "Send-time results", head, rows, (note,))


__all__ = ["Section", "model_section", "sendtime_section"]
