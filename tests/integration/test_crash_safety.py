"""Crash safety: SIGKILL the worker three times while 50,000 events flow, 5% of them
re-published event ids; after restart and catch-up the stats equal the ground truth
exactly (nothing lost, nothing counted twice), and so does every contact profile in
Redis (1,800 contacts, about 28 events each: `tests.integration.profile_truth`).

Each kill lands while the worker is applying events: the test waits until the restarted
process has applied some of the stream before killing it, at a point drawn from a fixed
seed, so the kills fall between the Redis dedup write, the table write, the changelog
flush and the offset commit in different runs of the same code. The worker uses static
group membership, so a restart takes its partitions back without waiting out the dead
member's session.

By hand, other conditions: DRILL_INSTANCE= (empty: dynamic membership) with
DRILL_SESSION=10 and DRILL_RATE=1000 (the restarts then wait out the session), e.g.
    DRILL_INSTANCE= DRILL_SESSION=10 DRILL_RATE=1000 \
        python -m pytest tests/integration/test_crash_safety.py -s
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.stats import AccountStats, Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.handlers.stores import dedup_key
from stream.settings import Settings
from stream.wire.messages import ClickEvent, ConversionEvent, SendEvent
from tests.integration.changelog import applied_through, streamed_stats
from tests.integration.profile_truth import stored_profiles, true_profiles
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNTS = [f"acct-{i}" for i in range(6)]
CREATIVES = [f"c{i}" for i in range(4)]
TOTAL = 50_000
DUPLICATE_SHARE = 0.05
CONTACTS = 300  # per account: each contact's profile folds many events, settled and recent


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
        roll, contact = rng.random(), f"p{n % CONTACTS}"
        if roll < 0.7:
            e: Any = SendEvent(f"e{n}", account, "k", contact, creative, 1000.0 + n)
        elif roll < 0.93:
            e = ClickEvent(f"e{n}", account, contact, creative, 1000.0 + n)
        else:
            e = ConversionEvent(
                f"e{n}", account, contact, creative, 1000.0 + n, round(rng.uniform(1, 90), 2)
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


async def committed_offsets(settings: Settings) -> dict[str, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return {
            f"{t}:{p}": await consumer.committed(TopicPartition(settings.topic(t), p)) or 0
            for t in ("sends", "clicks", "conversions")
            for p in range(settings.partitions)
        }
    finally:
        await consumer.stop()


async def unapplied(settings: Settings) -> int:
    """Events published but not yet applied (or skipped) by the stats: per event partition,
    its end offset against the highest offset the changelog says was applied."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.topic(t), p)
            for t in ("sends", "clicks", "conversions")
            for p in range(settings.partitions)
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    applied = await applied_through(settings)
    return sum(
        max(0, ends[tp] - 1 - applied.get(f"{tp.topic}:{tp.partition}", -1)) for tp in partitions
    )


