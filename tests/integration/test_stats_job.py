"""The daily job on real Kafka and Redis, with a real worker and traffic that keeps flowing:
it finds the events the stream lost, corrects them exactly, survives being killed, and
publishes a parameter snapshot that matches the schema and the streamed counts."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.stats import AccountStats, Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.handlers.stores import dedup_key
from stream.settings import Settings
from stream.wire.messages import ClickEvent, ConversionEvent, SendEvent
from tests.integration.changelog import streamed_stats
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

CREATIVES = [f"c{i}" for i in range(4)]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
Event = SendEvent | ClickEvent | ConversionEvent
KIND = {SendEvent: "send", ClickEvent: "click", ConversionEvent: "conversion"}
Truth = dict[str, dict[str, Counts]]


def catalog(account: str, half_life: float | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"prior": {"alpha": 1, "beta": 2}}
    if half_life is not None:
        settings["half_life_seconds"] = half_life
    return {
        "account_id": account,
        "settings": settings,
        "offers": [{"offer_id": "o1", "payout": 30}, {"offer_id": "o2", "payout": 5}],
        "creatives": [
            {"creative_id": c, "offer_id": "o1" if c < "c2" else "o2"} for c in CREATIVES
        ],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


def known_stream(accounts: Sequence[str], total: int, seed: int) -> tuple[list[Event], list[Event]]:
    """`total` events, 5% of them re-published copies of earlier ones, and the unique ones.
    Some clicks reuse a send's event_id: with the kind in the dedup key both count."""
    rng = random.Random(seed)
    events: list[Event] = []
    unique: list[Event] = []
    while len(events) < total:
        if unique and rng.random() < 0.05:
            events.append(rng.choice(unique))
            continue
        n, account, creative = len(unique), rng.choice(accounts), rng.choice(CREATIVES)
        roll, t = rng.random(), 1_700_000_000.0 + n
        if roll < 0.7:
            e: Event = SendEvent(f"e{n}", account, "k", f"p{n}", creative, t)
        elif roll < 0.93:
            e = ClickEvent(f"e{n - 1 if roll < 0.75 else n}", account, f"p{n}", creative, t)
        else:
            e = ConversionEvent(
                f"e{n}", account, f"p{n}", creative, t, round(rng.uniform(1, 90), 2)
            )
        if any(KIND[type(u)] == KIND[type(e)] and u.event_id == e.event_id for u in unique[-2:]):
            continue
        unique.append(e)
        events.append(e)
    return events, unique


def truth_of(unique: Sequence[Event]) -> Truth:
    truth: Truth = {}
    for e in unique:
        one = AccountStats().apply(
            KIND[type(e)], e.creative_id, e.time, getattr(e, "revenue_micros", 0)
        )
        row = truth.setdefault(e.account_id, {})
        row[e.creative_id] = row.get(e.creative_id, Counts()) + one.creative(e.creative_id)
    return truth


