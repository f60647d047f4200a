"""Off-policy evaluation on one account's live automated traffic (`selector.ope`).

The log is the automated arm's reported sends that carry a propensity; the actions are
the creatives that appear in it. Target policies: `uniform` (the `random` method for all
automated traffic) and, when the posteriors in force at the logged versions are given,
`thompson_single_step` ("all automated traffic to single-step Thompson sampling"); or,
from time-stamped parameter snapshots, the same counterfactual with each row's snapshot
the one nearest before its decision (`selector.live_counterfactual`, with its coverage);
and, given the accounts' model versions and events, "all automated traffic to the model
method", each row with the version in force at its decision (`selector.live_model_ope`).
Each gets IPS, SNIPS and DR, and the replay estimate on the `random` method's rows (pool
`uniform`), which were drawn uniformly among the eligible creatives. A target's
probability on a creative never logged cannot be evaluated from this log; it is left out
and renormalized, and `unsupported_mass` says how much there was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.live_counterfactual import Coverage, TimedSnapshots, counterfactual_rows
from selector.live_model_ope import ModelEvidence, model_rows
from selector.ope import RESAMPLES, Estimate, LoggedBandit, evaluate, replay, uniform_target
from selector.ope_targets import DRAWS, ThompsonPosteriors, thompson_target

Goal = Literal["clicks", "revenue"]
_AUTOMATED = ARMS.index("automated")
_UNIFORM = POOLS.index("uniform")
_THOMPSON = DECIDED_BY.index("thompson_single_step")


@dataclass(frozen=True, slots=True, eq=False)
class PolicySnapshots:
    """A target policy's probabilities at some versions of one account's stats:
    `probabilities[v]` over `creative_ids` is in force from `versions[v]` (ascending) on.
    Rows logged before the first version use the first."""

    versions: tuple[int, ...]
    creative_ids: tuple[str, ...]
    probabilities: NDArray[np.float64]


def thompson_snapshots(
    versions: tuple[int, ...],
    creative_ids: tuple[str, ...],
    posteriors: ThompsonPosteriors,
    rng: np.random.Generator,
    draws: int = DRAWS,
) -> PolicySnapshots:
    """thompson_single_step's probabilities at each of `versions` (one row of
    `posteriors` each, e.g. the daily parameter snapshots), ready for `OpeOptions`."""
    return PolicySnapshots(versions, creative_ids, thompson_target(posteriors, rng, draws))


@dataclass(frozen=True, slots=True)
class OpeOptions:
    """`thompson`: per account, thompson_single_step's probabilities by version (e.g.
    `selector.ope_targets.thompson_target` over the daily parameter snapshots); `goals`:
    per account the reward, revenue per send unless it says clicks."""

    resamples: int = RESAMPLES
    thompson: Mapping[str, PolicySnapshots] = field(default_factory=lambda: MappingProxyType({}))
    goals: Mapping[str, Goal] = field(default_factory=lambda: MappingProxyType({}))
    timed: Mapping[str, TimedSnapshots] | None = None  # per account; None: not asked for
    models: Mapping[str, ModelEvidence] | None = None  # per account; None: not asked for


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """A target policy's estimated value per send on the automated traffic."""

    policy: str
    reward: Goal
    estimates: dict[str, Estimate]
    unsupported_mass: float
    coverage: Coverage | None = None  # the counterfactual from time-stamped snapshots


@dataclass(frozen=True, slots=True, eq=False)
class LoggedRows:
    """An account's automated log: the bandit columns, the creative of each action, each
    row's logged params version, and which rows were uniform draws."""

    log: LoggedBandit
    creative_ids: tuple[str, ...]
    version: NDArray[np.int64]
    uniform: NDArray[np.bool_]
    decided: NDArray[np.float64]
    thompson: NDArray[np.bool_]  # logged under thompson_single_step
    contact: NDArray[np.int64]  # the contact id's hash (`selector.live_pack`)
    sent: NDArray[np.float64]  # the send's time


def logged_rows(sends: Any, creative_names: tuple[str, ...], goal: Goal) -> LoggedRows | None:
    """The automated rows of `sends` (one account's reported rows) that carry a
    propensity, or None when there are none."""
    p = sends["propensity"]
    rows = sends[(sends["arm"] == _AUTOMATED) & np.isfinite(p) & (p > 0) & (p <= 1)]
    if rows.size == 0:
        return None
    codes, action = np.unique(rows["creative"], return_inverse=True)
    reward = rows["clicks"] if goal == "clicks" else rows["revenue"]
    log = LoggedBandit.of(action, rows["propensity"], reward, codes.size)
    names = tuple(creative_names[c] for c in codes.tolist())
    return LoggedRows(
        log,
        names,
        rows["version"].astype(np.int64),
        rows["pool"] == _UNIFORM,
        rows["decided"].astype(np.float64),
        rows["method"] == _THOMPSON,
        rows["contact"].astype(np.int64),
        rows["time"].astype(np.float64),
    )


