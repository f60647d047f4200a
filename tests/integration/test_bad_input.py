"""Bad input on real Kafka: the worker keeps running, every bad message lands in the
dead-letter topic with its reason, its original bytes and its source position, each is
counted, and no count in the stats changes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from selector.stats import Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.wire.messages import SendEvent
from tests.integration.changelog import streamed_stats
from tests.integration.test_worker_e2e import ACCOUNT
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

MAX_BYTES = 4096


def send(**fields: Any) -> dict[str, Any]:
    body = {
        "schema": "send.v1",
        "event_id": "s-bad",
        "account_id": "acme",
        "campaign_id": "k",
        "contact_id": "x1",
        "creative_id": "c1",
        "time": 1000.0,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def conversion(revenue: float) -> dict[str, Any]:
    return {
        "schema": "conversion.v1",
        "event_id": f"v-{revenue}",
        "account_id": "acme",
        "contact_id": "x1",
        "creative_id": "c1",
        "time": 1000.0,
        "revenue": revenue,
    }


# (topic, key, raw bytes, the reason it must be dead-lettered with)
BAD: list[tuple[str, bytes, bytes, str]] = [
    ("sends", b"acme", b"{not json", "malformed_json"),
    ("sends", b"acme", b"[1, 2]", "not_an_object"),
    ("sends", b"acme", orjson.dumps(send(time="yesterday")), "wrong_type"),
    ("sends", b"acme", orjson.dumps(send(creative_id=None)), "missing_field"),
    ("sends", b"ghost", orjson.dumps(send(account_id="ghost")), "unknown_account"),
    ("sends", b"acme", orjson.dumps(send(creative_id="c-gone")), "unknown_creative"),
    ("sends", b"acme", orjson.dumps(send(padding="x" * (2 * MAX_BYTES))), "oversized"),
    ("clicks", b"acme", orjson.dumps({"schema": "click.v1"}), "missing_field"),
    ("conversions", b"acme", orjson.dumps(conversion(-5.0)), "invalid_value"),
    ("conversions", b"acme", orjson.dumps(conversion(5e6)), "implausible_value"),
    (
        "selection-requests",
        b"acme",
        orjson.dumps({"schema": "selection_request.v1", "request_id": "r1"}),
        "missing_field",
    ),
    (
        "selection-requests",
        b"acme",
        b'{"schema": "selection_request.v1", "pad": "' + b"y" * (2 * MAX_BYTES) + b'"}',
        "oversized",
    ),
]


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("bad-input")
    env = worker_settings(
        kafka_bootstrap, redis_url, root / "state", CS_MAX_MESSAGE_BYTES=str(MAX_BYTES)
    )
    process = WorkerProcess(env, root / "worker.log")
    process.start()
    asyncio.run(publish(validate_documents([ACCOUNT], process.settings), process.settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


async def produce_bad(worker: WorkerProcess) -> dict[tuple[str, int, int], tuple[bytes, str]]:
    """Publish every bad message; returns (topic, partition, offset) -> (raw, reason)."""
    s = worker.settings
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, max_request_size=2**20)
    await producer.start()
    try:
        placed = {}
        for topic, key, raw, reason in BAD:
            meta = await producer.send_and_wait(s.topic(topic), raw, key=key)
            placed[meta.topic, meta.partition, meta.offset] = (raw, reason)
        return placed
    finally:
        await producer.stop()


async def read_letters(worker: WorkerProcess, count: int) -> list[dict[str, Any]]:
    s = worker.settings
    consumer = AIOKafkaConsumer(
        s.topic("dead-letters"),
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    letters: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(letters) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                letters.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return letters


async def test_bad_messages_are_dead_lettered_with_reason_and_counted(
    worker: WorkerProcess,
) -> None:
    good = [SendEvent(f"bad-input-s{i}", "acme", "k", f"x{i}", "c1", 1e3 + i) for i in range(5)]
    async with SelectionClient(worker.settings) as client:
        await client.publish_events(good)
    await worker.wait_for("creative_selection_events_total", 5, outcome="applied")
    before = await streamed_stats(worker.settings)

    placed = await produce_bad(worker)
    await read_letters(worker, len(BAD))
    await asyncio.sleep(1.0)  # nothing else may follow
    letters = await read_letters(worker, len(BAD))

    found = {}
    for letter in letters:
        source = letter["source"]
        found[source["topic"], source["partition"], source["offset"]] = (
            base64.b64decode(letter["original"]),
            letter["reason"],
        )
    assert len(letters) == len(BAD)
    assert found == placed
    for reason in {r for _, _, _, r in BAD}:
        expected = sum(1 for _, _, _, r in BAD if r == reason)
        assert worker.metric("creative_selection_dead_letters_total", reason=reason) == expected
    assert worker.metric("creative_selection_events_total", outcome="applied") == 5

    assert before == {"acme": {"c1": Counts(sends=5)}}
    assert await streamed_stats(worker.settings) == before
    assert worker.proc is not None and worker.proc.poll() is None
    assert worker.health() is not None


async def test_bad_requests_still_get_an_error_response(worker: WorkerProcess) -> None:
    async with SelectionClient(worker.settings, timeout=30) as client:
        answers = await client.select_many(
            [("acme", "k", "x1", None), ("ghost", "k", "x1", None), ("acme", "zz", "x1", None)]
        )
    reasons = [getattr(a, "reason", None) for a in answers]
    assert answers[0].creative_id in {"c0", "c1", "c2"}
    assert reasons[1:] == ["unknown_account", "unknown_campaign"]