async def caught_up(settings: Settings, timeout: float = 120.0) -> None:
    """Until the worker's group has committed the end of every event and corrections
    partition, and the changelog write of the last batch has landed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        names = ("sends", "clicks", "conversions", "stats-corrections")
        tps = [
            TopicPartition(settings.topic(t), p) for t in names for p in range(settings.partitions)
        ]
        deadline = time.monotonic() + timeout
        while True:
            ends = await consumer.end_offsets(tps)
            done = [await consumer.committed(tp) or 0 for tp in tps]
            if all(c >= ends[tp] for c, tp in zip(done, tps, strict=True)):
                break
            assert time.monotonic() < deadline, "the worker did not catch up"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    await asyncio.sleep(2.0)


def run_job(
    env: dict[str, str], *args: str, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "stats-job", "--no-progress", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def report(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@pytest.fixture
def worker(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = worker_settings(kafka_bootstrap, redis_url, tmp_path / "state", CS_STATS_BATCH="500")
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


async def setup_accounts(worker: WorkerProcess, accounts: Sequence[str]) -> None:
    documents = [catalog(a, half_life=86_400.0 if i == 0 else None) for i, a in enumerate(accounts)]
    await publish(validate_documents(documents, worker.settings), worker.settings)
    await worker.wait_for("creative_selection_catalog_updates_total", 4 * len(accounts))


def hide_from_stream(redis_url: str, events: Sequence[Event], settings: Settings) -> None:
    """Mark events as seen at another position: the agent drops them as duplicates. The
    partitions' marks say Redis holds their records, so the agent trusts these (without
    them it would take the records for a store that lost its data, and refill them)."""
    client = redis.Redis.from_url(redis_url)
    for t in ("sends", "clicks", "conversions"):
        for p in range(settings.partitions):
            client.set(f"{settings.redis_key_prefix}dd-mark:{settings.topic(t)}:{p}", "1")
    for e in events:
        key = dedup_key(e.account_id, KIND[type(e)], e.event_id, settings.redis_key_prefix)
        client.set(key, "elsewhere:0:0", ex=3600)
    client.close()


async def publish_slowly(
    settings: Settings, events: Sequence[Event], chunk: int = 50, times: list[float] | None = None
) -> None:
    async with SelectionClient(settings) as client:
        for i in range(0, len(events), chunk):
            await client.publish_events(events[i : i + chunk], batch_size=1)
            if times is not None:
                times.append(time.monotonic())
            await asyncio.sleep(0.1)


async def test_the_job_restores_lost_events_exactly_while_traffic_flows(
    worker: WorkerProcess, redis_url: str, tmp_path: Path
) -> None:
    settings = worker.settings
    accounts = [f"acct-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    await setup_accounts(worker, accounts)
    events, unique = known_stream(accounts, 8000, seed=11)
    first, later = events[:5000], events[5000:]
    in_first = {id(e) for e in first}
    lost = [e for e in random.Random(3).sample(unique, 400) if id(e) in in_first]
    lost = [e for e in lost if sum(x is e for x in first) == 1 and not any(x is e for x in later)]
    hide_from_stream(redis_url, lost, settings)
    await publish_slowly(settings, first, chunk=1000)
    await caught_up(settings)
    truth = truth_of(unique)
    assert await streamed_stats(settings) != truth  # the stream did lose them

    sent_at: list[float] = []
    traffic = asyncio.create_task(publish_slowly(settings, later, times=sent_at))
    started = time.monotonic()
    job = await asyncio.to_thread(run_job, worker.env, "--json", str(tmp_path / "run1.json"))
    ended = time.monotonic()
    assert job.returncode == 0, job.stderr
    await traffic
    assert sum(started < t < ended for t in sent_at) >= 3, "traffic flows while the job runs"
    first_run = report(tmp_path / "run1.json")
    lost_by_kind = {
        k: sum(KIND[type(e)] == k for e in lost) for k in ("send", "click", "conversion")
    }
    assert first_run["drift_events"] == lost_by_kind
    assert first_run["corrections"] == len({e.account_id for e in lost})

    await caught_up(settings)
    assert await streamed_stats(settings) == truth
    assert (
        worker.metric("creative_selection_corrections_total", outcome="applied")
        == first_run["corrections"]
    )

    again = run_job(worker.env, "--report-only", "--json", str(tmp_path / "run2.json"))
    assert again.returncode == 0, again.stderr
    second_run = report(tmp_path / "run2.json")
    assert second_run["drifting_creatives"] == 0 and second_run["corrections"] == 0
    assert second_run["accounts"] == len(accounts)
    assert sum(n for k, n in second_run["records"].items() if k.endswith(":counted")) == len(unique)
    await check_snapshot(settings, redis_url, accounts, truth)
    on_demand = run_job(worker.env, "--snapshot-only")
    assert on_demand.returncode == 0, on_demand.stderr
    assert f"published the parameters of {len(accounts)} account(s)" in on_demand.stdout


async def check_snapshot(
    settings: Settings, redis_url: str, accounts: Sequence[str], truth: Truth
) -> None:
    schema = json.loads((SCHEMAS / "params_snapshot.v1.schema.json").read_text())
    client = redis.Redis.from_url(redis_url)
    for account in accounts:
        doc = json.loads(client.get(f"{settings.redis_key_prefix}params:{account}") or b"null")
        jsonschema.Draft202012Validator(schema).validate(doc)
        for cid, counts in truth[account].items():
            row = doc["creatives"][cid]
            assert (row["sends"], row["clicks"], row["conversions"]) == (
                counts.sends,
                counts.clicks,
                counts.conversions,
            )
            if account != accounts[0]:  # no forgetting: alpha = prior + clicks
                assert row["ctr_alpha"] == 1 + counts.clicks
    client.close()
    on_topic = await latest_on_topic(settings, settings.topic("thompson-params"))
    assert set(accounts) <= set(on_topic)
    for account in accounts:
        jsonschema.Draft202012Validator(schema).validate(on_topic[account])


async def latest_on_topic(settings: Settings, topic: str) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[str, Any] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    latest[r.key.decode()] = json.loads(r.value)
    finally:
        await consumer.stop()
    return latest


async def corrections_published(settings: Settings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [
            TopicPartition(settings.topic("stats-corrections"), p)
            for p in range(settings.partitions)
        ]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def test_a_job_killed_after_publishing_corrections_still_converges_exactly(
    worker: WorkerProcess, redis_url: str, tmp_path: Path
) -> None:
    settings = worker.settings
    accounts = [f"acct-{uuid.uuid4().hex[:6]}-{i}" for i in range(12)]
    await setup_accounts(worker, accounts)
    events, unique = known_stream(accounts, 6000, seed=23)
    lost = [e for e in unique[:3000] if sum(x is e for x in events) == 1][::10]
    hide_from_stream(redis_url, lost, settings)
    await publish_slowly(settings, events, chunk=1000)
    await caught_up(settings)
    truth = truth_of(unique)

    job = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "stats-job", "--no-progress"],
        env={**os.environ, **worker.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while await corrections_published(settings) == 0:
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    killed_after = await corrections_published(settings)
    assert killed_after >= 1

    # No waiting for the worker here: the next run must itself wait for the corrections.
    rerun = run_job(worker.env, "--json", str(tmp_path / "rerun.json"))
    assert rerun.returncode == 0, rerun.stderr
    await caught_up(settings)
    assert await streamed_stats(settings) == truth
    final = run_job(worker.env, "--report-only", "--json", str(tmp_path / "final.json"))
    assert final.returncode == 0, final.stderr
    assert report(tmp_path / "final.json")["drifting_creatives"] == 0
    applied = worker.metric("creative_selection_corrections_total", outcome="applied")
    assert applied == await corrections_published(settings)


async def test_the_job_fails_clearly_when_no_worker_applies_its_corrections(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    env = worker_settings(kafka_bootstrap, redis_url, tmp_path / "state")
    settings = Settings.from_env(env)
    from stream.adapters.topic_specs import all_topics, ensure_topics
    from stream.job.cut import publish as produce

    await ensure_topics(settings, all_topics(settings))
    produce(settings, settings.topic("stats-corrections"), [(b"acct-x", b"{}")])
    result = run_job(env, "--timeout", "3")
    assert result.returncode == 2
    assert "is a worker running" in result.stderr


async def test_a_correction_the_agent_rejected_does_not_block_later_runs(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    settings = worker.settings
    accounts = [f"acct-{uuid.uuid4().hex[:6]}"]
    await setup_accounts(worker, accounts)
    events, unique = known_stream(accounts, 300, seed=5)
    await publish_slowly(settings, events, chunk=300)
    from stream.job.cut import publish as produce

    produce(settings, settings.topic("stats-corrections"), [(accounts[0].encode(), b"{}")])
    await worker.wait_for("creative_selection_corrections_total", 1, outcome="rejected")
    result = run_job(
        worker.env, "--report-only", "--timeout", "20", "--json", str(tmp_path / "r.json")
    )
    assert result.returncode == 0, result.stderr
    await caught_up(settings)
    assert await streamed_stats(settings) == truth_of(unique)
