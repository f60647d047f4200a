"""Corrections between their wire form (`stats_correction.v1`) and the stats value they
add to (`selector.stats.AccountStats`): the daily job writes them, the stats agent reads
them; both sides go through here. The feedback timing's difference (`selector.timing`)
rides along in its exact-integer plain form, so the corrected stats discount pending
feedback as the recomputed ones do."""

from __future__ import annotations

import math
from types import MappingProxyType

from selector.stats import AccountStats, Counts, Decayed
from selector.timing import Timing
from stream.wire.messages import CreativeCorrection, DecayedDelta, StatsCorrection


def to_message(account_id: str, delta: AccountStats, run_id: str, now: float) -> StatsCorrection:
    """The correction message for a difference built by `selector.reconcile.correction`."""
    creatives = {}
    for cid, c in sorted(delta.counts.items()):
        d = delta.decayed.get(cid)
        decayed = None
        if d is not None and math.isfinite(d.ref_time):
            decayed = DecayedDelta(d.sends, d.clicks, d.conversions, d.revenue, d.ref_time)
        creatives[cid] = CreativeCorrection(
            c.sends, c.clicks, c.conversions, c.revenue_micros, decayed
        )
    timing = None if delta.timing.is_empty() else delta.timing.to_plain()
    return StatsCorrection(account_id, run_id, now, MappingProxyType(creatives), timing)


def to_delta(message: StatsCorrection, half_life_seconds: float | None) -> AccountStats:
    """The difference a correction message carries, to merge into a ledger's stats."""
    counts = {
        cid: Counts(c.sends, c.clicks, c.conversions, c.revenue_micros)
        for cid, c in message.creatives.items()
    }
    decayed = {
        cid: Decayed(d.sends, d.clicks, d.conversions, d.revenue, d.ref_time)
        for cid, c in message.creatives.items()
        if (d := c.decayed) is not None
    }
    return AccountStats(
        MappingProxyType(counts),
        half_life_seconds,
        MappingProxyType(decayed),
        timing=Timing.from_plain(message.timing),
    )
