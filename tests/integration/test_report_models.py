"""`creative-select report` with a trained model on the models topic: a first model
trained and published by `creative-select train`'s library from the model world's events
(as `test_model_training` does, without a worker), plus one undecodable value on the
models topic; the report's model sections carry exactly the published metrics, and the
bad value is counted by reason."""

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

import pytest
from confluent_kafka import Producer

from selector.model.artifact import ContextualModel
from stream.adapters.catalog_files import publish as publish_catalog
from stream.adapters.catalog_files import validate_documents
from stream.adapters.kafka_config import client_config
from stream.handlers.models import MODELS_TOPIC
from stream.job import train_io
from stream.job.train import TrainOptions
from stream.sendtime.live_topics import publish
from stream.settings import Settings
from tests.integration.test_model_training import ACCOUNT, wire_events
from tests.selector.model.conftest import account_doc
from tests.stream.model_fixtures import MODEL_ONLY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reported(kafka_bootstrap: str, tmp_path_factory: Any) -> tuple:
    out = tmp_path_factory.mktemp("report-models")
    name = uuid.uuid4().hex[:8]
    env = {"CS_KAFKA_BOOTSTRAP": kafka_bootstrap, "CS_TOPIC_PREFIX": f"t{name}-",
           "CS_APP_ID": f"cs-{name}", "CS_PARTITIONS": "4"}  # fmt: skip
    settings = Settings.from_env(env)
    events = wire_events(time.time())
    assert asyncio.run(publish(settings, events)) == len(events)  # creates the topics
    doc = {**account_doc(**MODEL_ONLY, cooldown_seconds=0), "account_id": ACCOUNT}
    asyncio.run(publish_catalog(validate_documents([doc], settings), settings))
    run = train_io.run(settings, TrainOptions(min_sends=1000, attribution_seconds=3600.0))
    assert [(r.reason, r.version, r.published) for r in run.results] == [("first_model", 1, True)]
    model = train_io.read_models(settings)[ACCOUNT]  # as published, read back
    producer = Producer(client_config(settings))
    producer.produce(settings.topic(MODELS_TOPIC), b"\x00not json", ACCOUNT.encode())
    assert producer.flush(30.0) == 0
    command = [
        *(sys.executable, "-m", "stream.cli", "report", "--no-progress", "--account", ACCOUNT),
        *("--json", str(out / "report.json"), "--html", str(out / "report.html")),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    live = json.loads((out / "report.json").read_text())
    return model, live, done.stdout, out


def _sections(live: dict[str, Any]) -> dict[str, Any]:
    (holder,) = [h for h in (*live["accounts"], *live["other_accounts"])]
    assert holder["account_id"] == ACCOUNT
    return {s["key"]: s for s in holder["sections"]}


def test_the_sections_carry_the_published_metrics_exactly(reported: tuple) -> None:
    model, live, _, _ = reported
    assert isinstance(model, ContextualModel) and model.version == 1
    sections = _sections(live)
    (row,) = sections["model_metrics"]["data"]["versions"]
    assert row["holdout"] == model.metrics["holdout"]  # exactly, as published
    assert {"log_loss", "normalized_entropy", "auc", "calibration"} <= set(row["holdout"])
    assert (row["version"], row["trained_at"], row["training_sends"]) == (
        1, model.trained_at, model.metrics["training_sends"],
    )  # fmt: skip
    assert (row["in_use"], row["in_range"]) == (True, False)  # no responses named it
    assert model.trained_at - 60 < row["record_time"] < time.time()
    top = sections["model_importances"]["data"]
    assert top == {"version": 1, "importances": model.metrics["importances"]}
    assert len(top["importances"]) > 0


def test_the_bad_model_value_is_counted_by_reason(reported: tuple) -> None:
    _, live, stdout, _ = reported
    assert live["records"]["model"] == 2
    assert live["undecodable"]["model"] == {"not_json": 1}
    assert "-- model versions and held-out metrics" in stdout
    assert "undecodable model: not_json 1" in stdout


def test_the_html_page_has_the_model_tables(reported: tuple) -> None:
    _, _, _, out = reported
    page = (out / "report.html").read_text()
    assert 'id="model_metrics-table-0" class="model_metrics-table"' in page
    assert 'class="model_importances-table"' in page
