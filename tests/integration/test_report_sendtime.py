"""`creative-select report` with send-time answers on the topics: the pitfall scenario's
experiments published as send-time answers, sends and clicks (as
`python -m stream.sendtime.live_topics --publish` does), plus another account's answers
and an undecodable one; the report's send-time section for the account asked for is
exactly `sendtime_results` of the same messages, and the bad and other records are
counted by reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from selector.sendtime.scenario import sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate
from stream.adapters.kafka_config import client_config
from stream.report.sendtime import SendTimeOptions, account_section
from stream.sendtime.live import messages_of_run, sendtime_results
from stream.sendtime.live_topics import publish
from stream.settings import Settings
from stream.wire.messages import TOPICS, ClickEvent, Message, SendEvent, SendTimeAnswer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OTHERS = 25


def _messages() -> tuple[list[SendTimeAnswer], list[SendEvent], list[ClickEvent]]:
    doc = yaml.safe_load((ROOT / "scenarios" / "sendtime_pitfall.yaml").read_text())
    doc["contacts"] = 600
    scenario = sendtime_scenario_from_dict(doc)
    answers: list[SendTimeAnswer] = []
    sends: list[SendEvent] = []
    clicks: list[ClickEvent] = []
    for run in (simulate(scenario), simulate(scenario, aligned=True)):
        a, s, c = messages_of_run(run, scenario, "acme")
        answers, sends, clicks = answers + a, sends + s, clicks + c
    return answers, sends, clicks


@pytest.fixture(scope="module")
def published(kafka_bootstrap: str, tmp_path_factory: Any) -> tuple:
    out = tmp_path_factory.mktemp("report-sendtime")
    name = uuid.uuid4().hex[:8]
    env = {"CS_KAFKA_BOOTSTRAP": kafka_bootstrap, "CS_TOPIC_PREFIX": f"t{name}-",
           "CS_APP_ID": f"cs-{name}", "CS_PARTITIONS": "4"}  # fmt: skip
    settings = Settings.from_env(env)
    answers, sends, clicks = _messages()
    others = [replace(a, account_id="other", request_id=f"o-{a.request_id}") for a in answers]
    messages: list[Message] = [*answers, *others[:OTHERS], *sends, *clicks]
    assert asyncio.run(publish(settings, messages)) == len(messages)
    producer = Producer(client_config(settings))
    topic = settings.topic(TOPICS["send_time_response"])
    producer.produce(topic, b"\x00not json", b"acme", partition=0)
    assert producer.flush(30.0) == 0
    command = [
        *(sys.executable, "-m", "stream.cli", "report", "--no-progress", "--account", "acme"),
        *("--json", str(out / "report.json"), "--html", str(out / "report.html")),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    live = json.loads((out / "report.json").read_text())
    return (answers, sends, clicks), live, done.stdout, out


def test_the_section_is_sendtime_results_of_the_same_messages(published: tuple) -> None:
    (answers, sends, clicks), live, _, _ = published
    (other,) = live["other_accounts"]
    assert other["account_id"] == "acme"
    (section,) = other["sections"]
    estimates = sendtime_results(answers, sends, clicks).reports["acme"].estimates
    assert [i["name"] for i in section["intervals"]] == [e.method for e in estimates]
    got = [(i["value"], i["low"], i["high"]) for i in section["intervals"]]
    assert got == [(e.lift, e.low, e.high) for e in estimates]  # exactly
    want = account_section("acme", answers, sends, clicks, SendTimeOptions())
    assert want is not None
    assert section["counts"] == want.counts and section["counts"]["sends joined"] == len(sends)
    assert [tuple(r) for r in section["rows"]] == list(want.rows)


def test_bad_and_other_answers_are_counted_by_reason(published: tuple) -> None:
    (answers, _, _), live, stdout, _ = published
    assert live["records"]["send_time_response"] == len(answers) + OTHERS + 1
    assert sum(live["undecodable"]["send_time_response"].values()) == 1
    assert live["unmatched"]["send_time_response"] == {"other_account": OTHERS}
    assert "-- send-time results" in stdout and "undecodable send_time_response" in stdout


def test_the_html_page_has_the_section_and_its_plot(published: tuple) -> None:
    _, _, _, out = published
    page = (out / "report.html").read_text()
    assert 'id="sendtime-table-0" class="sendtime-table"' in page
    assert 'data-plot="sendtime"' in page and "data:image/png;base64," in page