async def caught_up(settings: Settings, timeout: float) -> None:
    """Wait until the stats have applied (or skipped) the last event of every event
    partition: the changelog names, per partition, the highest offset applied."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await unapplied(settings) == 0:
            return
        await asyncio.sleep(1.0)
    raise TimeoutError("the worker did not catch up")


@pytest.fixture
def worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path / "state",
        CS_STATS_BATCH="500",
        CS_GROUP_INSTANCE_ID=os.environ.get("DRILL_INSTANCE", "drill-worker-0"),
        CS_SESSION_TIMEOUT_SECONDS=os.environ.get("DRILL_SESSION", "60"),
    )
    env["CS_REDIS_KEY_PREFIX"] = env["CS_TOPIC_PREFIX"]  # this test's profiles alone
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


PUBLISH_RATE = float(os.environ.get("DRILL_RATE", "2500"))  # events/s: flowing during all kills
KILLS = 3


async def publish_paced(client: SelectionClient, events: list[Any], rate: float) -> None:
    """Publish in chunks of 250 at `rate` events/s."""
    started = time.monotonic()
    for index in range(0, len(events), 250):
        await client.publish_events(events[index : index + 250], batch_size=1)
        ahead = (index + 250) / rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)


def applied(worker: WorkerProcess) -> float:
    """Events this worker process has applied or skipped (its counters start at zero)."""
    try:
        return worker.metric("creative_selection_events_total")
    except OSError:
        return 0.0


async def kill_while_applying(
    worker: WorkerProcess, kills: int, seed: int
) -> tuple[list[float], list[int]]:
    """SIGKILL the worker `kills` times, each after the restarted process has handled a
    random number of events; returns how many each killed process had handled, and how
    many published events each left unapplied (the kill's stream still had work)."""
    rng = random.Random(seed)
    handled, waiting = [], []
    for _ in range(kills):
        threshold = rng.randint(500, 4_000)
        deadline = time.monotonic() + 120
        while applied(worker) < threshold:
            assert time.monotonic() < deadline, "the worker stopped applying events"
            await asyncio.sleep(0.02)
        await asyncio.sleep(rng.uniform(0.0, 0.2))
        handled.append(applied(worker))
        worker.kill()
        waiting.append(await unapplied(worker.settings))  # nothing applies until restarted
        print("committed at kill:", await committed_offsets(worker.settings))
        worker.start()
    return handled, waiting


async def test_sigkill_during_ingestion_loses_and_doubles_nothing(worker: WorkerProcess) -> None:
    settings = worker.settings
    await publish(validate_documents([catalog(a) for a in ACCOUNTS], settings), settings)
    await worker.wait_for("creative_selection_catalog_updates_total", 4 * len(ACCOUNTS))
    events, truth = known_stream()
    started = time.monotonic()
    async with SelectionClient(settings) as client:
        flow = asyncio.create_task(publish_paced(client, events, PUBLISH_RATE))
        handled, waiting = await kill_while_applying(worker, KILLS, seed=11)
        # Every kill must land mid-stream: events published and not yet applied. (Whether
        # the publisher itself is still running depends on how fast restarts are here.)
        assert min(waiting) > 0, f"a kill found no events waiting: {waiting}"
        await flow
    published = time.monotonic()
    await caught_up(settings, timeout=240)
    print(
        f"killed after {handled} events, {waiting} waiting; published in {published - started:.1f}s"
    )
    print(f"caught up {time.monotonic() - published:.1f}s after the last event was published")
    streamed = await streamed_stats(settings)
    differences = {
        (account, creative): (streamed.get(account, {}).get(creative), counts)
        for account, row in truth.items()
        for creative, counts in row.items()
        if streamed.get(account, {}).get(creative) != counts
    }
    if differences:
        print(await explain(settings, events, differences))
    assert differences == {}
    assert streamed == truth
    profiles, expected = await stored_profiles(settings), await true_profiles(settings)
    wrong = sorted(pair for pair in expected if profiles.get(pair) != expected[pair])
    print(f"profiles: {len(profiles)} stored, {len(expected)} expected, {len(wrong)} differ")
    assert len(expected) == len(ACCOUNTS) * CONTACTS
    assert wrong == [] and profiles.keys() == expected.keys()


async def explain(settings: Settings, events: list[Any], differences: dict[Any, Any]) -> str:
    """For a failed run: where each affected event first sits in its topic, and what the
    Redis dedup record says about it."""
    import redis.asyncio as aioredis

    kinds = {SendEvent: "sends", ClickEvent: "clicks", ConversionEvent: "conversions"}
    wanted = {e.event_id for e in events if (e.account_id, e.creative_id) in differences}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    first: dict[str, list[str]] = {}
    try:
        tps = [
            TopicPartition(settings.topic(t), p)
            for t in kinds.values()
            for p in range(settings.partitions)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    body = orjson.loads(r.value)
                    for i, item in enumerate(body.get("events", [body])):  # a batch, or one
                        if item.get("event_id") in wanted:
                            at = f"{r.topic}:{r.partition}:{r.offset}" + (f"/{i}" if i else "")
                            first.setdefault(item["event_id"], []).append(at)
    finally:
        await consumer.stop()
    client = aioredis.Redis.from_url(settings.redis_url)
    lines = []
    for event_id, positions in sorted(first.items()):
        event = next(e for e in events if e.event_id == event_id)
        key = dedup_key(event.account_id, event.kind, event_id, settings.redis_key_prefix)
        stored = await client.get(key)
        if (stored or b"").decode() != positions[0]:  # never seen, or seen elsewhere first
            lines.append(f"{event_id}: in topics at {positions}, dedup record {stored!r}")
    await client.aclose()
    return "\n".join(lines) or "every affected event has one position and a matching record"
