"""The live report's aggregates over all accounts at once, sliced per account.

Each family of groups (arm, method, creative, day x arm) is keyed by an int64 whose high
part is the account code, so one `group_table` call serves every account and an account's
groups are a contiguous, sorted run of keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.domain import DAY_SECONDS
from selector.live_checks import (
    Diversity,
    PoolStatus,
    distinct,
    diversity,
    pool_state,
    split_counts,
)
from selector.live_groups import Group, GroupTable, group_table
from selector.live_join import Joined

Keys = NDArray[np.int64]
_AUTOMATED, _CONTROL = ARMS.index("automated"), ARMS.index("control")
_LEARNING, _SCORED = POOLS.index("learning"), POOLS.index("scored")


def _run(keys: Keys, account: int, stride: int) -> slice:
    """The positions of `account`'s keys in sorted `keys`."""
    lo, hi = np.searchsorted(keys, [account * stride, (account + 1) * stride])
    return slice(int(lo), int(hi))


def _count_by(keys: Keys) -> tuple[Keys, NDArray[np.int64]]:
    uniq, counts = np.unique(keys, return_counts=True)
    return uniq, counts


def _time_bounds(keys: Keys, times: NDArray[np.float64]) -> dict[int, tuple[float, float]]:
    """Per key: the earliest and latest time."""
    if keys.size == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    k, t = keys[order], times[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    low, high = np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts)
    return {
        int(key): (float(lo), float(hi)) for key, lo, hi in zip(k[starts], low, high, strict=True)
    }


