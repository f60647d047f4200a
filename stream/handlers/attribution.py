"""Outcomes by arm: which arm of the control split each applied send, click and
conversion belongs to, counted per batch.

The stats agent sees a send's creative but not the decision behind it. The arm needs no
join, though: it is a pure function of `(campaign_id, contact_id)` and the campaign's
`automated_percent` (`selector.hashing`), so recomputing it from the event gives the
arm the selection gave that contact, as long as the campaign's percentage has not changed
since. Sends always name their campaign; clicks and conversions may (`campaign_id` is
optional on the wire). Events without a campaign the catalog knows count as
`unattributed` rather than being guessed into an arm.

Only events that `selector.ingest.apply_events` applies are counted: re-deliveries and
upstream duplicates are not, so the counters agree with the stats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import numpy as np

from selector.hashing import pair_keys, split_units
from selector.ingest import EVERY_INDEX, Ledger, SourcedEvent, partition_key
from selector.view import AccountView
from stream.handlers.catalog import AccountCatalog
from stream.ops.metrics import Metrics

ArmLabel = Literal["automated", "control", "manual", "unattributed"]
ARM_LABELS: tuple[ArmLabel, ...] = get_args(ArmLabel)
MICROS = 1_000_000


def applied_flags(ledger: Ledger, events: Sequence[SourcedEvent]) -> list[bool]:
    """Which events `apply_events(ledger, events)` applies: past the ledger's offset for
    their partition (and past earlier events of the batch) and not a duplicate."""
    last: dict[str, tuple[int, int]] = {}  # per partition: (offset, index) applied last
    flags = []
    for e in events:
        key = partition_key(e.topic, e.partition)
        seen = last.get(key)
        if seen is None:  # a message at or below the ledger's offset is applied whole
            seen = (ledger.applied.get(key, -1), EVERY_INDEX)
        fresh = (e.offset, e.index) > seen
        if fresh:
            last[key] = (e.offset, e.index)
        flags.append(fresh and not e.duplicate)
    return flags


def arms_of(
    view: AccountView | None, campaign_ids: Sequence[str | None], contact_ids: Sequence[str]
) -> list[ArmLabel]:
    """The arm of each (campaign, contact) under the account's current split."""
    n = len(contact_ids)
    if view is None or n == 0:
        return ["unattributed"] * n
    rows = np.array([view.campaign_index.get(c, -1) if c else -1 for c in campaign_ids])
    known = np.flatnonzero(rows >= 0).tolist()
    codes = np.full(n, 3, dtype=np.intp)  # unattributed
    if known:
        r = rows[known]
        campaigns = [campaign_ids[i] or "" for i in known]
        units = split_units(pair_keys(campaigns, [contact_ids[i] for i in known]))
        automated = units * 100.0 < view.automated_pct[r]
        codes[known] = np.where(view.manual_campaign[r], 2, np.where(automated, 0, 1))
    return [ARM_LABELS[c] for c in codes]


class ViewCache:
    """Each account's compiled `AccountView`, taken from its shared `AccountCatalog`."""

    def __init__(self, catalog: Callable[[bytes], AccountCatalog | None]) -> None:
        self._catalog = catalog

    def get(self, key: bytes) -> AccountView | None:
        found = self._catalog(key)
        return found.view if found is not None else None


class ArmOutcomes:
    """Counts one account's applied events of a batch into the arm counters."""

    def __init__(self, metrics: Metrics, views: ViewCache) -> None:
        self._metrics = metrics
        self._views = views

    def count(
        self, key: bytes, ledger: Ledger, events: Sequence[SourcedEvent], decoded: Sequence[Any]
    ) -> None:
        """Count the events of `events` (decoded as `decoded`) that `ledger` will apply."""
        applied = [d for d, ok in zip(decoded, applied_flags(ledger, events), strict=True) if ok]
        self.count_applied(key, applied)

    def count_applied(self, key: bytes, applied: Sequence[Any]) -> None:
        """Count these applied events (decoded) of the account `key`."""
        if not applied:
            return
        arms = arms_of(
            self._views.get(key),
            [getattr(d, "campaign_id", None) for d in applied],
            [d.contact_id for d in applied],
        )
        totals: Counter[tuple[str, ArmLabel]] = Counter()
        micros: Counter[ArmLabel] = Counter()
        for d, arm in zip(applied, arms, strict=True):
            totals[d.kind, arm] += 1
            if d.kind == "conversion":
                micros[arm] += d.revenue_micros
        m = self._metrics
        counters = {"send": m.arm_sends, "click": m.arm_clicks, "conversion": m.arm_conversions}
        for (kind, label), n in totals.items():
            counters[kind].labels(label).inc(n)
        for label, total in micros.items():
            m.arm_revenue.labels(label).inc(total / MICROS)
