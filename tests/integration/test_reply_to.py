"""`reply_to` on a real worker: requests naming each internal topic (read from the broker,
changelogs included), topics outside the allow-list and topics that do not exist, mixed
with normal requests. Every request gets exactly one answer on the right topic, nothing
reaches an internal topic, the normal requests are answered within seconds, and the
dead letters and counters match."""

from __future__ import annotations

import asyncio
import io
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.kafka_config import kafka_config
from stream.adapters.topic_specs import open_admin
from stream.commands import topics
from stream.settings import Settings
from stream.wire.messages import SelectionRequest, encode
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNT: dict[str, Any] = {
    "account_id": "acme",
    "settings": {"goal": "clicks", "cooldown_seconds": 0},
    "offers": [{"offer_id": "o1", "payout": 30}],
    "creatives": [{"creative_id": f"c{i}", "offer_id": "o1"} for i in range(3)],
    "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
}
SENDER = "sender-eu"


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("reply-to")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    settings = process.settings
    out = io.StringIO()
    created = asyncio.run(topics.create(settings, out, senders=[SENDER]))
    assert settings.topic(f"selection-replies.{SENDER}") in created
    assert f"senders' reply topics: {settings.topic('selection-replies.')}<sender>" in (
        out.getvalue()
    )
    asyncio.run(publish(validate_documents([ACCOUNT], settings), settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


async def internal_topics(settings: Settings) -> list[str]:
    """Every topic on the broker that is the worker's own, its changelogs and Faust's
    topics included, but the responses topic and the senders' reply topics."""
    async with open_admin(settings) as admin:
        listed = await admin.list_topics()
    allowed = (settings.topic("selection-responses"), settings.topic("selection-replies."))
    return sorted(
        name
        for name in listed
        if (
            name.startswith((settings.topic_prefix, settings.app_id))
            and not name.startswith(allowed)
        )
        or name == "__consumer_offsets"
    )


async def partitions_of(settings: Settings, names: list[str]) -> list[TopicPartition]:
    async with open_admin(settings) as admin:
        described = await admin.describe_topics(names)
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def end_offsets(settings: Settings, names: list[str]) -> dict[str, int]:
    """Each topic's end offsets, summed over its partitions."""
    partitions = await partitions_of(settings, names)
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    totals: Counter[str] = Counter()
    for tp, end in ends.items():
        totals[tp.topic] += end
    return dict(totals)


class Listener:
    """Reads what the worker writes to some topics, from their ends at `start`, with
    the time each record arrived."""

    def __init__(self, settings: Settings, names: list[str]) -> None:
        self.settings, self.names = settings, names
        self.records: list[tuple[str, dict[str, Any], float]] = []
        self._consumer = AIOKafkaConsumer(
            **kafka_config(settings), enable_auto_commit=False, group_id=None
        )

    async def start(self) -> None:
        partitions = await partitions_of(self.settings, self.names)
        await self._consumer.start()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self._consumer.position(tp)

    async def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await self._consumer.getmany(timeout_ms=100)
            arrived = time.monotonic()
            for tp, records in batch.items():
                for r in records:
                    self.records.append((tp.topic, orjson.loads(r.value), arrived))

    async def read_until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await self.read(0.2)

    async def stop(self) -> None:
        await self._consumer.stop()


def request(rid: str, reply_to: str | None = None) -> bytes:
    return encode(SelectionRequest(rid, "acme", "k", f"contact-{rid}", None, reply_to))


async def send_all(settings: Settings, requests: list[tuple[str, str | None]]) -> dict[str, float]:
    """Produce the requests in order, as fast as the producer takes them; when each went."""
    producer = AIOKafkaProducer(**kafka_config(settings), linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        deliveries = []
        for rid, reply_to in requests:
            sent[rid] = time.monotonic()
            value = request(rid, reply_to)
            deliveries.append(
                await producer.send(settings.topic("selection-requests"), value, key=b"acme")
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return sent


async def test_every_reply_to_gets_one_answer_and_internal_topics_get_nothing(
    worker: WorkerProcess,
) -> None:
    s = worker.settings
    internal = await internal_topics(s)
    assert {
        f"{s.app_id}-account-to-stats-changelog",
        f"{s.app_id}-account-to-catalog-changelog",
        f"{s.app_id}-__assignor-__leader",
        "__consumer_offsets",
    } <= set(internal)
    own = {name for name in internal if name.startswith(s.topic_prefix)}
    assert len(own) == 15  # every topic of schemas/topics.yaml but the responses topic
    responses, replies = s.topic("selection-responses"), s.topic(f"selection-replies.{SENDER}")
    letters = s.topic("dead-letters")
    missing = [s.topic("selection-replies.nobody"), s.topic("selection-replies.gone")]
    outside = ["sender-eu.selection-responses", "sends", "stats-corrections"]

    marker = uuid.uuid4().hex[:8]
    special = (
        [(f"{marker}-internal-{i}", t) for i, t in enumerate(internal)]
        + [(f"{marker}-missing-{i}", t) for i, t in enumerate(missing)]
        + [(f"{marker}-outside-{i}", t) for i, t in enumerate(outside)]
        + [(f"{marker}-sender-{i}", replies) for i in range(5)]
    )
    plan: list[tuple[str, str | None]] = []
    for i, item in enumerate(special):  # every special request among normal ones
        plan += [(f"{marker}-normal-{i}-{j}", None) for j in range(10)] + [item]
    plan += [(f"{marker}-normal-end-{j}", None) for j in range(50)]
    expected = {rid: (reply_to if reply_to == replies else responses) for rid, reply_to in plan}

    before = await end_offsets(s, internal)
    listener = Listener(s, [responses, replies, letters])
    await listener.start()
    try:
        sent = await send_all(s, plan)

        def all_answered() -> bool:
            answered = {r.get("request_id") for t, r, _ in listener.records if t != letters}
            return set(expected) <= answered

        await listener.read_until(all_answered, timeout=60)
        await listener.read(3.0)  # anything more would be a second answer
    finally:
        await listener.stop()

    answers = [(t, r, at) for t, r, at in listener.records if t != letters]
    assert Counter(r["request_id"] for _, r, _ in answers) == Counter(expected.keys())
    assert {r["request_id"]: t for t, r, _ in answers} == expected
    reasons = {
        r["request_id"]: r["error"]["reason"] for _, r, _ in answers if r["status"] == "error"
    }
    assert reasons == {
        **{rid: "forbidden_reply_to" for rid, _ in special if "-internal-" in rid},
        **{rid: "forbidden_reply_to" for rid, _ in special if "-outside-" in rid},
        **{rid: "unknown_reply_to" for rid, _ in special if "-missing-" in rid},
    }
    dead = Counter(r["reason"] for t, r, _ in listener.records if t == letters)
    assert dead == {"forbidden_reply_to": len(internal) + len(outside), "unknown_reply_to": 2}

    after = await end_offsets(s, internal)
    moved = {t: after[t] - before[t] for t in internal if after[t] != before[t]}
    assert moved.pop(letters) == len(internal) + len(outside) + len(missing)
    assert moved.pop(s.topic("selection-requests")) == len(plan)
    moved.pop("__consumer_offsets", None)  # the worker's commits
    # what the selection agent answered, per request partition (stream/handlers/once.py)
    assert moved.pop(f"{s.app_id}-partition-to-answers-changelog", 0) > 0
    assert moved == {}
    await nothing_of_ours_in(s, "__consumer_offsets", marker)

    def latencies(kind: str) -> list[float]:
        return sorted(at - sent[r["request_id"]] for _, r, at in answers if kind in r["request_id"])

    latency = latencies("-normal-")
    print(f"\n{len(internal)} internal topics on the broker: {', '.join(internal)}", end="")
    for kind in ("-normal-", "-sender-", "-missing-"):
        took = latencies(kind)
        print(
            f"\n{kind.strip('-')} requests ({len(took)}): answered after p50 "
            f"{statistics.median(took) * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms",
            end="",
        )
    assert latency[-1] < 10.0  # the bug held every answer for 1,200 s

    refused = {c: worker.metric("creative_selection_reply_to_refused_total", cause=c)
               for c in ("internal_topic", "not_allowed", "missing_topic")}  # fmt: skip
    assert refused == {"internal_topic": len(internal) + 2, "not_allowed": 1, "missing_topic": 2}
    checks = {o: worker.metric("creative_selection_reply_topic_checks_total", outcome=o)
              for o in ("found", "missing", "unconfirmed")}  # fmt: skip
    assert checks == {"found": 1, "missing": 2, "unconfirmed": 0}
    for reason, count in dead.items():
        assert worker.metric("creative_selection_dead_letters_total", reason=reason) == count
        assert worker.metric("creative_selection_selection_errors_total", reason=reason) == count


async def nothing_of_ours_in(settings: Settings, topic: str, marker: str) -> None:
    """No record of `topic` mentions `marker`."""
    partitions = await partitions_of(settings, [topic])
    consumer = AIOKafkaConsumer(
        **kafka_config(settings), enable_auto_commit=False, exclude_internal_topics=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        seen = 0
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    seen += 1
                    assert marker.encode() not in (r.value or b"") + (r.key or b"")
        assert seen > 0  # the worker's commits, at least
    finally:
        await consumer.stop()
