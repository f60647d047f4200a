"""Send-time results from topic messages: a simulated experiment turned into the answers,
sends and clicks a live one leaves gives exactly the simulator's estimates; what does not
join is counted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from selector.sendtime.report import build_report
from selector.sendtime.scenario import sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate
from stream.sendtime.live import messages_of_run, sendtime_results
from stream.wire.messages import ClickEvent, SendEvent

ROOT = Path(__file__).resolve().parents[3]


def test_the_live_join_reproduces_the_simulators_estimates() -> None:
    doc = yaml.safe_load((ROOT / "scenarios" / "sendtime_pitfall.yaml").read_text())
    doc["contacts"] = 1500
    scenario = sendtime_scenario_from_dict(doc)
    standard, aligned = simulate(scenario), simulate(scenario, aligned=True)
    expected = build_report(standard, aligned, scenario.min_week_days)
    answers, sends, clicks = messages_of_run(standard, scenario, "acme")
    more = messages_of_run(aligned, scenario, "acme")
    stray_send = SendEvent("s-x", "acme", "news", "ct-x", "c1", 1.7e9, "no-such-request")
    stray_click = ClickEvent("k-x", "acme", "ct-x", "c1", 1.7e9, "no-such-send")
    results = sendtime_results(
        answers + more[0],
        [*sends, *more[1], stray_send],
        [*clicks, *more[2], stray_click],
        window_seconds=scenario.campaigns.outcome_window_hours * 3600.0,
        account_zone=scenario.settings.zone,
        min_week_days=scenario.min_week_days,
    )
    assert dict(results.unjoined) == {"send without an answer": 1, "click without a joined send": 1}
    report = results.reports["acme"]
    assert report.standard_sends == len(standard.outcomes)
    assert report.aligned_sends == len(aligned.outcomes)
    got = {e.method: e for e in report.estimates}
    for want in expected.estimates:
        e = got[want.method]
        assert (e.sends, e.strata) == (want.sends, want.strata), want.method
        for name in ("lift", "low", "high", "optimized_rate", "control_rate"):
            assert getattr(e, name) == pytest.approx(getattr(want, name), rel=1e-9), name
    assert [d.lift for d in report.per_launch] == pytest.approx(
        [d.lift for d in expected.per_launch], rel=1e-9
    )
    assert "launch_alignment" in report.format_table()
