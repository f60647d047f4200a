"""`creative-select replay` on real Kafka and Redis: replaying twice counts nothing twice
(also once the Redis dedup records are gone), events of different kinds sharing an
`event_id` are all published and counted, an interrupted replay resumes and
publishes the rest exactly once, and topics replay by offset range, time range and
from the dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from selector.stats import AccountStats, Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.kafka_config import kafka_config
from stream.adapters.topic_specs import TopicSpec, all_topics, ensure_topics
from stream.cli import main
from stream.replay import progress as p
from stream.replay.inputs import FileSource, TopicSource
from stream.replay.ranges import topic_ranges
from stream.replay.run import Options, Result, Send, replay
from stream.settings import Settings
from stream.wire import codec
from stream.wire.ledger_codec import loads as load_ledger
from tests.integration.test_publish_catalog import read_all
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNTS = ("acme-a", "acme-b", "acme-s")
CREATIVES = ("c0", "c1", "c2")
DAY = 86_400.0
BASE_TIME = time.time() - 30 * DAY  # a month ago, as backfilled events are


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in CREATIVES],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


def outcome_events(account: str, sends: int, seed: int, first: int = 0) -> list[dict[str, Any]]:
    """Sends, and clicks and conversions for some of them, as JSON Lines documents."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for n in range(first, first + sends):
        creative, at = rng.choice(CREATIVES), BASE_TIME + 60.0 * n
        ids = {"account_id": account, "contact_id": f"p{n}", "creative_id": creative}
        docs.append({"schema": "send.v1", "event_id": f"s{n}", "campaign_id": "k", **ids,
                     "time": at})  # fmt: skip
        if rng.random() < 0.3:
            docs.append({"schema": "click.v1", "event_id": f"k{n}", **ids, "time": at + 30})
            if rng.random() < 0.4:
                revenue = round(rng.uniform(1, 90), 2)
                docs.append({"schema": "conversion.v1", "event_id": f"v{n}", **ids,
                             "time": at + 45, "revenue": revenue})  # fmt: skip
    return docs


def truth(docs: list[dict[str, Any]]) -> dict[str, Counts]:
    stats = AccountStats()
    for d in docs:
        kind = d["schema"].removesuffix(".v1")
        micros = round(d.get("revenue", 0) * 1_000_000)
        stats = stats.apply(kind, d["creative_id"], d["time"], micros)
    return dict(stats.counts)


def write_file(path: Path, docs: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs) + "".join(extra))
    return path


async def stats_of(settings: Settings, account: str) -> dict[str, Counts]:
    """The account's latest value in the stats table's changelog."""
    topic = f"{settings.app_id}-account-to-stats-changelog"
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, n) for n in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest = None
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    latest = record.value if record.key == account.encode() else latest
    finally:
        await consumer.stop()
    return {} if latest is None else dict(load_ledger(latest).stats.counts)


async def applied_after(worker: WorkerProcess, outcome: str, before: float, count: int) -> None:
    """Wait until the worker counted `count` more events with `outcome`, then a moment
    for the table's changelog write that follows the batch."""
    await worker.wait_for("creative_selection_events_total", before + count, outcome=outcome)
    await asyncio.sleep(2.0)
    assert worker.metric("creative_selection_events_total", outcome=outcome) == before + count


def events_total(worker: WorkerProcess, outcome: str) -> float:
    return worker.metric("creative_selection_events_total", outcome=outcome)


async def replay_file(path: Path, settings: Settings, tmp: Path, **options: Any) -> Result:
    opts = Options(checkpoint=tmp / f"{uuid.uuid4().hex}.json", **options)
    return await replay(FileSource(path, settings, time.time()), settings, opts, err=io.StringIO())


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("replay")
    env = worker_settings(kafka_bootstrap, redis_url, root / "state", CS_STATS_BATCH="500")
    process = WorkerProcess(env, root / "worker.log")
    process.start()
    settings = process.settings
    asyncio.run(publish(validate_documents([catalog(a) for a in ACCOUNTS], settings), settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4 * len(ACCOUNTS)))
    yield process
    process.stop()


