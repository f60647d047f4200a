"""Batch envelopes on a real worker: a batched request stream (the client's default, with
bad items and a single-message sender mixed in) gets exactly one answer per request, and
batched events (with re-published event ids, some inside one batch) give exact stats."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from selector.stats import Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.kafka_config import kafka_config
from stream.client import SelectionClient
from stream.settings import Settings
from stream.wire.batches import open_responses
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent
from tests.integration.changelog import streamed_stats
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNTS = ["acct-a", "acct-b", "acct-c"]
CREATIVES = ["c0", "c1", "c2"]


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "settings": {"goal": "clicks", "cooldown_seconds": 3600},
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in CREATIVES],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("batches")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    settings = process.settings
    asyncio.run(publish(validate_documents([catalog(a) for a in ACCOUNTS], settings), settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4 * len(ACCOUNTS)))
    yield process
    process.stop()


async def answers_on(settings: Settings, expected: int, seconds: float) -> Counter[str]:
    """Request id -> answers seen on the responses topic (read from its beginning), until
    `expected` answers came and then `seconds` more without a new one."""
    topic = settings.topic("selection-responses")
    consumer = AIOKafkaConsumer(**kafka_config(settings), group_id=None)
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        quiet = 0.0
        async with asyncio.timeout(120):
            while sum(seen.values()) < expected or quiet < seconds:
                batches = await consumer.getmany(timeout_ms=250)
                quiet = 0.0 if batches else quiet + 0.25
                for records in batches.values():
                    for record in records:
                        answers = open_responses(record.value)
                        assert isinstance(answers, list), answers
                        seen.update(str(a.request_id) for a in answers)
    finally:
        await consumer.stop()
    return seen


async def test_a_batched_request_stream_gets_one_answer_per_request(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    calls = [(ACCOUNTS[i % 3], "k", f"contact-{i}") for i in range(3000)]
    async with SelectionClient(settings, timeout=60.0, batch_size=50) as batched:
        answers = await batched.select_many(calls)
    assert all(isinstance(a, SelectionResponse) for a in answers)
    assert len({a.request_id for a in answers}) == 3000  # type: ignore[union-attr]
    async with SelectionClient(settings, timeout=60.0, batch_size=1) as single:
        singles = await single.select_many(calls[:200])
    assert all(isinstance(a, SelectionResponse) for a in singles)
    # a hand-made batch with bad items: every item answered once, bad ones with a reason
    items = [
        {"request_id": "h0", "campaign_id": "k", "contact_id": "x0"},
        {"request_id": "h1", "campaign_id": "k"},
        {"request_id": "h2", "account_id": "acct-b", "campaign_id": "k", "contact_id": "x2"},
        {"request_id": "h3", "campaign_id": "nope", "contact_id": "x3"},
    ]
    doc = {"schema": "selection_request_batch.v1", "account_id": "acct-a", "requests": items}
    producer = AIOKafkaProducer(**kafka_config(settings))
    await producer.start()
    try:
        topic = settings.topic("selection-requests")
        await producer.send_and_wait(topic, orjson.dumps(doc), key=b"acct-a")
    finally:
        await producer.stop()
    seen = await answers_on(settings, 3000 + 200 + 4, seconds=3.0)
    assert len(seen) == 3204 and set(seen.values()) == {1}  # none twice, none missing
    assert {f"h{i}" for i in range(4)} <= set(seen)


def known_events(seed: int = 11) -> tuple[list[Any], dict[str, dict[str, Counts]]]:
    """6,000 events, 5% of them re-published copies, and the counts they must give."""
    rng = random.Random(seed)
    unique: list[Any] = []
    events: list[Any] = []
    truth: dict[str, dict[str, list[int]]] = {}
    while len(events) < 6000:
        if unique and rng.random() < 0.05:
            events.append(rng.choice(unique[-300:]))  # often in the same batch
            continue
        n, account, creative = len(unique), rng.choice(ACCOUNTS), rng.choice(CREATIVES)
        roll = rng.random()
        if roll < 0.7:
            e: Any = SendEvent(f"e{n}", account, "k", f"p{n}", creative, 1000.0 + n)
        elif roll < 0.93:
            e = ClickEvent(f"e{n}", account, f"p{n}", creative, 1000.0 + n)
        else:
            e = ConversionEvent(f"e{n}", account, f"p{n}", creative, 1000.0 + n, 12.5)
        unique.append(e)
        events.append(e)
        row = truth.setdefault(account, {}).setdefault(creative, [0, 0, 0])
        row[("send", "click", "conversion").index(e.kind)] += 1
    counts = {
        a: {c: Counts(sends=s, clicks=k, conversions=v) for c, (s, k, v) in row.items()}
        for a, row in truth.items()
    }
    return events, counts


async def test_batched_events_give_exact_stats(worker: WorkerProcess) -> None:
    events, truth = known_events()
    before = await asyncio.to_thread(worker.metric, "creative_selection_events_total")
    async with SelectionClient(worker.settings, batch_size=100) as client:
        for start in range(0, len(events), 1000):
            assert await client.publish_events(events[start : start + 1000], 100) == 1000
    await worker.wait_for("creative_selection_events_total", before + len(events))
    duplicates = await asyncio.to_thread(
        worker.metric, "creative_selection_events_total", outcome="duplicate"
    )
    assert duplicates == len(events) - sum(
        n.sends + n.clicks + n.conversions for row in truth.values() for n in row.values()
    )
    want = {
        a: {c: (n.sends, n.clicks, n.conversions) for c, n in row.items()}
        for a, row in truth.items()
    }
    got: dict[str, dict[str, tuple[int, int, int]]] = {}
    deadline = time.monotonic() + 90.0  # the table's changelog catches up with the counter
    while got != want and time.monotonic() < deadline:
        streamed = await streamed_stats(worker.settings)
        got = {
            a: {c: (n.sends, n.clicks, n.conversions) for c, n in streamed.get(a, {}).items()}
            for a in want
        }
        await asyncio.sleep(1.0)
    assert got == want
