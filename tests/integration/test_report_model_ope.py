"""`creative-select report`'s counterfactual "all automated traffic to the model method"
on a real broker: a model trained and published by `creative-select train`'s library
from the model world's events (as `test_report_models` does), then uniform automated
decisions with their sends, most after the model's record time (covered, their profiles
rebuilt from the event topics) and some before it (left out as `no_model`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.adapters.catalog_files import publish as publish_catalog
from stream.adapters.catalog_files import validate_documents
from stream.job import train_io
from stream.job.train import TrainOptions
from stream.sendtime.live_topics import publish
from stream.settings import Settings
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent
from tests.integration.test_model_training import ACCOUNT, wire_events
from tests.selector.model.conftest import CREATIVES, account_doc
from tests.stream.model_fixtures import MODEL_ONLY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
AFTER, BEFORE = 1500, 25  # decisions after and before the model's record time
POLICY = "model (versions)"


def decisions(rng: np.random.Generator, n: int, start: float, tag: str) -> list[Any]:
    """`n` uniform automated decisions from `start` on, each with its send (to a contact
    of the training world, so with a history), a click at the creative's rate (deal's
    25%, premium's 4%, basic's 10%) and a conversion of 20 for 30% of the clicks."""
    out: list[Any] = []
    for i in range(n):
        k, contact, t = int(rng.integers(3)), f"u{int(rng.integers(750))}", start + 0.01 * i
        creative, request, send = CREATIVES[k], f"{tag}r{i}", f"{tag}s{i}"
        out.append(SelectionResponse(request, ACCOUNT, "camp", creative, "automated", "random",
                                     "uniform", "none", 1 / 3, 1, t))  # fmt: skip
        out.append(SendEvent(send, ACCOUNT, "camp", contact, creative, t + 0.001, request))
        if rng.random() < (0.25, 0.04, 0.10)[k]:
            out.append(ClickEvent(f"{tag}k{i}", ACCOUNT, contact, creative, t + 1.0, send))
            if rng.random() < 0.3:
                out.append(ConversionEvent(f"{tag}v{i}", ACCOUNT, contact, creative, t + 2.0,
                                           20.0, send_event_id=send))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def reported(kafka_bootstrap: str, tmp_path_factory: Any) -> tuple:
    out = tmp_path_factory.mktemp("report-model-ope")
    name = uuid.uuid4().hex[:8]
    env = {"CS_KAFKA_BOOTSTRAP": kafka_bootstrap, "CS_TOPIC_PREFIX": f"t{name}-",
           "CS_APP_ID": f"cs-{name}", "CS_PARTITIONS": "4"}  # fmt: skip
    settings = Settings.from_env(env)
    events = wire_events(time.time())
    rng = np.random.default_rng(7)
    early = decisions(rng, BEFORE, time.time() - 1800.0, "b")
    assert asyncio.run(publish(settings, [*events, *early])) == len(events) + len(early)
    doc = {**account_doc(**MODEL_ONLY, cooldown_seconds=0), "account_id": ACCOUNT}
    asyncio.run(publish_catalog(validate_documents([doc], settings), settings))
    run = train_io.run(settings, TrainOptions(min_sends=1000, attribution_seconds=3600.0))
    assert [(r.reason, r.published) for r in run.results] == [("first_model", True)]
    late = decisions(rng, AFTER, time.time() + 2.0, "a")
    assert asyncio.run(publish(settings, late)) == len(late)
    command = [
        *(sys.executable, "-m", "stream.cli", "report", "--no-progress", "--account", ACCOUNT),
        *("--seed", "4", "--json", str(out / "report.json"), "--html", str(out / "report.html")),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    return json.loads((out / "report.json").read_text()), done.stdout, out


def _value(live: dict[str, Any], policy: str = POLICY) -> dict[str, Any]:
    (account,) = live["accounts"]
    assert account["account_id"] == ACCOUNT
    (value,) = [v for v in account["ope"] if v["policy"] == policy]
    return value


def test_the_model_counterfactual_covers_the_rows_after_the_model(reported: tuple) -> None:
    live, _, _ = reported
    value = _value(live)
    cover = value["coverage"]
    assert cover["by_snapshot"] == AFTER and cover["source"] == "model version"
    assert cover["left_out"] == {"no_model": BEFORE} and cover["sampled_from"] == 0
    assert value["unsupported_mass"] == 0.0
    for name in ("ips", "snips", "dr"):
        e = value["estimates"][name]
        assert e["rows"] == AFTER and e["low"] <= e["value"] <= e["high"]
        assert 0.0 < e["effective_sample_size"] <= AFTER


def test_the_model_is_valued_as_sending_deal(reported: tuple) -> None:
    """The model learned that deal earns most (25% x 30% x 20 = 1.5 per send), so its
    estimate covers that and beats the uniform policy's (0.78 per send)."""
    live, _, _ = reported
    model, uniform = _value(live)["estimates"]["snips"], _value(live, "uniform")["estimates"]
    assert model["low"] <= 1.5 <= model["high"]
    assert model["value"] > uniform["snips"]["value"]


def test_the_terminal_and_html_show_it_beside_thompson(reported: tuple) -> None:
    _, stdout, out = reported
    assert f"-- off-policy: {POLICY}" in stdout
    assert f"rows: {AFTER:,} by model version; left out: no_model {BEFORE}" in stdout
    assert "-- off-policy: thompson_single_step (snapshots)" in stdout
    page = (out / "report.html").read_text()
    assert f"{POLICY}: rows: {AFTER:,} by model version" in page
