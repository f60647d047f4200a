"""`creative-select bench stream --quick` end to end on the session's Kafka and Redis: a
real worker, the load generator processes and the raw-client probe. Only the shape and
the bookkeeping of the report are checked, never its speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("bench") / "stream.json"
    command = [
        *(sys.executable, "-m", "stream.cli", "bench", "stream", "--quick", "--no-progress"),
        *("--json", str(out), "--bootstrap", kafka_bootstrap, "--redis-url", redis_url),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "selections/s sustained" in done.stdout
    assert "stats events/s, dedup on" in done.stdout
    return json.loads(out.read_text())


def test_every_request_is_answered_once_without_errors(report: Any) -> None:
    for phase in ("selections", "latency"):
        counts = report[phase]
        assert counts["requests"] > 0
        assert counts["answered"] == counts["requests"]
        assert counts["unanswered"] == counts["errors"] == counts["duplicate_answers"] == 0


def test_rates_and_ratios_are_positive(report: Any) -> None:
    assert report["selections"]["per_second"] > 0
    assert report["stats"]["per_second"] > 0
    for kind in ("request", "response", "event"):
        raw = report["raw"][kind]
        assert raw["messages"] > 0 and raw["mean_bytes"] > 100
        assert raw["produce_per_second"] > 0 and raw["consume_per_second"] > 0
    for phase in ("selections", "stats", "latency"):
        assert report[phase]["worker_cpu_seconds"] > 0
        assert report[phase]["mean_batch"] >= 1


@pytest.mark.parametrize("phase", ["latency", "raw_latency"])
def test_latency_percentiles_are_ordered(report: Any, phase: str) -> None:
    lat = report[phase]
    assert lat["answered"] == lat["requests"] > 0
    assert lat["measured"] == lat["requests"] - lat["warmup_requests"] > 0
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["p999_ms"] <= lat["max_ms"]


def test_every_event_is_counted_and_every_copy_dropped(report: Any) -> None:
    stats = report["stats"]
    assert stats["counted"] == stats["events"] > 0
    assert stats["duplicates"] == stats["duplicates_published"] > 0
    assert stats["applied"] == stats["events"] - stats["duplicates"]


def test_targets_are_judged_from_the_reported_figures(report: Any) -> None:
    by_name = {t["name"]: t for t in report["targets"]}
    assert by_name["selections/s sustained"]["value"] == report["selections"]["per_second"]
    assert by_name["stats events/s with dedup"]["value"] == report["stats"]["per_second"]
    p99 = by_name["p99 ms at 2,000/s"]
    assert p99["value"] == report["latency"]["p99_ms"]
    assert p99["met"] == (p99["value"] <= 20)
