"""The daily job's parameter snapshots as the report's counterfactual target: "all
automated traffic to thompson_single_step" (`selector.live_counterfactual`).

Where they are: `stream.job.snapshot` publishes each account's `params_snapshot.v1` to
the compacted `thompson-params` topic (key: account id) and to Redis (`params:<account>`,
the latest only). The topic keeps every snapshot until compaction drops the older ones
of a key, so it is the history there is; `read_snapshots` reads all of it. A decision
whose nearest earlier snapshot is gone (compacted, or the job did not run) is left out of
the counterfactual by name (`no_snapshot`, `snapshot_too_old`), never filled in.

How a snapshot becomes probabilities (`timed_snapshots`): its creatives' Beta posteriors,
the catalog's payouts (after the payout floor, per click for `cto` offers), the learning
pool (creatives with fewer sends than the threshold) and the exploration floor, through
`selector.ope_targets.thompson_target`, as the service's own propensities are estimated.
A creative the snapshot does not name has the prior. The contact's cooldowns, which
remove creatives per decision, are not in a snapshot and are not modelled.

Which catalog: the one in force at each snapshot's `computed_at` (`timed_in_force`, from
`stream.job.cut.read_catalog_history`): its creatives, payouts and settings, a creative
it lacks getting probability 0. A snapshot older than every valid catalog version the
topics still hold (compaction keeps the latest message of a key per part) takes the
oldest one held.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from selector.domain import Account
from selector.live_counterfactual import MAX_AGE, TimedSnapshots
from selector.ope_targets import DRAWS, ThompsonPosteriors, thompson_target
from selector.view import compile_account
from stream.adapters.kafka_reader import open_consumer, read_ranges
from stream.handlers.catalog import AccountCatalog
from stream.replay.ranges import topic_ranges
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import TOPICS, ParamsSnapshot

__all__ = ["account_snapshots", "posteriors_of", "read_snapshots", "timed_in_force",
           "timed_snapshots"]  # fmt: skip


def posteriors_of(account: Account, snapshots: Iterable[ParamsSnapshot]) -> ThompsonPosteriors:
    """One row of Beta posteriors per snapshot, over the catalog's creatives."""
    view, s = compile_account(account), account.settings
    rows: dict[str, list[list[float]]] = defaultdict(list)
    learning: list[list[bool]] = []
    for snap in snapshots:
        prior = (snap.prior.alpha, snap.prior.beta)
        params = [snap.creatives.get(c) for c in view.creative_ids]
        for name, at in (("ctr_alpha", 0), ("ctr_beta", 1), ("cvr_alpha", 0), ("cvr_beta", 1)):
            rows[name].append([prior[at] if p is None else getattr(p, name) for p in params])
        learning.append([(0 if p is None else p.sends) < s.learning_threshold for p in params])
    return ThompsonPosteriors.of(
        rows["ctr_alpha"],
        rows["ctr_beta"],
        cvr_alpha=rows["cvr_alpha"],
        cvr_beta=rows["cvr_beta"],
        value=view.value,
        per_click=view.per_click,
        allowed=np.broadcast_to(view.candidate, (len(learning), view.candidate.size)),
        learning=learning,
        goal=s.goal,
        learning_share=s.learning_pct / 100.0,
        exploration_floor=s.exploration_floor_pct / 100.0,
    )


def timed_snapshots(
    account: Account,
    snapshots: Iterable[ParamsSnapshot],
    rng: np.random.Generator,
    *,
    draws: int = DRAWS,
    max_age: float = MAX_AGE,
) -> TimedSnapshots:
    """thompson_single_step's probabilities at each snapshot, in force from its
    `computed_at`; no snapshot at all gives an empty history (every row left out)."""
    ordered = sorted(snapshots, key=lambda snap: snap.computed_at)
    creative_ids = tuple(c.creative_id for c in account.creatives)
    if not ordered or not any(c.is_candidate for c in account.creatives):
        return TimedSnapshots((), creative_ids, np.zeros((0, len(creative_ids))), max_age)
    probabilities = thompson_target(posteriors_of(account, ordered), rng, draws)
    times = tuple(snap.computed_at for snap in ordered)
    return TimedSnapshots(times, creative_ids, probabilities, max_age)


def read_snapshots(
    settings: Settings, accounts: frozenset[str] | None
) -> dict[str, list[ParamsSnapshot]]:
    """Every parameter snapshot the `thompson-params` topic still holds, by account
    (undecodable values are skipped: the report's counterfactual then says which
    decisions have none)."""
    topic = settings.topic(TOPICS["params_snapshot"])
    try:
        found = asyncio.run(topic_ranges(settings, topic))
    except ValueError:  # no such topic: the daily job never ran here
        return {}
    out: dict[str, list[ParamsSnapshot]] = defaultdict(list)

    def on_run(_topic: str, _partition: int, run: list[Any]) -> None:
        for message in run:
            snap = codec.decode("params_snapshot", message.value())
            if isinstance(snap, ParamsSnapshot) and (
                accounts is None or snap.account_id in accounts
            ):
                out[snap.account_id].append(snap)

    consumer = open_consumer(settings, f"{settings.app_id}-report")
    try:
        read_ranges(consumer, {(topic, p): r for p, r in found.items()}, on_run)
    finally:
        consumer.close()
    return dict(out)


def timed_in_force(
    versions: Sequence[tuple[float, Account]],
    snapshots: Iterable[ParamsSnapshot],
    rng: np.random.Generator,
    *,
    draws: int = DRAWS,
    max_age: float = MAX_AGE,
) -> TimedSnapshots:
    """`timed_snapshots` with each snapshot read against the catalog version in force at
    its time (`versions`: (from, account), ascending, not empty), over the creatives of
    every version used (in order of first appearance)."""
    ordered = sorted(snapshots, key=lambda snap: snap.computed_at)
    starts = [at for at, _ in versions]
    groups: dict[int, list[ParamsSnapshot]] = defaultdict(list)
    for snap in ordered:
        groups[max(bisect_right(starts, snap.computed_at) - 1, 0)].append(snap)
    if len(groups) <= 1:
        account = versions[next(iter(groups), len(versions) - 1)][1]
        return timed_snapshots(account, ordered, rng, draws=draws, max_age=max_age)
    parts = [timed_snapshots(versions[i][1], g, rng, draws=draws) for i, g in groups.items()]
    ids = tuple(dict.fromkeys(c for part in parts for c in part.creative_ids))
    column = {c: j for j, c in enumerate(ids)}
    rows = []
    for part in parts:
        block = np.zeros((len(part.times), len(ids)))
        block[:, [column[c] for c in part.creative_ids]] = part.probabilities
        rows.append(block)
    times = tuple(t for part in parts for t in part.times)
    return TimedSnapshots(times, ids, np.concatenate(rows), max_age)


def account_snapshots(
    catalogs: Mapping[str, AccountCatalog],
    snapshots: Mapping[str, list[ParamsSnapshot]],
    rng: np.random.Generator,
    history: Mapping[str, Sequence[tuple[float, AccountCatalog]]] | None = None,
) -> dict[str, TimedSnapshots]:
    """Per account with a catalog, its counterfactual target over time: each snapshot
    against the catalog in force at its time (`history`, from
    `stream.job.cut.read_catalog_history`), or against `catalogs` without one."""
    out = {}
    for a, c in catalogs.items():
        if c.account is None:
            continue
        held = (history or {}).get(a, ())
        versions = [(at, v.account) for at, v in held if v.account is not None]
        out[a] = timed_in_force(versions or [(-math.inf, c.account)], snapshots.get(a, ()), rng)
    return out
