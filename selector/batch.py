"""Requests and decisions, one at a time and as columns.

A batch is columnar (numpy arrays plus id tuples) so that deciding a thousand requests
costs a handful of vectorized operations, not a thousand Python objects. `Decision` is
the row view, built on demand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.domain import METHODS, Method
from selector.hashing import pair_keys

Arm = Literal["automated", "control", "manual"]
Pool = Literal["control", "learning", "scored", "uniform", "manual", "fallback"]
Reason = Literal["none", "no_candidates", "all_in_cooldown", "model_unavailable"]
DecidedBy = Method | Literal["default"]

ARMS: tuple[Arm, ...] = get_args(Arm)
POOLS: tuple[Pool, ...] = get_args(Pool)
REASONS: tuple[Reason, ...] = get_args(Reason)
DECIDED_BY: tuple[DecidedBy, ...] = (*METHODS, "default")

ARM = {name: np.uint8(i) for i, name in enumerate(ARMS)}
POOL = {name: np.uint8(i) for i, name in enumerate(POOLS)}
REASON = {name: np.uint8(i) for i, name in enumerate(REASONS)}
DECIDER = {name: np.uint8(i) for i, name in enumerate(DECIDED_BY)}

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Request:
    """One selection request. `last_sent` maps creative ids to the time this contact last
    received them: the cooldown state, read from wherever the caller keeps it."""

    campaign_id: str
    contact_id: str
    time: float
    last_sent: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True, eq=False)
class RequestBatch:
    """N requests of one account as columns. `profiles` holds the contacts' profile
    records (`selector.model.record.records`), read with the cooldowns; only the `model`
    method uses them, and a batch without them is scored as contacts without history."""

    campaign_ids: tuple[str, ...]
    contact_ids: tuple[str, ...]
    times: NDArray[np.float64]
    keys: NDArray[np.uint64]
    last_sent: tuple[Mapping[str, float], ...] | None = None
    profiles: NDArray[Any] | None = None

    @classmethod
    def from_columns(
        cls,
        campaign_ids: Sequence[str],
        contact_ids: Sequence[str],
        times: Sequence[float] | NDArray[np.float64],
        last_sent: Sequence[Mapping[str, float]] | None = None,
        profiles: NDArray[Any] | None = None,
    ) -> RequestBatch:
        n = len(contact_ids)
        if len(campaign_ids) != n or len(times) != n or (last_sent and len(last_sent) != n):
            raise ValueError("all request columns must have the same length")
        if profiles is not None and len(profiles) != n:
            raise ValueError("all request columns must have the same length")
        keys = pair_keys(campaign_ids, contact_ids)
        t = np.asarray(times, dtype=np.float64)
        t.setflags(write=False)
        keys.setflags(write=False)
        cooldowns = tuple(last_sent) if last_sent is not None and any(last_sent) else None
        return cls(tuple(campaign_ids), tuple(contact_ids), t, keys, cooldowns, profiles)

    @classmethod
    def from_requests(cls, requests: Sequence[Request]) -> RequestBatch:
        return cls.from_columns(
            [r.campaign_id for r in requests],
            [r.contact_id for r in requests],
            [r.time for r in requests],
            [r.last_sent for r in requests],
        )

    def __len__(self) -> int:
        return len(self.contact_ids)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request.

    `propensity` is the probability that this request would have received this creative
    under the policy's randomness, given its (deterministic) arm and method: exact for
    every method (Thompson scoring draws the creative from its win probabilities,
    `selector.winprob`; the `model` method from its win shares over the batch's posterior
    draws, `selector.model.scoring`). `stats_version` names the stats value the decision
    was made from, and `model_version` the contextual model, for decisions of the `model`
    method that had one.
    """

    creative_id: str
    arm: Arm
    method: DecidedBy
    pool: Pool
    reason: Reason
    propensity: float
    stats_version: int
    model_version: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class BatchDecision:
    """Decisions for a `RequestBatch`, as columns of codes (see ARMS, POOLS, ...)."""

    creative_ids: tuple[str, ...]
    creative: NDArray[np.intp]
    arm: NDArray[np.uint8]
    method: NDArray[np.uint8]
    pool: NDArray[np.uint8]
    reason: NDArray[np.uint8]
    propensity: NDArray[np.float64]
    stats_version: int
    rotation: Mapping[str, int]
    model_version: int | None = None

    def __len__(self) -> int:
        return int(self.creative.size)

    def modelled(self) -> NDArray[np.bool_]:
        """Rows the `model` method decided with a model (not its fallback)."""
        if self.model_version is None:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(
            (self.method == DECIDER["model"]) & (self.reason != REASON["model_unavailable"])
        )

    def __getitem__(self, i: int) -> Decision:
        method = DECIDED_BY[int(self.method[i])]
        reason = REASONS[int(self.reason[i])]
        with_model = method == "model" and reason != "model_unavailable"
        return Decision(
            creative_id=self.creative_ids[int(self.creative[i])],
            arm=ARMS[int(self.arm[i])],
            method=method,
            pool=POOLS[int(self.pool[i])],
            reason=reason,
            propensity=float(self.propensity[i]),
            stats_version=self.stats_version,
            model_version=self.model_version if with_model else None,
        )

    def decisions(self) -> list[Decision]:
        return [self[i] for i in range(len(self))]
