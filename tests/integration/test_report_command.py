"""`creative-select report` on a demo's topics: the demo's own lift figures, from the
topics alone, and bad records counted by reason.

The demo runs in this process on the session's Kafka and Redis (its topics get a prefix
of their own and stay after it); then the report command runs in a subprocess with the
demo worker's settings, after a garbage click and a send of the wrong schema were
written to the same topics.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream.adapters.kafka_config import client_config
from stream.commands.simulate import load_scenario
from stream.demo.run import run_demo
from stream.local.harness import services
from stream.settings import Settings
from stream.wire.messages import TOPICS

pytestmark = pytest.mark.integration

SENDS = 2000
ROOT = Path(__file__).resolve().parents[2]


def _write_garbage(settings: Settings) -> None:
    producer = Producer(client_config(settings))
    producer.produce(settings.topic(TOPICS["click"]), b"\x00not json", b"acct", partition=0)
    wrong = json.dumps({"schema": "click.v1"}).encode()
    producer.produce(settings.topic(TOPICS["send"]), wrong, b"acct", partition=1)
    assert producer.flush(30.0) == 0


@pytest.fixture(scope="module")
def demo_and_report(kafka_bootstrap: str, redis_url: str, tmp_path_factory: Any) -> tuple:
    out = tmp_path_factory.mktemp("report")
    scenario = load_scenario(ROOT / "scenarios" / "product.yaml")
    with services(kafka_bootstrap, redis_url) as found:
        outcome = asyncio.run(run_demo(scenario, found, sends=SENDS, seed=3))
        env = dict(found.worker.env)
    _write_garbage(Settings.from_env(env))
    command = [
        *(sys.executable, "-m", "stream.cli", "report", "--no-progress"),
        *("--json", str(out / "report.json"), "--html", str(out / "report.html")),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    live = json.loads((out / "report.json").read_text())
    return outcome.report, live, done.stdout, out


def test_the_lifts_are_the_demos_own(demo_and_report: tuple) -> None:
    demo, live, _, _ = demo_and_report
    (account,) = live["accounts"]
    assert account["sends"] == SENDS
    for key in ("click_lift", "rps_lift"):
        mine, theirs = account[key], getattr(demo, key)
        assert mine["treatment"] == theirs.treatment and mine["control"] == theirs.control
        assert mine["lift"] == theirs.lift
        # the same interval, its sums taken in another order: equal to the last few bits
        assert (mine["low"], mine["high"]) == pytest.approx((theirs.low, theirs.high), rel=1e-12)


def test_the_bad_records_are_counted_by_reason(demo_and_report: tuple) -> None:
    _, live, stdout, _ = demo_and_report
    assert sum(live["undecodable"]["click"].values()) == 1
    assert live["undecodable"]["send"] == {"schema_mismatch": 1}
    assert "schema_mismatch" in stdout


def test_the_tables_and_the_html_page_are_written(demo_and_report: tuple) -> None:
    demo, _, stdout, out = demo_and_report
    assert demo.headline() in stdout
    page = (out / "report.html").read_text()
    assert 'id="lift-table-0"' in page and 'id="method-table-0"' in page
    assert "data:image/png;base64," in page
