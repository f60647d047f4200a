"""`SelectionClient` against a real broker and a tiny fake responder written here: answers
matched by request_id, timeouts, late replies dropped and counted, 1,000 concurrent
selects; and outcome events published by `publish_events` and `send-events`."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.adapters.event_files import send_file
from stream.adapters.kafka_config import kafka_config
from stream.adapters.topic_specs import TopicSpec, all_topics, ensure_topics
from stream.client import SelectionClient, publish_events
from stream.settings import Settings
from stream.wire.batches import Opened, open_events, open_requests
from stream.wire.messages import (
    ClickEvent,
    ConversionEvent,
    SelectionError,
    SelectionRequest,
    SelectionResponse,
    SendEvent,
    encode,
)

pytestmark = pytest.mark.integration

SILENT = "silent"  # contact ids the responder never answers
SLOW = "slow"  # ... answers after `Responder.slow_seconds`
UNKNOWN = "unknown-campaign"  # campaign the responder answers with an error


def fresh_settings(bootstrap: str, partitions: int = 4) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    return Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions)


class Responder:
    """Answers each selection request with creative `cr-<contact_id>` (so a test can tell
    whose answer it got), or an error for campaign `UNKNOWN`; reads from the beginning of
    every partition, so no request is missed whenever it starts."""

    def __init__(self, settings: Settings, slow_seconds: float = 0.8) -> None:
        self.settings = settings
        self.slow_seconds = slow_seconds
        self.answered = 0
        self._task: asyncio.Task[None] | None = None
        self._later: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        config = kafka_config(self.settings)
        self.producer = AIOKafkaProducer(**config, linger_ms=1)
        self.consumer = AIOKafkaConsumer(**config, enable_auto_commit=False)
        await self.producer.start()
        await self.consumer.start()
        topic = self.settings.topic("selection-requests")
        partitions = [TopicPartition(topic, p) for p in await self.producer.partitions_for(topic)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in [self._task, *self._later]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._task, *self._later] if t], return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    async def _run(self) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=50)).values():
                for request in (r for record in records for r in requests_in(record.value)):
                    if request.contact_id.startswith(SLOW):
                        task = asyncio.create_task(self._answer(request, self.slow_seconds))
                        self._later.add(task)
                        task.add_done_callback(self._later.discard)
                    elif not request.contact_id.startswith(SILENT):
                        await self._answer(request, 0.0)

    async def _answer(self, request: SelectionRequest, delay: float) -> None:
        await asyncio.sleep(delay)
        now = time.time()
        answer: SelectionResponse | SelectionError
        if request.campaign_id == UNKNOWN:
            answer = SelectionError(
                request.request_id, request.account_id, "unknown_campaign", "not found", now
            )
        else:
            answer = SelectionResponse(
                request.request_id,
                request.account_id,
                request.campaign_id,
                f"cr-{request.contact_id}",
                "automated",
                "thompson_single_step",
                "scored",
                "none",
                0.5,
                1,
                now,
            )
        topic = request.reply_to or self.settings.topic("selection-responses")
        await self.producer.send(topic, encode(answer), key=request.account_id.encode())
        self.answered += 1


def requests_in(raw: bytes) -> list[SelectionRequest]:
    """The requests of a message, single or a batch (the client's default)."""
    opened = open_requests(raw)
    assert isinstance(opened, Opened), opened
    assert all(isinstance(item.value, SelectionRequest) for item in opened.items), opened
    return [item.value for item in opened.items]


@pytest_asyncio.fixture
async def settings(kafka_bootstrap: str) -> Settings:
    settings = fresh_settings(kafka_bootstrap)
    await ensure_topics(settings, all_topics(settings))
    return settings


@pytest_asyncio.fixture
async def responder(settings: Settings) -> AsyncIterator[Responder]:
    responder = Responder(settings)
    await responder.start()
    yield responder
    await responder.stop()


@pytest_asyncio.fixture
async def client(settings: Settings, responder: Responder) -> AsyncIterator[SelectionClient]:
    async with SelectionClient(settings, timeout=10.0) as client:
        yield client


async def eventually(condition: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_every_answer_is_matched_to_its_request(client: SelectionClient) -> None:
    calls = [(f"acct-{i % 7}", f"camp-{i % 3}", f"contact-{i}") for i in range(60)]
    answers = await asyncio.gather(*(client.select(*call) for call in calls))
    for (account_id, campaign_id, contact_id), answer in zip(calls, answers, strict=True):
        assert isinstance(answer, SelectionResponse)
        assert (answer.account_id, answer.campaign_id) == (account_id, campaign_id)
        assert answer.creative_id == f"cr-{contact_id}"
    assert len({a.request_id for a in answers}) == 60
    error = await client.select("acct-1", UNKNOWN, "contact-x")
    assert isinstance(error, SelectionError) and error.reason == "unknown_campaign"
    assert (client.pending, client.late_replies, client.unreadable_replies) == (0, 0, 0)


async def test_select_many_keeps_the_order_of_the_requests(client: SelectionClient) -> None:
    requests = [("acct-1", "camp", f"c{i}", 1_767_225_600.0) for i in range(200)]
    answers = await client.select_many(requests)
    assert [a.creative_id for a in answers] == [f"cr-c{i}" for i in range(200)]  # type: ignore[union-attr]


async def test_no_answer_raises_a_timeout_and_forgets_the_request(client: SelectionClient) -> None:
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await client.select("acct-1", "camp", f"{SILENT}-1", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert client.pending == 0
    answers = await client.select_many(
        [("acct-1", "camp", "ok-1"), ("acct-1", "camp", f"{SILENT}-2")],
        timeout=0.5,
        return_exceptions=True,
    )
    assert isinstance(answers[0], SelectionResponse)
    assert isinstance(answers[1], asyncio.TimeoutError) and client.pending == 0


async def test_a_late_reply_is_dropped_and_counted(
    client: SelectionClient, responder: Responder, settings: Settings
) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await client.select("acct-1", "camp", f"{SLOW}-1", timeout=0.2)
    await eventually(lambda: client.late_replies == 1)
    # a reply to a request nobody made, and one the codec rejects, are dropped as well
    stray = SelectionResponse(
        "not-ours", "acct-1", "camp", "cr", "control", "default", "control", "none", 1.0, 1, 1.0
    )
    topic = settings.topic("selection-responses")
    await responder.producer.send_and_wait(topic, encode(stray), key=b"acct-1")
    await responder.producer.send_and_wait(topic, b"{not json", key=b"acct-1")
    await eventually(lambda: (client.late_replies, client.unreadable_replies) == (2, 1))
    answer = await client.select("acct-1", "camp", "after")
    assert isinstance(answer, SelectionResponse) and answer.creative_id == "cr-after"


async def test_answers_on_a_reply_to_topic(settings: Settings, responder: Responder) -> None:
    replies = settings.topic("replies-sender-7")
    await ensure_topics(settings, [TopicSpec(replies, 2)])
    async with SelectionClient(settings, responses_topic=replies) as client:
        answer = await client.select("acct-1", "camp", "c1")
    assert isinstance(answer, SelectionResponse) and answer.creative_id == "cr-c1"


async def test_a_thousand_concurrent_selects_all_resolve(client: SelectionClient) -> None:
    async def timed(i: int) -> float:
        started = time.perf_counter()
        answer = await client.select(f"acct-{i % 10}", "camp", f"contact-{i}")
        assert isinstance(answer, SelectionResponse) and answer.creative_id == f"cr-contact-{i}"
        return time.perf_counter() - started

    await client.select("acct-0", "camp", "warm-up")
    started = time.perf_counter()
    latencies = sorted(await asyncio.gather(*(timed(i) for i in range(1000))))
    elapsed = time.perf_counter() - started
    assert client.pending == 0 and client.late_replies == 0
    p50, p99 = (
        statistics.quantiles(latencies, n=100)[49],
        statistics.quantiles(latencies, n=100)[98],
    )
    print(f"\n1,000 concurrent selects: {1000 / elapsed:,.0f} requests/s, "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")  # fmt: skip

    started = time.perf_counter()
    answers = await client.select_many(("acct-1", "camp", f"m{i}") for i in range(1000))
    elapsed = time.perf_counter() - started
    assert len(answers) == 1000 and all(isinstance(a, SelectionResponse) for a in answers)
    print(f"select_many of 1,000: {1000 / elapsed:,.0f} requests/s")


# --- outcome events ---------------------------------------------------------------


async def read_events(settings: Settings, count: int) -> dict[str, list[object]]:
    """The first `count` records of the three event topics, decoded, by topic."""
    kinds = {settings.topic(t): k for t, k in (("sends", "send"), ("clicks", "click"),
                                              ("conversions", "conversion"))}  # fmt: skip
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in kinds for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[str, list[object]] = {topic: [] for topic in kinds}
        async with asyncio.timeout(20):
            while sum(map(len, found.values())) < count:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        opened = open_events(kinds[tp.topic], r.value, key=r.key)
                        assert isinstance(opened, Opened), opened
                        found[tp.topic] += [item.value for item in opened.items]
        return found
    finally:
        await consumer.stop()


async def test_publish_events_puts_each_event_on_its_topic(settings: Settings) -> None:
    events: list[SendEvent | ClickEvent | ConversionEvent] = [
        SendEvent("s1", "acct-1", "camp", "ct-1", "cr-a", 1_767_225_600.0, "req-1"),
        ClickEvent("k1", "acct-1", "ct-1", "cr-a", 1_767_225_700.0, "s1", "camp"),
        ConversionEvent("v1", "acct-1", "ct-1", "cr-a", 1_767_225_800.0, 24.99, "s1"),
    ]
    assert await publish_events(settings, events) == 3
    found = await read_events(settings, 3)
    assert [found[settings.topic(t)] for t in ("sends", "clicks", "conversions")] == [
        [events[0]],
        [events[1]],
        [events[2]],
    ]


async def test_send_events_sends_valid_lines_and_reports_the_rest(
    settings: Settings, tmp_path: Path
) -> None:
    now = time.time()
    send = {"schema": "send.v1", "event_id": "s1", "account_id": "acct-2", "campaign_id": "c",
            "contact_id": "ct", "creative_id": "cr", "time": now}  # fmt: skip
    click = {**send, "schema": "click.v1", "event_id": "k1"}
    lines = [json.dumps(send), "", "{broken", json.dumps(click), json.dumps({**send, "time": -1})]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    err = io.StringIO()
    totals = await send_file(path, settings, rate=100.0, err=err)
    assert (totals.sent, totals.invalid) == (2, 2)
    assert err.getvalue().splitlines() == [
        "line 3: schema: must be one of send.v1, click.v1, conversion.v1",
        "line 5: invalid_value: time: must be >= 0 and <= 1e+10, got -1",
    ]
    found = await read_events(settings, 2)
    assert [e.event_id for e in found[settings.topic("sends")]] == ["s1"]  # type: ignore[attr-defined]
    assert [e.event_id for e in found[settings.topic("clicks")]] == ["k1"]  # type: ignore[attr-defined]
