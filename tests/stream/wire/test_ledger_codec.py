"""The stats table value's changelog form keeps the feedback timing, and values written
before it existed still decode."""

from __future__ import annotations

import orjson

from selector import AccountStats, Event, fold
from selector.ingest import Ledger
from stream.wire.ledger_codec import dumps, ledger_to_dict, loads


def test_timing_round_trips_and_old_values_decode_without_it() -> None:
    events = [Event("send", "a", 100.0 * i) for i in range(50)]
    events += [Event("click", "a", 100.0 * i + 40, 0, 100.0 * i) for i in range(0, 50, 5)]
    ledger = Ledger(fold(events, AccountStats(half_life_seconds=3600.0)))
    again = loads(dumps(ledger))
    assert again.stats.timing == ledger.stats.timing
    assert again.stats.same_counts(ledger.stats) and again.stats.version == ledger.stats.version
    old = ledger_to_dict(ledger)
    del old["timing"]
    decoded = loads(orjson.dumps(old))
    assert decoded.stats.timing.is_empty() and decoded.stats.same_counts(ledger.stats)
    assert "timing" not in ledger_to_dict(Ledger())
