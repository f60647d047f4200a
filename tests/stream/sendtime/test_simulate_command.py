"""`python -m stream.sendtime.simulate` on a small scenario: table, JSON, PNGs, clear
errors, and a --help that says how to run it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.sendtime.simulate import main

ROOT = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_doc() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "scenarios" / "sendtime_pitfall.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["name"] = "small"
    doc["contacts"] = 300
    doc["campaigns"]["launches"] = 8
    return doc


def write(tmp_path: Path, doc: Any, name: str = "small.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
    return path


def test_writes_the_table_json_and_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, plots = tmp_path / "out" / "report.json", tmp_path / "plots"
    argv = [
        str(write(tmp_path, small_doc())),
        "--seed",
        "4",
        "--json",
        str(out),
        "--plots",
        str(plots),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "true uplift" in printed and "Naive comparison by campaign day" in printed
    report = json.loads(out.read_text())
    assert report["seed"] == 4 and report["scenario"] == "small"
    methods = [e["method"] for e in report["estimates"]]
    assert methods == ["naive", "same_weekday", "weekly", "launch_alignment"]
    assert all(
        {"lift", "low", "high", "truth", "contains_truth"} <= set(e) for e in report["estimates"]
    )
    assert len(report["per_launch"]) == 8
    written = sorted(p.name for p in plots.iterdir())
    assert written == ["estimates.png", "naive_by_day.png", "slot_share.png"]
    assert all((plots / name).read_bytes().startswith(PNG_MAGIC) for name in written)


def test_json_scenarios_are_read_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = small_doc()
    doc["campaigns"]["launches"] = 2
    assert main([str(write(tmp_path, doc, "small.json"))]) == 0
    assert "small" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["send_time"].update(slots=7), "send_time.slots"),
        (lambda d: d.update(kind="creative"), "kind"),
        (lambda d: d["routines"][0].update(share=0.9), "routines: shares must sum to 1"),
    ],
)
def test_a_bad_scenario_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, message: str
) -> None:
    doc = small_doc()
    edit(doc)
    assert main([str(write(tmp_path, doc))]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_and_unparsable_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    assert main([str(bad)]) == 2
    assert "not valid" in capsys.readouterr().err


def test_help_runs_as_a_module_and_shows_how() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stream.sendtime.simulate", "--help"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    assert "python -m stream.sendtime.simulate scenarios/sendtime_pitfall.yaml" in out
    assert "--plots DIR" in out and "--seed" in out and "--json" in out
