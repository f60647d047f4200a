"""Crash drill (not yet part of the suite): SIGKILL the worker three times while 50,000
events flow, 5% of them re-published event ids; after restart and catch-up the stats
must equal the ground truth exactly.

Status: it passed in one run and failed in two: once with a count difference, once
without catching up (committed offsets stopped short of the log end after the third
restart, which itself waited ~57 s per restart for the dead member's session timeout).
It stays out of the default collection (the file name does not start with `test_`)
until that is understood; run it by hand:

    python -m pytest tests/integration/crash_drill.py -s --basetemp=/tmp/drill
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.stats import AccountStats, Counts
from stream.client import SelectionClient
from stream.commands.publish_catalog import publish, validate_documents
from stream.ledger_codec import loads as load_ledger
from stream.messages import ClickEvent, ConversionEvent, SendEvent
from stream.settings import Settings
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNTS = [f"acct-{i}" for i in range(6)]
CREATIVES = [f"c{i}" for i in range(4)]
TOTAL = 50_000
DUPLICATE_SHARE = 0.05


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in CREATIVES],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


def known_stream(seed: int = 5) -> tuple[list[Any], dict[str, dict[str, Counts]]]:
    """50,000 events, 5% of them re-published copies of earlier event ids, and the truth."""
    rng = random.Random(seed)
    events: list[Any] = []
    unique: list[Any] = []
    while len(events) < TOTAL:
        if unique and rng.random() < DUPLICATE_SHARE:
            events.append(rng.choice(unique))
            continue
        n, account, creative = len(unique), rng.choice(ACCOUNTS), rng.choice(CREATIVES)
        roll = rng.random()
        if roll < 0.7:
            e: Any = SendEvent(f"e{n}", account, "k", f"p{n}", creative, 1000.0 + n)
        elif roll < 0.93:
            e = ClickEvent(f"e{n}", account, f"p{n}", creative, 1000.0 + n)
        else:
            e = ConversionEvent(
                f"e{n}", account, f"p{n}", creative, 1000.0 + n, round(rng.uniform(1, 90), 2)
            )
        unique.append(e)
        events.append(e)
    truth: dict[str, dict[str, Counts]] = {}
    for e in unique:
        kind = {SendEvent: "send", ClickEvent: "click", ConversionEvent: "conversion"}[type(e)]
        stats = AccountStats()
        delta = stats.apply(kind, e.creative_id, e.time, getattr(e, "revenue_micros", 0))
        row = truth.setdefault(e.account_id, {})
        row[e.creative_id] = row.get(e.creative_id, Counts()) + delta.creative(e.creative_id)
    return events, truth


async def streamed_stats(settings: Settings) -> dict[str, dict[str, Counts]]:
    """The last value per account in the stats table's changelog."""
    topic = f"{settings.app_id}-account-to-stats-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    latest[r.key] = r.value
    finally:
        await consumer.stop()
    return {k.decode(): dict(load_ledger(v).stats.counts) for k, v in latest.items()}


async def caught_up(settings: Settings, timeout: float) -> None:
    """Wait until the worker's group has committed the end of every event partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.topic(t), p)
            for t in ("sends", "clicks", "conversions")
            for p in range(settings.partitions)
        ]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = await consumer.end_offsets(partitions)
            committed = [await consumer.committed(tp) or 0 for tp in partitions]
            if all(c >= ends[tp] for c, tp in zip(committed, partitions, strict=True)):
                return
            await asyncio.sleep(1.0)
        raise TimeoutError("the worker did not catch up")
    finally:
        await consumer.stop()


@pytest.fixture
def worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, tmp_path / "state", CS_STATS_BATCH="500"),
        tmp_path / "worker.log",
    )
    process.start()
    yield process
    process.stop()


async def test_sigkill_during_ingestion_loses_and_doubles_nothing(worker: WorkerProcess) -> None:
    settings = worker.settings
    await publish(validate_documents([catalog(a) for a in ACCOUNTS], settings), settings)
    await worker.wait_for("creative_selection_catalog_updates_total", 4 * len(ACCOUNTS))
    events, truth = known_stream()
    started = time.monotonic()
    chunks = [events[i : i + 2500] for i in range(0, len(events), 2500)]
    kills = {5, 10, 15}
    async with SelectionClient(settings) as client:
        for index, chunk in enumerate(chunks):
            await client.publish_events(chunk)
            if index in kills:
                await asyncio.sleep(0.5)  # let the worker be mid-batch
                worker.kill()
                worker.start()
            await asyncio.sleep(0.1)
    published = time.monotonic()
    await caught_up(settings, timeout=240)
    print(f"published and killed 3 times in {published - started:.1f}s")
    print(f"caught up {time.monotonic() - published:.1f}s after the last event was published")
    await asyncio.sleep(2.0)  # the changelog write follows the batch it came from
    streamed = await streamed_stats(settings)
    differences = {
        (account, creative): (streamed.get(account, {}).get(creative), counts)
        for account, row in truth.items()
        for creative, counts in row.items()
        if streamed.get(account, {}).get(creative) != counts
    }
    assert differences == {}
    assert streamed == truth
