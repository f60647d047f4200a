"""Custom fields end to end on real Kafka and Redis: an account declares them in its
settings, selection requests carry values through `SelectionClient`, the valid ones reach
the contact's profile in Redis (where the training job reads them), and a value that
does not fit is dropped with its reason in the response and the worker's metric."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from selector.model.examples import OutcomeEvent
from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.profile_store import stored_custom
from stream.client import SelectionClient
from stream.job import train_io
from stream.job.cut import read_catalog
from stream.wire.messages import SelectionResponse
from tests.integration.worker import WorkerProcess, worker_settings
from tests.selector.model.conftest import account_doc

pytestmark = pytest.mark.integration
ACCOUNT = "acct-custom"
FIELDS = [
    {"name": "plan", "type": "categorical", "values": ["free", "pro"]},
    {"name": "age", "type": "numeric", "min": 18, "max": 99},
]


@pytest.fixture
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("custom")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    methods = [{"method": "model", "traffic_pct": 100}]
    settings = {"methods": methods, "cooldown_seconds": 0, "custom_fields": FIELDS}
    doc = {**account_doc(**settings), "account_id": ACCOUNT}
    asyncio.run(publish(validate_documents([doc], process.settings), process.settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


async def test_custom_values_reach_the_profile_and_a_bad_one_gets_its_reason(
    worker: WorkerProcess, redis_url: str
) -> None:
    asks: list[Any] = [(ACCOUNT, "camp", f"u{i}", None, {"plan": "pro", "age": 20 + i})
                       for i in range(20)]  # fmt: skip
    asks.append((ACCOUNT, "camp", "u-bad", None, {"plan": "gold", "age": 30, "shoe": 44}))
    async with SelectionClient(worker.settings, timeout=30) as client:
        answers = await client.select_many(asks)
        single = await client.select(ACCOUNT, "camp", "u-one", custom={"age": 120})
    assert all(isinstance(a, SelectionResponse) for a in [*answers, single])
    assert all(a.custom_dropped is None for a in answers[:20])  # type: ignore[union-attr]
    assert answers[20].custom_dropped == (  # type: ignore[union-attr]
        {"field": "plan", "reason": "unknown_category"},
        {"field": "shoe", "reason": "unknown_field"},
    )
    assert single.custom_dropped == ({"field": "age", "reason": "out_of_bounds"},)  # type: ignore[union-attr]

    client_ = aioredis.from_url(redis_url)
    try:
        pairs = [(ACCOUNT, f"u{i}") for i in range(20)] + [(ACCOUNT, "u-bad"), (ACCOUNT, "u-one")]
        stored = await stored_custom(client_, worker.settings.redis_key_prefix, pairs)
    finally:
        await client_.aclose()
    assert stored == {
        **{(ACCOUNT, f"u{i}"): (1.0, 20.0 + i) for i in range(20)},
        (ACCOUNT, "u-bad"): (None, 30.0),  # the value that fit is kept
    }
    metric = worker.metric
    assert metric("creative_selection_custom_values_total", outcome="stored") == 41
    assert metric("creative_selection_custom_values_total", outcome="unknown_category") == 1
    assert metric("creative_selection_custom_values_total", outcome="unknown_field") == 1
    assert metric("creative_selection_custom_values_total", outcome="out_of_bounds") == 1

    # the training job reads them for the account's contacts
    catalogs = await asyncio.to_thread(read_catalog, worker.settings, time.time())
    events = {ACCOUNT: [OutcomeEvent("send", "s1", "u3", "deal", 1.0),
                        OutcomeEvent("send", "s2", "u-none", "deal", 2.0)]}  # fmt: skip
    custom = await asyncio.to_thread(train_io.read_custom, worker.settings, catalogs, events)
    assert custom == {ACCOUNT: {"u3": (1.0, 23.0)}}