async def test_replaying_a_file_twice_counts_each_event_once(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    settings, docs = worker.settings, outcome_events("acme-a", 400, seed=1)
    path = write_file(tmp_path / "a.jsonl", docs, extra=("{not json\n",))
    before = events_total(worker, "applied")
    first = await replay_file(path, settings, tmp_path)
    assert p.outcome_totals(first.tally) == {
        "published": len(docs), "present": 0, "rejected": 1, "ignored": 0
    }  # fmt: skip
    await applied_after(worker, "applied", before, len(docs))
    assert await stats_of(settings, "acme-a") == truth(docs)

    again = await replay_file(path, settings, tmp_path)  # a new checkpoint: from the top
    assert p.outcome_totals(again.tally)["present"] == len(docs)
    assert p.outcome_totals(again.tally)["published"] == 0

    duplicates = events_total(worker, "duplicate")
    blind = await replay_file(path, settings, tmp_path, skip_existing=False)
    assert p.outcome_totals(blind.tally)["published"] == len(docs)  # Redis must drop them
    await applied_after(worker, "duplicate", duplicates, len(docs))
    assert events_total(worker, "applied") == before + len(docs)
    assert await stats_of(settings, "acme-a") == truth(docs)


async def test_beyond_the_dedup_ttl_a_replay_still_counts_nothing_twice(
    worker: WorkerProcess, tmp_path: Path, redis_url: str
) -> None:
    settings = worker.settings
    old, new = outcome_events("acme-b", 300, seed=2), outcome_events("acme-b", 100, 3, first=300)
    before = events_total(worker, "applied")
    await replay_file(write_file(tmp_path / "old.jsonl", old), settings, tmp_path)
    await applied_after(worker, "applied", before, len(old))

    client = aioredis.Redis.from_url(redis_url)
    try:  # the account's dedup records expire: the TTL has passed
        match = f"{settings.redis_key_prefix}dd:acme-b:*"
        keys = [key async for key in client.scan_iter(match=match, count=1000)]
        assert len(keys) == len(old)
        await client.delete(*keys)
        assert [key async for key in client.scan_iter(match=match)] == []
    finally:
        await client.aclose()

    overlap = write_file(tmp_path / "all.jsonl", old + new)  # a backfill over applied data
    result = await replay_file(overlap, settings, tmp_path)
    assert p.by_outcome(result.tally, "present") == dict(Counter(d["schema"][:-3] for d in old))
    assert p.outcome_totals(result.tally)["published"] == len(new)
    await applied_after(worker, "applied", before, len(old) + len(new))
    assert await stats_of(settings, "acme-b") == truth(old + new)


async def test_a_click_sharing_a_send_s_event_id_is_replayed_and_counted(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    """The stats dedup by (account, kind, event_id), so the replay's index must too: a
    sender that reuses one id for a send, its click and its conversion has three events."""
    settings = worker.settings
    docs = outcome_events("acme-s", 300, seed=7)
    for d in docs:  # s12, k12, v12 -> e12, e12, e12
        d["event_id"] = f"e{d['event_id'][1:]}"
    kinds = Counter(d["schema"].removesuffix(".v1") for d in docs)
    assert kinds["click"] > 50 and kinds["conversion"] > 10
    path = write_file(tmp_path / "shared.jsonl", docs)
    before = events_total(worker, "applied")
    first = await replay_file(path, settings, tmp_path)
    assert p.by_outcome(first.tally, "published") == dict(kinds)
    assert p.outcome_totals(first.tally)["present"] == 0
    await applied_after(worker, "applied", before, len(docs))
    assert await stats_of(settings, "acme-s") == truth(docs)

    again = await replay_file(path, settings, tmp_path)
    assert p.by_outcome(again.tally, "present") == dict(kinds)
    assert p.outcome_totals(again.tally)["published"] == 0


@pytest.fixture
def target(kafka_bootstrap: str) -> Settings:
    """Settings with event topics of their own, created, and no worker."""
    prefix = f"r{uuid.uuid4().hex[:8]}-"
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=3)
    asyncio.run(ensure_topics(settings, all_topics(settings)))
    return settings


async def event_ids(settings: Settings) -> Counter[str]:
    """How often each event id is in the target's event topics."""
    names = [settings.topic(t) for t in ("sends", "clicks", "conversions")]
    return Counter(json.loads(r.value)["event_id"] for r in await read_all(settings, names))


def replay_process(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`creative-select replay ARGS` in a subprocess, into `settings`' topics."""
    env = {"CS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CS_TOPIC_PREFIX": settings.topic_prefix}
    command = [sys.executable, "-m", "stream.cli", "replay", *args]
    with log.open("ab") as out:
        return subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=out)


async def settled_lines(checkpoint: Path, at_least: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until the checkpoint says `at_least` lines are settled."""
    deadline = time.monotonic() + 60
    while True:
        saved = p.load(checkpoint) if checkpoint.exists() else None
        if saved is not None and saved.positions.get("line", 1) > at_least:
            return
        assert process.poll() is None and time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_a_replay_killed_mid_way_resumes_and_publishes_the_rest_once(
    target: Settings, tmp_path: Path
) -> None:
    docs = outcome_events("acme-k", 1500, seed=4)
    path, checkpoint = write_file(tmp_path / "k.jsonl", docs), tmp_path / "k.replay.json"
    args, log = (str(path), "--checkpoint", str(checkpoint)), tmp_path / "replay.log"
    killed = replay_process(target, log, *args, "--rate", "500")
    await settled_lines(checkpoint, 300, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    at_kill = p.load(checkpoint)
    assert at_kill is not None and not at_kill.done and at_kill.positions["line"] < len(docs)
    published_before = await event_ids(target)
    assert 300 <= sum(published_before.values()) < len(docs)

    resumed = replay_process(target, log, *args)
    assert resumed.wait(timeout=120) == 0, log.read_text()
    assert f"resumed after {sum(at_kill.tally.values())}" in log.read_text()
    assert await event_ids(target) == Counter(d["event_id"] for d in docs)
    final = p.load(checkpoint)
    assert final is not None and final.done
    assert sum(final.tally.values()) == len(docs)


async def test_ctrl_c_saves_exactly_what_was_acknowledged(target: Settings, tmp_path: Path) -> None:
    docs = outcome_events("acme-i", 1000, seed=6)
    path, checkpoint = write_file(tmp_path / "i.jsonl", docs), tmp_path / "i.replay.json"
    args, log = (str(path), "--checkpoint", str(checkpoint)), tmp_path / "replay.log"
    interrupted = replay_process(target, log, *args, "--rate", "500")
    await settled_lines(checkpoint, 200, interrupted)
    interrupted.send_signal(signal.SIGINT)
    assert interrupted.wait(timeout=30) == 130
    assert "interrupted; what the broker acknowledged is checkpointed" in log.read_text()
    saved = p.load(checkpoint)
    assert saved is not None and not saved.done
    in_topic = sum((await event_ids(target)).values())
    assert p.outcome_totals(saved.tally)["published"] == in_topic < len(docs)

    resumed = replay_process(target, log, *args, "--no-skip-existing")  # the checkpoint alone
    assert resumed.wait(timeout=120) == 0, log.read_text()
    assert await event_ids(target) == Counter(d["event_id"] for d in docs)


def fail_after(acks: int) -> Any:
    """Wrap a send so that the one after `acks` sends fails, as a broker error would."""

    def wrap(send: Send) -> Send:
        sent = 0

        async def failing(topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
            nonlocal sent
            if sent == acks:
                raise OSError("injected failure")
            sent += 1
            return await send(topic, value, key)

        return failing

    return wrap


async def test_a_failed_run_resumes_from_its_checkpoint_alone_exactly_once(
    target: Settings, tmp_path: Path
) -> None:
    docs = outcome_events("acme-f", 600, seed=5)
    source = FileSource(write_file(tmp_path / "f.jsonl", docs), target, time.time())
    options = Options(checkpoint=tmp_path / "f.json", skip_existing=False, window=50)
    with pytest.raises(OSError, match="injected failure"):
        await replay(source, target, options, err=io.StringIO(), wrap_send=fail_after(250))
    saved = p.load(tmp_path / "f.json")
    assert saved is not None and p.outcome_totals(saved.tally)["published"] == 250
    assert sum((await event_ids(target)).values()) == 250

    result = await replay(source, target, options, err=io.StringIO())  # no index: checkpoint only
    assert result.resumed == 250 and p.outcome_totals(result.tally)["published"] == len(docs)
    assert await event_ids(target) == Counter(d["event_id"] for d in docs)


T0_MS = int((BASE_TIME // 1) * 1000)


def archive_event(i: int) -> bytes:
    return json.dumps({"schema": "send.v1", "event_id": f"a{i}", "account_id": "acme-r",
                       "campaign_id": "k", "contact_id": f"p{i}", "creative_id": "c1",
                       "time": BASE_TIME + i}).encode()  # fmt: skip


async def fill_archive(settings: Settings, topic: str) -> None:
    """40 events, event i in partition i % 2 at offset i // 2, stamped T0 + i seconds."""
    await ensure_topics(settings, [TopicSpec(topic, 2, False)])
    producer = AIOKafkaProducer(**kafka_config(settings))
    await producer.start()
    try:
        for i in range(40):
            await producer.send_and_wait(
                topic,
                archive_event(i),
                key=b"acme-r",
                partition=i % 2,
                timestamp_ms=T0_MS + 1000 * i,
            )
    finally:
        await producer.stop()


def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("CS_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("CS_TOPIC_PREFIX", settings.topic_prefix)
    return main(["replay", *args])


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def test_a_topic_replays_by_offset_range_and_by_time_range(
    target: Settings, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = f"archive-{uuid.uuid4().hex[:8]}"
    asyncio.run(fill_archive(target, archive))
    by_offset = ["--start-offset", "0:5,1:0", "--end-offset", "0:15,1:3"]
    code = run_cli(target, monkeypatch, "--from-topic", archive, *by_offset,
                   "--checkpoint", str(tmp_path / "o.json"))  # fmt: skip
    assert code == 0
    expected = {f"a{i}" for i in [*range(10, 30, 2), 1, 3, 5]}  # p0 offsets 5-14, p1 0-2
    assert asyncio.run(event_ids(target)) == Counter(expected)
    open_ended = ("--from-topic", archive, "--start-offset", "18")
    open_args = (*open_ended, "--checkpoint", str(tmp_path / "e.json"), "--no-skip-existing")
    assert run_cli(target, monkeypatch, *open_args) == 0  # offsets 18-19 of both partitions
    asyncio.run(fill_archive(target, archive))  # the topic's end moves on
    assert run_cli(target, monkeypatch, *open_args) == 0  # the same command: already complete
    assert asyncio.run(event_ids(target)) == Counter(expected | {"a36", "a37", "a38", "a39"})

    other = dataclasses.replace(target, topic_prefix=f"r{uuid.uuid4().hex[:8]}-")
    asyncio.run(ensure_topics(other, all_topics(other)))
    by_time = ["--since", iso(T0_MS + 10_000), "--until", iso(T0_MS + 20_000)]
    assert run_cli(other, monkeypatch, "--from-topic", archive, *by_time, "--dry-run") == 0
    assert asyncio.run(event_ids(other)) == Counter()
    code = run_cli(other, monkeypatch, "--from-topic", archive, *by_time,
                   "--checkpoint", str(tmp_path / "t.json"))  # fmt: skip
    assert code == 0
    assert asyncio.run(event_ids(other)) == Counter(f"a{i}" for i in range(10, 20))
    saved = p.load(tmp_path / "t.json")
    assert saved is not None and saved.source["ranges"] == {"0": [5, 10], "1": [5, 10]}


async def test_dead_letters_replay_their_originals_once(target: Settings, tmp_path: Path) -> None:
    sends, letters_topic = target.topic("sends"), target.topic("dead-letters")
    rejected, elsewhere = archive_event(1), archive_event(2)
    producer = AIOKafkaProducer(**kafka_config(target))
    await producer.start()
    try:  # the originals as the agent read them: rejected then, so never counted
        at = await producer.send_and_wait(sends, rejected, key=b"acme-r")
        await producer.send_and_wait(sends, elsewhere, key=b"acme-r")  # upstream sent it again
        letters = [
            codec.dead_letter(
                rejected, b"acme-r", "unknown_creative", "", sends, at.partition, at.offset, 0.0
            ),
            codec.dead_letter(elsewhere, b"acme-r", "unknown_creative", "", sends, 0, 999, 0.0),
            codec.dead_letter(
                b"{}",
                b"acme-r",
                "malformed_json",
                "",
                target.topic("selection-requests"),
                0,
                1,
                0.0,
            ),
            codec.dead_letter(b"{oops", b"acme-r", "malformed_json", "", sends, 0, 2, 0.0),
        ]
        for letter in letters:
            await producer.send_and_wait(letters_topic, letter, key=b"acme-r")
    finally:
        await producer.stop()

    async def replay_letters() -> Result:
        ranges = await topic_ranges(target, letters_topic)
        source = TopicSource(target, letters_topic, ranges, time.time())
        options = Options(checkpoint=tmp_path / f"{uuid.uuid4().hex}.json")
        return await replay(source, target, options, err=io.StringIO())

    first = await replay_letters()
    assert dict(first.tally) == {
        "published:send": 1, "present:send": 1, "ignored:not_an_outcome": 1,
        "rejected:malformed_json": 1,
    }  # fmt: skip
    assert await event_ids(target) == Counter({"a1": 2, "a2": 1})  # the original and its replay
    second = await replay_letters()
    assert p.outcome_totals(second.tally)["published"] == 0
    assert p.by_outcome(second.tally, "present") == {"send": 2}
