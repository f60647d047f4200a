"""The live report's send-time section: a simulated send-time experiment's answers, sends
and clicks, as bytes through the report's column feed, give each account exactly the
`sendtime_results` of those messages; bad, error and other answers are counted; the
section shows in the tables, the JSON, the plots and the HTML."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml

from selector.live_join import JoinAccumulator
from selector.live_report import LiveReport, build_live_report
from selector.live_sections import Interval, Section
from selector.sendtime.scenario import sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate
from stream.report import format_tables, render_html, to_json, write_plots
from stream.report.raw import ColumnFeed
from stream.report.sendtime import SendTimeOptions, SendTimeTap, account_section
from stream.report.topics import opened
from stream.sendtime.live import messages_of_run, sendtime_results
from stream.wire.batches import MAX_ITEMS, event_batch
from stream.wire.checks import LIMITS
from stream.wire.messages import (
    ClickEvent,
    Message,
    SendEvent,
    SendTimeAnswer,
    SendTimeError,
    encode,
)

ROOT = Path(__file__).resolve().parents[3]
Messages = tuple[list[SendTimeAnswer], list[SendEvent], list[ClickEvent]]


@cache
def experiment(account: str = "acme") -> Messages:
    doc = yaml.safe_load((ROOT / "scenarios" / "sendtime_pitfall.yaml").read_text())
    doc["contacts"] = 400
    scenario = sendtime_scenario_from_dict(doc)
    answers: list[SendTimeAnswer] = []
    sends: list[SendEvent] = []
    clicks: list[ClickEvent] = []
    for run in (simulate(scenario), simulate(scenario, aligned=True)):
        a, s, c = messages_of_run(run, scenario, account)
        answers, sends, clicks = answers + a, sends + s, clicks + c
    return answers, sends, clicks


def tapped(
    answers: list[bytes | None],
    events: list[Message],
    tap: SendTimeTap,
) -> LiveReport:
    """The report's path without Kafka: answers first, then sends, then clicks, as bytes
    through the column feed."""
    tap.add_answers(answers)
    accumulator = JoinAccumulator()
    feed = ColumnFeed(accumulator, LIMITS, tap.add_columns)
    for kind in ("send", "click"):
        feed.add_kind(kind, [encode(m) for m in events if m.kind == kind])
        feed.close()
    return tap.apply(build_live_report(accumulator.finish()), {})


def expected(answers: list[SendTimeAnswer], sends: list[SendEvent], clicks: list[ClickEvent],
             account: str) -> Section:  # fmt: skip
    results = sendtime_results(answers, sends, clicks)
    section = account_section(account, answers, sends, clicks, SendTimeOptions())
    assert section is not None and results.reports[account].estimates
    estimates = results.reports[account].estimates
    assert section.intervals == tuple(Interval(e.method, e.lift, e.low, e.high) for e in estimates)
    return section


def test_the_section_is_sendtime_results_of_the_same_messages() -> None:
    answers, sends, clicks = experiment()
    stray = SendEvent("s-x", "acme", "news", "ct-x", "c1", 1.7e9, "no-such-request")
    bad = [b"\x00not json", b'{"schema": "send_time_response.v1"}']
    error = SendTimeError("r-e", "acme", "unknown_account", "no such account", 1.7e9)
    raws: list[bytes | None] = [*map(encode, answers), *bad, encode(error)]
    report = tapped(raws, [*sends, stray, *clicks], SendTimeTap())
    (other,) = report.other_accounts  # the experiment's sends answer no selection
    assert other.account_id == "acme" and not report.accounts
    (section,) = other.sections
    want = expected(answers, sends, clicks, "acme")
    assert section.intervals == want.intervals and section.rows == want.rows
    assert [i.name for i in section.intervals] == [
        "naive", "same_weekday", "weekly", "launch_alignment",
    ]  # fmt: skip
    assert section.counts == {**want.counts, "error answers": 1}
    assert section.counts["sends joined"] == len(sends)
    assert section.counts["answers"] == len(answers)
    assert report.records["send_time_response"] == len(raws)
    assert sum(report.undecodable["send_time_response"].values()) == 2
    assert report.unmatched["send_time_response"] == {"error_response": 1}


def test_accounts_and_the_range_filter_answers_and_sends() -> None:
    answers, sends, clicks = experiment()
    others = experiment("other")
    times = sorted(a.send_at for a in answers)
    since, until = times[len(times) // 4], times[3 * len(times) // 4]
    tap = SendTimeTap(frozenset({"acme"}), since, until)
    events: list[Message] = [*sends, *others[1], *clicks, *others[2]]
    report = tapped([encode(a) for a in [*answers, *others[0]]], events, tap)
    (section,) = report.other_accounts[0].sections
    kept = [a for a in answers if since <= a.send_at < until]
    ids = {a.request_id for a in kept}
    mine = [s for s in sends if s.request_id in ids and since <= s.time < until]
    named = {s.event_id for s in mine}
    want = expected(kept, mine, [c for c in clicks if c.send_event_id in named], "acme")
    assert [o.account_id for o in report.other_accounts] == ["acme"]
    assert section.intervals == want.intervals and section.counts == want.counts
    assert report.unmatched["send_time_response"] == {"other_account": len(others[0])}


def test_sends_and_clicks_in_batch_envelopes_join_too() -> None:
    answers, sends, clicks = experiment()
    tap = SendTimeTap()
    tap.add_answers(map(encode, answers))
    for kind, events in (("send", sends), ("click", clicks)):
        for start in range(0, len(events), MAX_ITEMS):
            raw = event_batch(kind, "acme", events[start : start + MAX_ITEMS])
            tap.add_messages(kind, opened(kind, raw, LIMITS))
    (section,) = tap.sections({})["acme"]
    assert section == expected(answers, sends, clicks, "acme")


def test_no_answers_no_section_and_no_extra_records() -> None:
    tap = SendTimeTap()
    report = tapped([], list(experiment()[1]), tap)
    assert not tap and report.other_accounts == () and "send_time_response" not in report.records


@pytest.fixture(scope="module")
def report() -> LiveReport:
    answers, sends, clicks = experiment()
    return tapped([*map(encode, answers), b"junk"], [*sends, *clicks], SendTimeTap())


def test_the_tables_show_the_section(report: LiveReport) -> None:
    text = format_tables(report)
    assert "acme: no reported selection sends" in text and "-- send-time results" in text
    assert "launch_alignment" in text and "sends joined" in text
    assert "undecodable send_time_response" in text


def test_the_json_carries_the_figures(report: LiveReport) -> None:
    data = json.loads(to_json(report))
    (other,) = data["other_accounts"]
    (section,) = other["sections"]
    assert section["key"] == "sendtime" and len(section["intervals"]) == 4
    lift = report.other_accounts[0].sections[0].intervals[0]
    assert section["intervals"][0] == {"name": "naive", "value": lift.value,
                                       "low": lift.low, "high": lift.high}  # fmt: skip
    assert section["counts"]["answers"] == len(experiment()[0])


def test_the_html_and_the_plots_have_the_section(report: LiveReport, tmp_path: Path) -> None:
    page = render_html(report)
    assert 'class="other-account" id="account-0" data-account="acme"' in page
    assert 'id="sendtime-table-0" class="sendtime-table"' in page
    assert 'data-plot="sendtime"' in page and 'class="sendtime-note"' in page
    (path,) = write_plots(report, tmp_path)
    assert path.name == "acme_sendtime.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_a_reported_account_gets_the_section_among_its_own() -> None:
    from tests.stream.report.test_sections import sectioned

    base = sectioned()
    answers, sends, clicks = experiment("a")
    tap = SendTimeTap()
    tap.add_answers(map(encode, answers))
    tap.add_messages("send", sends)
    tap.add_messages("click", clicks)
    account = tap.apply(base, {}).accounts[0]
    assert [s.key for s in account.sections] == ["model", "sendtime", "sendtime"]
    assert np.isfinite(account.sections[-1].intervals[0].value)
