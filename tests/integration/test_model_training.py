"""The contextual model end to end on real Kafka and Redis: a worker answers `model`
traffic with the Thompson fallback, folds the events into profiles, `creative-select
train`'s library reads the topics, promotes a first model and publishes it, and the
running worker loads it without a restart and scores with it (the version on each
response), preferring the creative that clicks most."""

from __future__ import annotations

import asyncio
import dataclasses
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

    # the next run: not due yet (a day's interval), nothing published
    again = await asyncio.to_thread(train_io.run, worker.settings, options)
    assert [(r.reason, r.current_version) for r in again.results] == [("not_due", 1)]
    forced = dataclasses.replace(options, force=True, report_only=True)
    third = await asyncio.to_thread(train_io.run, worker.settings, forced)
    assert third.results[0].version == 2 and third.published == 0
