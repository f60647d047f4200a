"""Serialization of the stats table value (`selector.ingest.Ledger`).

JSON with exact integers, so a value survives the changelog round trip bit for bit.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import orjson

from selector.ingest import Ledger
from selector.stats import AccountStats, Counts, Decayed
from selector.timing import Timing

FORMAT = 1


def ledger_to_dict(ledger: Ledger) -> dict[str, Any]:
    stats = ledger.stats
    return {
        "format": FORMAT,
        "version": stats.version,
        "half_life_seconds": stats.half_life_seconds,
        "counts": {
            cid: [c.sends, c.clicks, c.conversions, c.revenue_micros]
            for cid, c in stats.counts.items()
        },
        "decayed": {
            cid: [d.sends, d.clicks, d.conversions, d.revenue, d.ref_time]
            for cid, d in stats.decayed.items()
        },
        "applied": dict(ledger.applied),
        # written only when it holds anything; a value without it decodes with an empty one
        **({} if stats.timing.is_empty() else {"timing": stats.timing.to_plain()}),
    }


def ledger_from_dict(data: dict[str, Any]) -> Ledger:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown stats value format {data.get('format')!r}")
    counts = {cid: Counts(*map(int, row)) for cid, row in data["counts"].items()}
    decayed = {cid: Decayed(*map(float, row)) for cid, row in data["decayed"].items()}
    stats = AccountStats(
        MappingProxyType(counts),
        data["half_life_seconds"],
        MappingProxyType(decayed),
        int(data["version"]),
        Timing.from_plain(data.get("timing")),
    )
    return Ledger(stats, MappingProxyType({k: int(v) for k, v in data["applied"].items()}))


def dumps(ledger: Ledger) -> bytes:
    return orjson.dumps(ledger_to_dict(ledger))


def loads(raw: bytes) -> Ledger:
    return ledger_from_dict(orjson.loads(raw))