def _aligned(snapshots: PolicySnapshots, logged: LoggedRows) -> tuple[NDArray[Any], float]:
    """Per-row target probabilities over the logged actions, and the mean mass outside."""
    index = {c: i for i, c in enumerate(snapshots.creative_ids)}
    columns = [index.get(c, -1) for c in logged.creative_ids]
    probs = np.asarray(snapshots.probabilities, dtype=np.float64)
    keep = np.zeros((probs.shape[0], len(columns)))
    for j, col in enumerate(columns):
        if col >= 0:
            keep[:, j] = probs[:, col]
    at = np.searchsorted(np.asarray(snapshots.versions), logged.version, side="right") - 1
    rows = keep[np.maximum(at, 0)]
    mass = rows.sum(axis=1)
    unsupported = float(np.mean(1.0 - mass))
    fallback = np.full(len(columns), 1.0 / len(columns))
    safe = np.where(mass[:, None] > 0, rows / np.maximum(mass, 1e-300)[:, None], fallback)
    return safe, unsupported


def _value(
    name: str, target: NDArray[Any], logged: LoggedRows, goal: Goal, unsupported: float,
    rng: np.random.Generator, resamples: int,
) -> PolicyValue:  # fmt: skip
    estimates: dict[str, Estimate] = {
        str(k): v for k, v in evaluate(logged.log, target, rng, resamples=resamples).items()
    }
    estimates["replay"] = replay(logged.log, target, logged.uniform, rng, resamples=resamples)
    return PolicyValue(name, goal, estimates, unsupported)


def account_ope(
    account_id: str,
    sends: Any,
    creative_names: tuple[str, ...],
    options: OpeOptions,
    rng: np.random.Generator,
) -> tuple[PolicyValue, ...]:
    """Estimates for the uniform policy and, when given, thompson_single_step."""
    goal: Goal = options.goals.get(account_id, "revenue")
    logged = logged_rows(sends, creative_names, goal)
    if logged is None:
        return ()
    k = logged.log.n_actions
    values = [_value("uniform", uniform_target(k), logged, goal, 0.0, rng, options.resamples)]
    snapshots = options.thompson.get(account_id)
    if snapshots is not None and len(snapshots.versions):
        target, unsupported = _aligned(snapshots, logged)
        name = "thompson_single_step"
        values.append(_value(name, target, logged, goal, unsupported, rng, options.resamples))
    if options.timed is not None:
        values.append(_timed_value(options.timed.get(account_id), logged, goal, rng, options))
    if options.models is not None and account_id in options.models:
        values.append(_model_value(options.models[account_id], logged, goal, rng, options))
    return tuple(values)


NO_SNAPSHOTS = TimedSnapshots((), (), np.zeros((0, 0)))


def _timed_value(
    snapshots: TimedSnapshots | None,
    logged: LoggedRows,
    goal: Goal,
    rng: np.random.Generator,
    options: OpeOptions,
) -> PolicyValue:
    """thompson_single_step from the snapshots nearest before each decision: IPS and
    SNIPS on every covered row, DR and replay on the rows with a snapshot."""
    log = logged.log
    rows = counterfactual_rows(
        snapshots or NO_SNAPSHOTS,
        logged.creative_ids,
        action=log.action,
        propensity=log.propensity,
        decided=logged.decided,
        thompson=logged.thompson,
    )
    cover, name = rows.coverage, "thompson_single_step (snapshots)"
    estimates: dict[str, Estimate] = {}
    if rows.kept.any():
        kept = log.subset(rows.kept)
        every = evaluate(kept, rows.target, rng, resamples=options.resamples)
        estimates = {"ips": every["ips"], "snips": every["snips"]}
    if rows.by_snapshot.any():
        snap, target = log.subset(rows.kept).subset(rows.by_snapshot), rows.target[rows.by_snapshot]
        estimates["dr"] = evaluate(snap, target, rng, resamples=options.resamples)["dr"]
        uniform = logged.uniform[rows.kept][rows.by_snapshot]
        estimates["replay"] = replay(snap, target, uniform, rng, resamples=options.resamples)
    return PolicyValue(name, goal, estimates, cover.unsupported_mass, cover)


def _model_value(
    evidence: ModelEvidence,
    logged: LoggedRows,
    goal: Goal,
    rng: np.random.Generator,
    options: OpeOptions,
) -> PolicyValue:
    """The model method from the version in force at each decision
    (`selector.live_model_ope`): IPS, SNIPS, DR and replay on the covered rows."""
    log = logged.log
    rows = model_rows(
        evidence, logged.creative_ids, action=log.action, contact=logged.contact,
        sent=logged.sent, decided=logged.decided, rng=rng,
    )  # fmt: skip
    estimates: dict[str, Estimate] = {}
    if rows.kept.any():
        kept = log.subset(rows.kept)
        estimates = {
            str(k): v
            for k, v in evaluate(kept, rows.target, rng, resamples=options.resamples).items()
        }
        uniform = logged.uniform[rows.kept]
        estimates["replay"] = replay(kept, rows.target, uniform, rng, resamples=options.resamples)
    cover = rows.coverage
    return PolicyValue("model (versions)", goal, estimates, cover.unsupported_mass, cover)
