"""The optional sections and the counterfactual's coverage in every rendering."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from selector.live_counterfactual import TimedSnapshots
from selector.live_ope import OpeOptions
from selector.live_report import LiveReport, report_from_records, with_sections
from selector.live_sections import sendtime_section
from stream.report import format_tables, render_html, to_json
from tests.selector.test_live_report import T0
from tests.selector.test_live_sections import model_log

ESTIMATE = SimpleNamespace(
    method="naive", strata=1, lift=0.12, low=0.02, high=0.22,
    optimized_rate=0.056, control_rate=0.05,
)  # fmt: skip


def sectioned() -> LiveReport:
    snapshots = TimedSnapshots((T0 + 2,), ("x",), np.array([[1.0]]))
    ope = OpeOptions(resamples=50, goals={"a": "clicks"}, timed={"a": snapshots})
    report = report_from_records(model_log(), rng=np.random.default_rng(0), ope=ope)
    section = sendtime_section([ESTIMATE], sends=4000)
    assert section is not None
    return with_sections(report, {"a": [section]})


def test_text_shows_the_sections_and_the_coverage() -> None:
    text = format_tables(sectioned())
    assert "-- model method" in text and "params versions seen: 7, 9, 12" in text
    assert "-- send-time results" in text and "+12.0%" in text
    assert "rows: 2 by snapshot, 0 by logged propensity; left out: no_snapshot 2" in text


def test_json_carries_the_sections_and_the_coverage() -> None:
    data = json.loads(to_json(sectioned()))
    account = data["accounts"][0]
    assert [s["key"] for s in account["sections"]] == ["model", "sendtime"]
    (timed,) = [v for v in account["ope"] if v["coverage"] is not None]
    assert timed["coverage"]["left_out"] == {"no_snapshot": 2}


def test_html_has_a_table_per_section_and_the_coverage_note() -> None:
    page = render_html(sectioned())
    assert 'id="model-table-0" class="model-table"' in page
    assert 'id="sendtime-table-0" class="sendtime-table"' in page
    assert 'class="sendtime-note"' in page and 'class="ope-coverage"' in page


def with_models() -> LiveReport:
    from selector.live_models import ModelLog
    from tests.selector.test_live_models import T0 as MODEL_T0
    from tests.selector.test_live_models import version

    log = ModelLog()
    for v in (1, 2, 3):
        log.add(b"a", version("a", v).to_bytes(), MODEL_T0 + v)
    log.add(b"a", b"\x00garbage", MODEL_T0)
    return log.apply(report_from_records(model_log()))


def test_text_shows_the_model_versions_their_metrics_and_the_bad_values() -> None:
    text = format_tables(with_models())
    assert "-- model versions and held-out metrics" in text
    assert "-- model feature importances (version 3, in use)" in text
    assert "creative=deal  41.0%" in text and "0.8765" in text
    assert "undecodable model: not_json 1" in text and "model 4" in text


def test_json_carries_the_published_metrics_as_values() -> None:
    from tests.selector.test_live_models import HELD, TOP

    data = json.loads(to_json(with_models()))
    metrics, top = data["accounts"][0]["sections"][1:]
    assert [v["holdout"] for v in metrics["data"]["versions"]] == [
        {**HELD, "auc": 0.7 + v / 100} for v in (1, 2, 3)
    ]
    assert top["data"] == {"version": 3, "importances": TOP}
    assert data["undecodable"]["model"] == {"not_json": 1}


def test_html_has_the_model_tables() -> None:
    page = render_html(with_models())
    assert 'id="model_metrics-table-0" class="model_metrics-table"' in page
    assert 'id="model_importances-table-0" class="model_importances-table"' in page
    assert "<th>NE</th>" in page and 'class="model_metrics-note"' in page
