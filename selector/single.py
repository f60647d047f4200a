"""One request, decided without building a batch: the same steps as `Selector.decide_batch`
on Python scalars, for the common case (an automated campaign, a Thompson or uniform
method). Anything else returns None and the caller takes the batch path.

What makes it cheap is that nothing derived from the stats is recomputed while the stats
value stays the same object: its posterior, and per eligibility mask the policy's
distribution as a cumulative list, are kept until another stats value (or, with
forgetting, another decision time; with pending feedback to discount, another minute)
comes in. A decision is then two CRC-32s, two
splitmix64 mixes, one uniform number and a bisection; its propensity is the same exact
probability the batch path reports.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selector.batch import Decision, Request
from selector.hashing import _M1, _M2, _ROUTE_SALT, _SPLIT_SALT
from selector.policies import Policy, PolicyContext
from selector.policies.thompson import ThompsonPolicy
from selector.policies.uniform import RandomPolicy
from selector.stats import AccountStats
from selector.view import AccountView, posterior

_MASK64 = (1 << 64) - 1
_SPLIT, _ROUTE, _MUL1, _MUL2 = (int(x) for x in (_SPLIT_SALT, _ROUTE_SALT, _M1, _M2))
_TWO_POW_53 = float(2**53)
MAX_MASKS = 4096
TIME_STEP = 60.0


def _unit(key: int, salt: int) -> float:
    """`selector.hashing._unit` for one key, in Python integers (bit for bit the same)."""
    z = (key + salt) & _MASK64
    z = ((z ^ (z >> 30)) * _MUL1) & _MASK64
    z = ((z ^ (z >> 27)) * _MUL2) & _MASK64
    z ^= z >> 31
    return (z >> 11) / _TWO_POW_53


@dataclass(slots=True)
class _Prepared:
    """Everything derived from one stats value at one decision time."""

    stats: AccountStats | None = None
    now: float = 0.0
    context: PolicyContext | None = None
    learning: tuple[bool, ...] = ()
    rows: dict[tuple[str, bytes], tuple[list[float], list[float]]] = field(default_factory=dict)


class SingleDecider:
    """The scalar path of one `Selector`; holds the last stats value's derived state."""

    def __init__(self, view: AccountView, policies: dict[Any, Policy]) -> None:
        self.view = view
        self.policies = policies
        self.seeds: dict[str, int] = {}
        self.prepared = _Prepared()
        self.candidate_bytes = np.asarray(view.candidate).tobytes()
        self.forgetting = view.settings.half_life_seconds is not None

    def decide(
        self, stats: AccountStats, request: Request, rng: np.random.Generator
    ) -> Decision | None:
        view = self.view
        row = view.campaign_index.get(request.campaign_id)
        if row is None or view.manual_campaign[row]:
            return None
        seed = self.seeds.get(request.campaign_id)
        if seed is None:
            seed = self.seeds[request.campaign_id] = zlib.crc32(request.campaign_id.encode())
        key = (seed << 32) | zlib.crc32(request.contact_id.encode(), seed)
        version = stats.version
        if _unit(key, _SPLIT) * 100.0 >= view.automated_pct[row]:
            default = view.creative_ids[int(view.default_creative[row])]
            return Decision(default, "control", "default", "control", "none", 1.0, version)
        methods = view.methods
        if len(methods) == 1:
            method = methods[0]
        else:
            where = bisect_right(view.method_cumulative_pct.tolist(), _unit(key, _ROUTE) * 100)
            method = methods[min(where, len(methods) - 1)]
        policy = self.policies[method]
        if not isinstance(policy, ThompsonPolicy | RandomPolicy):
            return None
        mask = self._eligible(request)
        if mask is None:
            return None  # nothing eligible: the batch path names the fallback's reason
        return self._pick(stats, request.time, method, policy, mask, rng)

    def _eligible(self, request: Request) -> bytes | None:
        """The eligibility mask as bytes (candidates minus cooldowns); None if empty."""
        view = self.view
        if not request.last_sent:
            return self.candidate_bytes if view.candidate.any() else None
        cooldown, now, index = view.settings.cooldown_seconds, request.time, view.creative_index
        mask = bytearray(self.candidate_bytes)
        for creative_id, when in request.last_sent.items():
            j = index.get(creative_id)
            if j is not None and now - when < cooldown:
                mask[j] = 0
        return bytes(mask) if any(mask) else None

    def _pick(
        self,
        stats: AccountStats,
        now: float,
        method: Any,
        policy: Policy,
        mask: bytes,
        rng: np.random.Generator,
    ) -> Decision:
        prep = self._prepare(stats, now)
        cached = prep.rows.get((method, mask))
        if cached is None:
            cached = self._distribution(prep, policy, mask)
            if len(prep.rows) >= MAX_MASKS:
                prep.rows.clear()
            prep.rows[method, mask] = cached
        cumulative, probability = cached
        k = min(bisect_right(cumulative, float(rng.random())), len(cumulative) - 1)
        while probability[k] == 0.0:  # rounding at a boundary: step back to a real choice
            k -= 1
        view = self.view
        if isinstance(policy, ThompsonPolicy):
            pool = "learning" if prep.learning[k] else "scored"
            reason = "none"
        else:
            pool, reason = "uniform", getattr(policy, "reason", "none")
        return Decision(
            view.creative_ids[k],
            "automated",
            method,
            pool,  # type: ignore[arg-type]
            reason,  # type: ignore[arg-type]
            probability[k],
            stats.version,
        )

    def _prepare(self, stats: AccountStats, now: float) -> _Prepared:
        prep = self.prepared
        if not self.forgetting:
            # only the pending-feedback correction depends on the time: a minute's
            # resolution keeps the cache useful between stats updates
            now = 0.0 if stats.timing.is_empty() else math.floor(now / TIME_STEP) * TIME_STEP
        if prep.stats is stats and prep.now == now:
            return prep
        view = self.view
        post = posterior(view, stats, now)
        context = PolicyContext(view, post, np.zeros(1, dtype=np.intp), None, {})
        learning = tuple(bool(x) for x in post.raw_sends < view.settings.learning_threshold)
        self.prepared = _Prepared(stats, now, context, learning)
        return self.prepared

    def _distribution(
        self, prep: _Prepared, policy: Policy, mask: bytes
    ) -> tuple[list[float], list[float]]:
        eligible = np.frombuffer(mask, dtype=bool)
        assert prep.context is not None
        dist = policy.distribution(prep.context, 0, eligible, np.random.default_rng(0))
        probability = [float(x) for x in dist]
        cumulative = np.cumsum(dist).tolist()
        cumulative[-1] = 1.0
        return cumulative, probability
