"""The send-time benchmark's report: its shape and arithmetic on a tiny run (speed is
measured by running the benchmark, never asserted in a test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sendtime_bench import BenchConfig, format_table, main, run

TINY = BenchConfig(batch_sizes=(40, 80), repeats=2, min_seconds=0.001, pin_cpu=None, contacts=600)


def test_a_tiny_run_reports_every_workload_per_wall_and_cpu_second() -> None:
    result = run(TINY)
    names = ["batch 40", "batch 80", "batch 40 triggered", "batch 40 +decode", "scalar"]
    assert list(result["rates"]) == names and list(result["cpu_rates"]) == names
    for rates in (result["rates"], result["cpu_rates"]):
        for rate in rates.values():
            assert len(rate["samples"]) == 2 and rate["min"] <= rate["median"] <= rate["max"]
    assert sum(result["sample_reasons"].values()) == 40
    assert result["prior"]["routines"] >= 1
    table = format_table(result)
    assert all(name in table for name in names) and "per CPU s" in table


def test_main_prints_the_table_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sendtime.json"
    argv = [
        "--quick",
        "--cpu",
        "-1",
        "--batch-sizes",
        "30",
        "--contacts",
        "500",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "sendtime" and result["config"]["batch_sizes"] == [30]
    assert result["config"]["repeats"] == 3
    assert "batch 30 +decode" in capsys.readouterr().out