def _with_click_payouts(
    joined: Joined, sends: Any, payouts: Mapping[str, Mapping[str, float]]
) -> None:
    if not payouts:
        return
    n_creatives = max(1, len(joined.creatives))
    pair = sends["account"].astype(np.int64) * n_creatives + sends["creative"]
    uniq, which = np.unique(pair, return_inverse=True)
    names, creatives = joined.accounts, joined.creatives
    value = np.array(
        [
            payouts.get(names[p // n_creatives], {}).get(creatives[p % n_creatives], 0.0)
            for p in uniq.tolist()
        ]
    )
    sends["revenue"] += sends["clicks"] * value[which]


@dataclass(frozen=True, slots=True, eq=False)
class Tables:
    joined: Joined
    sends: Any  # reported rows sorted by account; revenue includes click payouts
    offsets: NDArray[np.intp]
    arms: GroupTable
    methods: GroupTable
    creatives: GroupTable
    days: GroupTable
    day0: int
    n_days: int
    splits: dict[int, list[tuple[int, tuple[int, int, int]]]]  # per account: campaign, counts
    contacts: NDArray[np.int64]  # distinct contacts per account
    pool_counts: tuple[Keys, NDArray[np.int64]]  # (account x creative x pool, count)
    learning_times: dict[int, tuple[float, float]]  # per account x creative
    scored_times: dict[int, tuple[float, float]]
    day_shares: tuple[Keys, NDArray[np.int64]]  # (account x day x creative, count)

    @property
    def n_creatives(self) -> int:
        return max(1, len(self.joined.creatives))

    def present_accounts(self) -> list[int]:
        return np.flatnonzero(np.diff(self.offsets) > 0).tolist()

    def account_rows(self, a: int) -> Any:
        return self.sends[self.offsets[a] : self.offsets[a + 1]]

    def span(self, a: int) -> tuple[float, float, int]:
        times = self.account_rows(a)["time"]
        return float(times.min()), float(times.max()), int(self.contacts[a])

    def _groups(
        self, table: GroupTable, a: int, stride: int, names: tuple[str, ...]
    ) -> tuple[Group, ...]:
        run = _run(table.keys, a, stride)
        return tuple(
            table.group(i, names[int(table.keys[i]) % stride]) for i in range(run.start, run.stop)
        )

    def arm_groups(self, a: int) -> tuple[Group, ...]:
        return self._groups(self.arms, a, len(ARMS), ARMS)

    def method_groups(self, a: int) -> tuple[Group, ...]:
        return self._groups(self.methods, a, len(DECIDED_BY), DECIDED_BY)

    def creative_groups(self, a: int) -> tuple[Group, ...]:
        groups = self._groups(self.creatives, a, self.n_creatives, self.joined.creatives)
        return tuple(sorted(groups, key=lambda g: g.name))

    def day_groups(self, a: int) -> list[tuple[int, tuple[Group, ...]]]:
        table, arms = self.days, len(ARMS)
        run = _run(table.keys, a, self.n_days * arms)
        by_day: dict[int, list[Group]] = {}
        for i in range(run.start, run.stop):
            key = int(table.keys[i])
            day = (key // arms) % self.n_days + self.day0
            by_day.setdefault(day, []).append(table.group(i, ARMS[key % arms]))
        return [(day, tuple(groups)) for day, groups in sorted(by_day.items())]

    def split_counts(self, a: int) -> list[tuple[int, tuple[int, int, int]]]:
        names = self.joined.campaigns
        return sorted(self.splits.get(a, []), key=lambda item: names[item[0]])

    def pools(self, a: int) -> tuple[PoolStatus, ...]:
        keys, counts = self.pool_counts
        run, k, p = _run(keys, a, self.n_creatives * len(POOLS)), self.n_creatives, len(POOLS)
        per: dict[int, dict[str, int]] = {}
        for key, count in zip(keys[run].tolist(), counts[run].tolist(), strict=True):
            per.setdefault(key // p, {})[POOLS[key % p]] = count
        out = []
        for pair, by_pool in sorted(
            per.items(), key=lambda item: self.joined.creatives[item[0] % k]
        ):
            last_learning = self.learning_times.get(pair, (math.nan, math.nan))[1]
            scored = self.scored_times.get(pair)
            state = pool_state(last_learning, math.nan if scored is None else scored[1])
            first = None if scored is None else scored[0]
            out.append(PoolStatus(self.joined.creatives[pair % k], state, by_pool, first))
        return tuple(out)

    def share_by_day(self, a: int) -> list[tuple[int, dict[str, float]]]:
        keys, counts = self.day_shares
        k = self.n_creatives
        run = _run(keys, a, self.n_days * k)
        per: dict[int, dict[str, float]] = {}
        for key, count in zip(keys[run].tolist(), counts[run].tolist(), strict=True):
            per.setdefault((key // k) % self.n_days + self.day0, {})[
                self.joined.creatives[key % k]
            ] = count
        return [
            (day, {c: n / sum(s.values()) for c, n in s.items()}) for day, s in sorted(per.items())
        ]


def learning_share(pools: tuple[PoolStatus, ...]) -> float:
    """The share of automated sends picked from the learning pool."""
    total = sum(sum(s.sends_by_pool.values()) for s in pools)
    learning = sum(s.sends_by_pool.get("learning", 0) for s in pools)
    return learning / total if total else math.nan


def creative_diversity(pools: tuple[PoolStatus, ...]) -> Diversity:
    """Diversity of the automated sends over creatives."""
    counts = np.array([sum(s.sends_by_pool.values()) for s in pools], dtype=np.float64)
    return diversity([s.creative_id for s in pools], counts)


def _splits(
    account: Keys, campaign: Any, rank: Any, arm: Any, n_contacts: int, n_campaigns: int
) -> dict[int, list[tuple[int, tuple[int, int, int]]]]:
    """Per account: each campaign's split counts (automated and control sends only)."""
    rows = (arm == _AUTOMATED) | (arm == _CONTROL)
    key = account * n_campaigns + campaign
    counts = split_counts(key[rows], rank[rows], (arm == _AUTOMATED)[rows], n_contacts)
    out: dict[int, list[tuple[int, tuple[int, int, int]]]] = {}
    for k, c in counts.items():
        out.setdefault(k // n_campaigns, []).append((k % n_campaigns, c))
    return out


def build_tables(joined: Joined, click_payouts: Mapping[str, Mapping[str, float]]) -> Tables:
    """Every aggregate the report reads, in a few sorts over the reported sends."""
    sends = joined.sends[np.argsort(joined.sends["account"], kind="stable")]
    _with_click_payouts(joined, sends, click_payouts)
    account = sends["account"].astype(np.int64)
    contacts, rank = np.unique(sends["contact"], return_inverse=True)
    n_contacts = max(1, contacts.size)
    day = np.floor(sends["time"] / DAY_SECONDS).astype(np.int64)
    day0 = int(day.min()) if day.size else 0
    n_days = int(day.max()) - day0 + 1 if day.size else 1
    dated = account * n_days + day - day0
    arm, k = sends["arm"].astype(np.int64), max(1, len(joined.creatives))
    pair = account * k + sends["creative"]
    auto = sends["arm"] == _AUTOMATED
    learning, scored = auto & (sends["pool"] == _LEARNING), auto & (sends["pool"] == _SCORED)

    def table(keys: Keys) -> GroupTable:
        return group_table(keys, rank, n_contacts, sends)

    per_account = distinct(account * n_contacts + rank) // n_contacts
    return Tables(
        joined=joined,
        sends=sends,
        offsets=np.searchsorted(account, np.arange(len(joined.accounts) + 1)),
        arms=table(account * len(ARMS) + arm),
        methods=table(account * len(DECIDED_BY) + sends["method"]),
        creatives=table(pair),
        days=table(dated * len(ARMS) + arm),
        day0=day0,
        n_days=n_days,
        splits=_splits(
            account,
            sends["campaign"],
            rank,
            sends["arm"],
            n_contacts,
            max(1, len(joined.campaigns)),
        ),
        contacts=np.bincount(per_account, minlength=len(joined.accounts)),
        pool_counts=_count_by(pair[auto] * len(POOLS) + sends["pool"][auto]),
        learning_times=_time_bounds(pair[learning], sends["time"][learning]),
        scored_times=_time_bounds(pair[scored], sends["time"][scored]),
        day_shares=_count_by((dated * k + sends["creative"])[auto]),
    )
