"""`simulate` end to end on a tiny scenario: table, JSON, PNGs, and clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.cli import main
from stream.commands.simulate import register

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "tiny",
        "settings": {"learning_threshold": 100, "cooldown_seconds": 3600,
                     "half_life_seconds": 43200},
        "campaign": {"campaign_id": "spring", "default_creative_id": "a"},
        "offers": [{"offer_id": "o1", "payout": 20}],
        "creatives": [
            {"creative_id": "a", "offer_id": "o1", "click_rate": 0.08, "conversion_rate": 0.2},
            {"creative_id": "b", "offer_id": "o1", "click_rate": 0.16, "conversion_rate": 0.2},
        ],
        "contacts": 500,
        "horizon": {"sends": 6000, "sends_per_day": 3000},
        "feedback_delay_seconds": 600,
        "batch_size": 200,
    }  # fmt: skip
    doc.update(overrides)
    return doc


def write(tmp_path: Path, doc: Any, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
    return path


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="creative-select")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *argv])
    return int(args.func(args))


def test_writes_the_table_json_and_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, plots = tmp_path / "out" / "report.json", tmp_path / "plots"
    assert run(str(write(tmp_path, tiny_doc())), "--seed", "3", "--json", str(out),
               "--plots", str(plots)) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Automated" in printed and "Control" in printed and "lift" in printed
    report = json.loads(out.read_text())
    for key in ("rps_lift", "click_lift"):
        assert {"lift", "low", "high", "excludes_zero", "treatment", "control"} <= set(report[key])
    assert report["seed"] == 3 and report["scenario"] == "tiny"
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["creative_share.png", "regret.png", "rps_by_arm.png"]
    for png in plots.iterdir():
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_compare_forgetting_runs_both_and_reports_both_regrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    path = write(tmp_path, tiny_doc(), "tiny.json")
    assert run(str(path), "--compare-forgetting", "--json", str(out)) == 0
    assert "Regret with forgetting (half-life 12 h)" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["without_forgetting"]["regret"] >= 0
    assert report["regret"] >= 0


def test_compare_forgetting_needs_a_half_life(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, tiny_doc(settings={}))
    assert run(str(path), "--compare-forgetting") == 2
    assert "settings.half_life_seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the scenario"),
        ("offers: [unclosed", "not valid YAML"),
        (tiny_doc(creatives=[{"creative_id": "a", "offer_id": "o1", "click_rate": 2,
                              "conversion_rate": 0.1}]), "creatives[0].click_rate"),
        (tiny_doc(horizon={"sends_per_day": 10}), "horizon: "),
        (tiny_doc(campaign={"campaign_id": "s", "default_creative_id": "zz"}),
         "campaign s.default_creative_id"),
        (tiny_doc(contacts=10), "contacts: must be >= batch_size"),
    ],
    ids=["missing file", "bad yaml", "schema", "horizon", "catalog", "semantic"],
)  # fmt: skip
def test_bad_input_fails_with_a_message_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        write(tmp_path, content, "bad.yaml")
    assert run(str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("--help")
    text = capsys.readouterr().out
    assert "creative-select simulate scenarios/product.yaml" in text
    assert "--compare-forgetting" in text


@pytest.mark.slow
def test_a_send_time_scenario_runs_through_the_same_command(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "sendtime.json"
    code = main(["simulate", str(root / "scenarios" / "sendtime_pitfall.yaml"), "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report and isinstance(report, dict)
