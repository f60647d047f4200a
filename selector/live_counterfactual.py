"""The counterfactual "all automated traffic to thompson_single_step", from time-stamped
parameter snapshots (`selector.live_ope`).

Each automated row is evaluated with thompson_single_step's probabilities from the
snapshot nearest before its decision (`TimedSnapshots`: the daily job's parameter
snapshots, each in force from its `computed_at`), if that snapshot is at most `max_age`
old. A row whose method already was thompson_single_step needs none: its logged
propensity is that policy's own probability of the logged creative, so its importance
weight is exactly 1 (IPS, SNIPS); the rest of its target row is unknown, so DR is made
on the rows with a snapshot only (its `rows` says how many). Any other row without a
usable snapshot is left out, counted by reason (`Uncovered`), with the span of decision
times concerned: nothing is guessed.

Examples
--------
>>> import numpy as np
>>> snaps = TimedSnapshots((100.0,), ("a", "b"), np.array([[0.25, 0.75]]), max_age=50.0)
>>> rows = counterfactual_rows(
...     snaps, ("a", "b"), action=np.array([0, 1, 1]), propensity=np.array([0.5, 0.5, 0.4]),
...     decided=np.array([90.0, 120.0, 200.0]), thompson=np.array([False, False, True]))
>>> rows.target.tolist(), rows.kept.tolist(), rows.by_snapshot.tolist()
([[0.25, 0.75], [0.6, 0.4]], [False, True, True], [True, False])
>>> rows.coverage.left_out, rows.coverage.by_snapshot, rows.coverage.by_logged
({'no_snapshot': 1}, 1, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.domain import DAY_SECONDS

Uncovered = Literal["no_snapshot", "snapshot_too_old", "no_model", "no_profile"]
UNCOVERED: tuple[Uncovered, ...] = get_args(Uncovered)
MAX_AGE = 2 * DAY_SECONDS  # the daily job's snapshot, with a day's slack


@dataclass(frozen=True, slots=True, eq=False)
class TimedSnapshots:
    """thompson_single_step's probabilities over `creative_ids`, `probabilities[s]` in
    force from `times[s]` (ascending epoch seconds) for at most `max_age` seconds."""

    times: tuple[float, ...]
    creative_ids: tuple[str, ...]
    probabilities: NDArray[np.float64]
    max_age: float = MAX_AGE


@dataclass(frozen=True, slots=True)
class Coverage:
    """How the counterfactual's rows got their target probabilities: `by_snapshot`
    (from the target's `source`: a parameter snapshot, or a model version), `by_logged`
    (logged under thompson_single_step, no usable snapshot); `left_out` by reason, and the
    first and last decision time left out (NaN when none); `sampled_from`: the rows a
    uniform sample was drawn from (0: every row was evaluated)."""

    by_snapshot: int
    by_logged: int
    left_out: dict[Uncovered, int] = field(default_factory=dict)
    first_left_out: float = float("nan")
    last_left_out: float = float("nan")
    unsupported_mass: float = 0.0
    source: str = "snapshot"
    sampled_from: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class CounterfactualRows:
    """`target`: one row per kept row; `kept`: which of the log's rows; `by_snapshot`:
    which of the kept rows have a snapshot (the rows DR uses)."""

    target: NDArray[np.float64]
    kept: NDArray[np.bool_]
    by_snapshot: NDArray[np.bool_]
    coverage: Coverage


def _snapshot_rows(
    snapshots: TimedSnapshots, creative_ids: tuple[str, ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each snapshot's probabilities over `creative_ids`, renormalized, and the mass the
    snapshot put outside them."""
    index = {c: i for i, c in enumerate(snapshots.creative_ids)}
    probs = np.asarray(snapshots.probabilities, dtype=np.float64)
    out = np.zeros((probs.shape[0], len(creative_ids)))
    for j, c in enumerate(creative_ids):
        if c in index:
            out[:, j] = probs[:, index[c]]
    mass = out.sum(axis=1)
    even = np.full(len(creative_ids), 1.0 / max(len(creative_ids), 1))
    safe = np.where(mass[:, None] > 0, out / np.maximum(mass, 1e-300)[:, None], even)
    return safe, 1.0 - mass


def counterfactual_rows(
    snapshots: TimedSnapshots,
    creative_ids: tuple[str, ...],
    *,
    action: NDArray[Any],
    propensity: NDArray[Any],
    decided: NDArray[Any],
    thompson: NDArray[Any],
) -> CounterfactualRows:
    """Target rows (one per kept row, over `creative_ids`) and the coverage; rows come in
    their order, those left out dropped. A row logged under thompson_single_step without
    a snapshot gets its logged propensity on its creative and the rest spread evenly
    (only its weight, exactly 1, is used: see the module)."""
    k = len(creative_ids)
    if not snapshots.times:  # none at all: every decision comes before the first
        snapshots = TimedSnapshots((math.inf,), creative_ids, np.full((1, k), 1.0 / k))
    times = np.asarray(snapshots.times, dtype=np.float64)
    at = np.searchsorted(times, decided, side="right") - 1
    found = at >= 0
    fresh = found & (decided - times[np.maximum(at, 0)] <= snapshots.max_age)
    by_logged = ~fresh & thompson
    kept = fresh | by_logged
    rows, outside = _snapshot_rows(snapshots, creative_ids)
    target = rows[np.maximum(at, 0)]
    p = propensity[by_logged]
    rest = (1.0 - p) / max(k - 1, 1)
    logged = np.repeat(rest[:, None], k, axis=1)
    logged[np.arange(p.size), action[by_logged]] = p if k > 1 else 1.0
    target[by_logged] = logged
    reasons = {
        "no_snapshot": int(np.count_nonzero(~found & ~thompson)),
        "snapshot_too_old": int(np.count_nonzero(found & ~fresh & ~thompson)),
    }
    out = decided[~kept]
    coverage = Coverage(
        by_snapshot=int(fresh.sum()),
        by_logged=int(by_logged.sum()),
        left_out={r: n for r, n in reasons.items() if n},  # type: ignore[misc]
        first_left_out=float(out.min()) if out.size else float("nan"),
        last_left_out=float(out.max()) if out.size else float("nan"),
        unsupported_mass=float(outside[at[fresh]].mean()) if fresh.any() else 0.0,
    )
    return CounterfactualRows(target[kept], kept, fresh[kept], coverage)


__all__ = [
    "MAX_AGE",
    "UNCOVERED",
    "CounterfactualRows",
    "Coverage",
    "TimedSnapshots",
    "Uncovered",
    "counterfactual_rows",
]
