"""The recovery benchmark's arithmetic and its reading of the worker's log."""

from __future__ import annotations

from pathlib import Path

from bench.recovery_bench import Bench, ledger, recoveries
from stream.wire.ledger_codec import dumps, loads


def test_recoveries_are_read_from_the_log_in_order(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-12-01 10:00:00,000] [1] [INFO] [^---Recovery]: Restoring state from changelog "
        "topics...\n"
        "[2026-12-01 10:00:02,500] [1] [INFO] [^---Recovery]: Done reading from changelog topics\n"
        "not a log line\n"
        "[2026-12-01 10:01:00,000] [1] [INFO] [^---Recovery]: Restoring state from changelog "
        "topics...\n"
        "[2026-12-01 10:01:00,250] [1] [INFO] [^---Recovery]: Done reading from changelog topics\n"
    )
    assert [round(s, 3) for s in recoveries(log)] == [2.5, 0.25]


def test_figures_scale_to_100k_keys() -> None:
    figures = Bench.figures(50_000, 50_000, 10.0)
    assert figures["records_per_second"] == 5000
    assert figures["seconds_per_100k_keys"] == 20.0


def test_the_filled_ledgers_decode() -> None:
    value = ledger(7)
    assert loads(dumps(value)) == value
