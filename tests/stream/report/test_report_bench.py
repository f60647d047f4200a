"""`bench/report_bench.py`: its output's shape and arithmetic on a small workload.

No timing thresholds: speed is measured by running the benchmark, not by tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import report_bench, report_workload


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("bench") / "report.json"
    affinity = os.sched_getaffinity(0)
    assert report_bench.main(["--records", "30000", "--json", str(path)]) == 0
    assert os.sched_getaffinity(0) == affinity  # pinning is undone
    return dict(json.loads(path.read_text()))


def test_both_modes_read_every_generated_record(output: dict[str, Any]) -> None:
    w = report_workload.workload(30_000, 14)
    records = report_workload.records_of(w)
    total = sum(len(r) for r in records.values())
    assert 29_000 < total < 31_000
    assert [r["mode"] for r in output["results"]] == ["records", "raw"]
    for result in output["results"]:
        assert result["records"] == total
        assert result["seconds"] > 0 and result["cpu_seconds"] > 0
        assert result["records_per_second"] == pytest.approx(total / result["seconds"])
        assert result["accounts"] == report_workload.ACCOUNTS


def test_left_out_records_are_the_workloads_own(output: dict[str, Any]) -> None:
    decoded, raw = output["results"]
    assert decoded["undecodable"] == {}
    w = report_workload.workload(30_000, 14)
    originals = {
        "selection_response": w.sent.size,
        "send": int(w.sent.sum()),
        "click": int(w.clicked.sum()),
        "conversion": int(w.converted.sum()),
    }
    unmatched = decoded["unmatched"]
    assert unmatched["selection_response"]["no_send"] == int((~w.sent).sum())
    for kind, n in originals.items():
        assert unmatched[kind]["duplicate"] == n // 200  # the re-published copies
    total = sum(n + n // 200 for n in originals.values())
    cut = sum(sum(reasons.values()) for reasons in raw["undecodable"].values())
    assert 0.95 * (total // 500) <= cut <= total // 500  # a value may be cut twice
    assert 0 < decoded["reported_sends"] - raw["reported_sends"] <= cut


def test_the_table_names_modes_and_memory(output: dict[str, Any]) -> None:
    table = report_bench.format_table(output)
    assert "records" in table and "raw" in table and "peak RSS" in table
    assert json.loads(json.dumps(output))["target_seconds"] == 120.0


def test_quick_is_small() -> None:
    assert report_bench.QUICK["records"] < 1_000_000
    assert Path(report_bench.DEFAULT_JSON).name == "report.json"


def test_bench_report_runs_every_mode_and_raw_equals_codec(tmp_path: Path) -> None:
    from bench import cli

    path = tmp_path / "all.json"
    argv = ["report", "--records", "5000", "--mode", "all", "--no-pin", "--json", str(path)]
    assert cli.main(argv) == 0  # `python -m bench report ...`
    results = json.loads(path.read_text())["results"]
    assert [r["mode"] for r in results] == ["records", "raw", "codec"]
    raw, codec = results[1], results[2]
    for key in ("records", "undecodable", "unmatched", "reported_sends"):
        assert raw[key] == codec[key]
    assert all(len(r["load_average"]) == 2 for r in results)
    assert raw["decode_only_cpu_seconds"] > 0 and codec["decode_only_cpu_seconds"] > 0
