"""The project's own Kafka and Redis really serve: produce/consume, topic configs, TTLs, stop."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

from stream.adapters.topic_specs import TopicSpec
from stream.local import port_accepts
from stream.local.kafka import BrokerOptions, KafkaBroker, KafkaSetupError, create_topics
from stream.local.redis import RedisServer

pytestmark = pytest.mark.integration

MESSAGE_COUNT = 1_000


def unique(prefix: str) -> str:
    """A fresh topic or group name, so tests never see each other's data in one session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def produce_numbered(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(topic, f"value-{i}".encode(), key=f"key-{i}".encode())
            for i in range(count)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, count: int, timeout_s: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("group"),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            records.extend(record for batch in batches.values() for record in batch)
    finally:
        await consumer.stop()
    return records


async def test_thousand_messages_round_trip_through_three_partitions(kafka_bootstrap: str) -> None:
    topic = unique("round-trip")
    assert await create_topics(kafka_bootstrap, [TopicSpec(topic, partitions=3)]) == [topic]

    await produce_numbered(kafka_bootstrap, topic, MESSAGE_COUNT)
    records = await consume_all(kafka_bootstrap, topic, MESSAGE_COUNT)

    assert len(records) == MESSAGE_COUNT
    expected = {(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(MESSAGE_COUNT)}
    assert {(r.key, r.value) for r in records} == expected
    numbers_by_partition: defaultdict[int, list[int]] = defaultdict(list)
    for record in records:
        numbers_by_partition[record.partition].append(int(record.value.split(b"-")[1]))
    assert set(numbers_by_partition) == {0, 1, 2}
    for numbers in numbers_by_partition.values():
        assert numbers == sorted(numbers), "a partition must keep the send order"


async def test_create_topics_is_idempotent_and_sets_compaction(kafka_bootstrap: str) -> None:
    topic = unique("compacted")
    spec = TopicSpec(topic, partitions=2, compacted=True)

    assert await create_topics(kafka_bootstrap, [spec]) == [topic]
    assert await create_topics(kafka_bootstrap, [spec]) == []

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})
        [response] = await admin.describe_configs([resource])
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    [(error_code, _, _, name, entries)] = response.resources
    assert (error_code, name) == (0, topic)
    assert {entry[0]: entry[1] for entry in entries} == {"cleanup.policy": "compact"}
    assert len(described["partitions"]) == 2


async def test_redis_set_with_ttl_then_get(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.set("creative:stats", b"payload", ex=60)
        assert await client.get("creative:stats") == b"payload"
        assert 0 < await client.ttl("creative:stats") <= 60
        await client.set("creative:short", b"gone soon", px=50)
        await asyncio.sleep(0.2)
        assert await client.get("creative:short") is None
    finally:
        await client.aclose()


def java_processes_using(path: Path) -> list[int]:
    """Pids whose command line names ``path``: a leftover broker would show up here."""
    pids = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            pids.append(int(proc_dir.name))
    return pids


def test_broker_stop_leaves_no_java_process(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    bootstrap = broker.start()
    pid = broker.pid
    assert broker.running and pid is not None
    assert java_processes_using(tmp_path) == [pid]

    broker.stop()
    broker.stop()  # idempotent

    assert not broker.running
    assert java_processes_using(tmp_path) == []
    host, port = bootstrap.rsplit(":", 1)
    assert not port_accepts(host, int(port))


def test_broker_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka", BrokerOptions(heap_min="8m", heap_max="4m"))
    with pytest.raises(KafkaSetupError, match="exited with code") as caught:
        broker.start()
    assert "heap" in str(caught.value).lower()
    assert not broker.running
    assert java_processes_using(tmp_path) == []


def test_redis_stop_leaves_no_process() -> None:
    server = RedisServer()
    server.start()
    pid = server.pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")

    server.stop()

    assert not server.running
    assert not os.path.exists(f"/proc/{pid}")
