"""The contextual model end to end on real Kafka and Redis: a worker answers `model`
traffic with the Thompson fallback, folds the events into profiles, `creative-select
train`'s library reads the topics, promotes a first model and publishes it, and the
running worker loads it without a restart and scores with it (the version on each
response), preferring the creative that clicks most; `creative-select predict` and
`SelectionClient.predict` predict from that model and the stored profiles."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.job import train_io
from stream.job.train import TrainOptions
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent
from tests.integration.profile_truth import stored_profiles
from tests.integration.worker import WorkerProcess, worker_settings
from tests.selector.model.conftest import account_doc
from tests.stream.model_fixtures import MODEL_ONLY, world

pytestmark = pytest.mark.integration
ACCOUNT = "acct-model"
PREDICTION = (
    r"(deal|premium|basic): \d+\.\d% click \[\d+\.\d, \d+\.\d\], "
    r"\$\d+\.\d\d expected revenue \[\d+\.\d\d, \d+\.\d\d\]"
)


@pytest.fixture
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("model")
    env = worker_settings(kafka_bootstrap, redis_url, root / "state")
    env["CS_REDIS_KEY_PREFIX"] = env["CS_TOPIC_PREFIX"]
    process = WorkerProcess(env, root / "worker.log")
    process.start()
    doc = {**account_doc(**MODEL_ONLY, cooldown_seconds=0), "account_id": ACCOUNT}
    asyncio.run(publish(validate_documents([doc], process.settings), process.settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


def wire_events(start: float) -> list[Any]:
    """The model world's 6,000 sends (with their clicks and conversions) as messages,
    the last send an hour and a half before `start`... shifted to end before it."""
    events = world(6_000, 750, seed=3)
    shift = start - 3 * 3600 - max(e.time for e in events)
    out: list[Any] = []
    for e in events:
        t = e.time + shift
        if e.kind == "send":
            out.append(SendEvent(e.event_id, ACCOUNT, "camp", e.contact_id, e.creative_id, t))
        elif e.kind == "click":
            out.append(ClickEvent(e.event_id, ACCOUNT, e.contact_id, e.creative_id, t,
                                  send_event_id=e.send_event_id))  # fmt: skip
        else:
            out.append(ConversionEvent(e.event_id, ACCOUNT, e.contact_id, e.creative_id, t,
                                       20.0, send_event_id=e.send_event_id))  # fmt: skip
    return out


async def ask(worker: WorkerProcess, n: int, tag: str) -> list[Any]:
    async with SelectionClient(worker.settings, timeout=30) as client:
        return await client.select_many([(ACCOUNT, "camp", f"{tag}{i}", None) for i in range(n)])


async def test_train_publish_and_the_worker_scores_with_the_model(worker: WorkerProcess) -> None:
    before = await ask(worker, 100, "a")
    assert {(r.method, r.reason) for r in before} == {("model", "model_unavailable")}

    events = wire_events(time.time())
    async with SelectionClient(worker.settings) as client:
        await client.publish_events(events)
    await worker.wait_for("creative_selection_events_total", len(events), outcome="applied")
    # the profile fold's write may finish just after the events are counted
    deadline = time.monotonic() + 60.0
    profiles = await stored_profiles(worker.settings)
    while len(profiles) < 750 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        profiles = await stored_profiles(worker.settings)
    assert len(profiles) == 750  # every contact of the world has its profile

    options = TrainOptions(min_sends=1000, attribution_seconds=3600.0)
    started = time.perf_counter()
    run = await asyncio.to_thread(train_io.run, worker.settings, options)
    print(
        f"train: {run.events} events, read {run.read_seconds:.1f} s, trained "
        f"{run.train_seconds:.1f} s, {time.perf_counter() - started:.1f} s in all"
    )
    (result,) = run.results
    assert (result.reason, result.version, result.published, run.published) == (
        "first_model",
        1,
        True,
        1,
    )
    assert run.events == len(events)
    await worker.wait_for("creative_selection_models_in_use", 1)

    after = await ask(worker, 400, "b")
    assert all(isinstance(r, SelectionResponse) for r in after)
    assert {(r.method, r.reason, r.model_version) for r in after} == {("model", "none", 1)}
    share = Counter(r.creative_id for r in after)["deal"] / len(after)
    assert share > 0.6  # deal clicks 2.5 to 6 times as often as the others
    assert worker.metric("creative_selection_model_requests_total", source="model") == 400

    await predictions_of_the_promoted_model(worker)

    # the next run: not due yet (a day's interval), nothing published
    again = await asyncio.to_thread(train_io.run, worker.settings, options)
    assert [(r.reason, r.current_version) for r in again.results] == [("not_due", 1)]
    forced = dataclasses.replace(options, force=True, report_only=True)
    third = await asyncio.to_thread(train_io.run, worker.settings, forced)
    assert third.results[0].version == 2 and third.published == 0


async def predictions_of_the_promoted_model(worker: WorkerProcess) -> None:
    """`creative-select predict` and `SelectionClient.predict` read the promoted model
    and the stored profile: deal predicted best, and a contact without a profile said."""
    env = {**os.environ, **worker.env}
    cli = [sys.executable, "-m", "stream.cli", "predict", ACCOUNT]
    at = time.time()
    args = [*cli, "u7", "--seed", "1", "--at", repr(at)]
    text = subprocess.run(args, env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout.splitlines()  # fmt: skip
    assert text[0].startswith(f"{ACCOUNT} / u7: model v1 (trained ")
    assert text[1].startswith("profile: ") and " send" in text[1]
    assert text[2].startswith("deal: ") and len(text) == 5
    assert all(re.fullmatch(PREDICTION, line) for line in text[2:]), text
    new = subprocess.run([*cli, "nobody", "--json"], env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout  # fmt: skip
    plain = json.loads(new)
    assert (plain["profile"], plain["model_version"]) == ("none", 1)
    assert plain["predictions"][0]["creative_id"] == "deal"
    assert 0.15 < plain["predictions"][0]["click"] < 0.35  # deal clicks 25% of the time
    missing = subprocess.run([*cli[:-1], "acct-none", "u1"], env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1 and "has no catalog" in missing.stderr
    async with SelectionClient(worker.settings) as client:
        found = await client.predict(ACCOUNT, "u7", seed=1, at=at)
    assert found.profile == "stored" and found.rows[0].creative_id == "deal"
    assert found.text().splitlines()[2:] == text[2:]  # the same draws, the same lines
