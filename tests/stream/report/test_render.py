"""Rendering the live report: tables, JSON, PNG files, a self-contained HTML page; and the
raw-bytes entry point with the real decoder."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from selector.live_report import LiveReport, ReportOptions, report_from_raw, report_from_records
from stream.report import format_tables, render_html, to_json, write_html, write_plots
from stream.report import render as render_module
from stream.report.plots import PLOTS
from stream.wire import codec
from stream.wire.messages import ClickEvent, SelectionResponse, SendEvent, encode
from tests.stream.report.demo_topics import click_payouts, product_run, simulated_topics

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report() -> LiveReport:
    scenario, result = product_run(sends=6000, seed=1)
    options = ReportOptions(
        click_payouts=click_payouts(scenario),
        automated_percent={scenario.account.account_id: {"spring-promo": 80.0}},
    )
    topics = simulated_topics(scenario, result)
    return report_from_records(topics, options, rng=np.random.default_rng(0))


def test_the_module_example_runs() -> None:
    assert doctest.testmod(render_module).failed == 0


def test_tables_show_headline_lift_methods_split_and_ope(report: LiveReport) -> None:
    text = format_tables(report)
    a = report.accounts[0]
    assert a.headline() in text
    assert "Lift, automated over control: click rate" in text
    assert "thompson_single_step" in text and "-- by creative" in text
    assert "spring-promo:" in text and "expected 80.0%" in text
    assert "-- off-policy: uniform" in text
    assert "Records read: selection_response 6,000, send 6,000" in text
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_json_is_strict_and_round_trips_the_figures(report: LiveReport) -> None:
    data = json.loads(to_json(report))
    a = report.accounts[0]
    assert data["accounts"][0]["rps_lift"]["lift"] == pytest.approx(a.rps_lift.lift)
    assert data["accounts"][0]["split"][0]["campaign_id"] == "spring-promo"
    assert data["records"]["send"] == 6000


def test_plots_are_png_files_named_by_account_and_plot(report: LiveReport, tmp_path: Path) -> None:
    paths = write_plots(report, tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted(f"acme-sms_{name}.png" for name in PLOTS)
    for path in paths:
        assert path.read_bytes().startswith(PNG)


def test_html_is_self_contained_with_hooks_for_every_table_and_plot(
    report: LiveReport, tmp_path: Path
) -> None:
    page = write_html(report, tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?:src|href)=\"(?!data:)", page)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    for css in ("lift-table", "method-table", "creative-table", "day-table", "split-table",
                "pool-table", "ope-table"):  # fmt: skip
        assert f'id="{css}-0" class="{css}"' in page
    images = re.findall(
        r'<img id="plot-0-(\w+)" class="plot" data-plot="\1"[^>]*src="data:image/png;base64,', page
    )
    assert images == list(PLOTS)


def test_ids_are_escaped_in_html(tmp_path: Path) -> None:
    name = '<script>alert("x")</script>'
    records: list[Any] = [
        SelectionResponse(
            "r1", "acct", "c", name, "automated", "random", "uniform", "none", 0.5, 1, 1e9
        ),
        SendEvent("s1", "acct", "c", "contact-1", name, 1e9, "r1"),
        ClickEvent("k1", "acct", "contact-1", name, 1e9 + 5, "s1"),
    ]
    page = render_html(report_from_records(records))
    assert name not in page and "&lt;script&gt;" in page


def test_an_empty_report_renders_everywhere(tmp_path: Path) -> None:
    empty = report_from_records([])
    assert "No reported sends." in format_tables(empty)
    assert "No reported sends." in render_html(empty)
    assert write_plots(empty, tmp_path) == []
    assert json.loads(to_json(empty))["accounts"] == []


def test_raw_messages_go_through_the_decoder_and_rejections_are_counted() -> None:
    response = SelectionResponse(
        "r1", "acct", "c", "x", "control", "default", "control", "none", 1.0, 1, 1e9
    )
    send = SendEvent("s1", "acct", "c", "contact-1", "x", 1e9, "r1")
    error = codec.error_response("r2", "acct", "unknown_campaign", "no such campaign", 1e9)
    items: list[tuple[Any, bytes | None]] = [
        ("selection_response", encode(response)),
        ("selection_response", error),
        ("send", encode(send)),
        ("send", b"{not json"),
        ("send", orjson.dumps({"schema": "send.v1"})),
        ("click", None),  # a tombstone
        ("conversion", encode(send)),  # a send on the conversions topic
    ]
    report = report_from_raw(items, codec.decode)
    assert report.undecodable == {
        "send": {"malformed_json": 1, "missing_field": 1},
        "click": {"malformed_json": 1},
        "conversion": {"schema_mismatch": 1},
    }
    assert report.unmatched == {"selection_response": {"error_response": 1}}
    assert report.records == {"selection_response": 2, "send": 3, "click": 1, "conversion": 1}
    assert report.accounts[0].sends == 1
