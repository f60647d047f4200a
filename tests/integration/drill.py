"""Traffic for the rebalance drills: a known stream of sends, clicks and conversions with
re-published event ids and its ground truth, steady selection requests with known ids,
and the answers read back from the responses topic."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.stats import AccountStats, Counts
from stream.adapters.producer import open_producer, partition_for, publish_batched, send_messages
from stream.settings import Settings
from stream.wire.batches import open_responses, request_batch, salvage_request_ids
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionRequest, SendEvent, encode
from tests.integration.changelog import applied_through

CREATIVES = [f"c{i}" for i in range(4)]
EVENT_TOPICS = ("sends", "clicks", "conversions")
Truth = dict[str, dict[str, Counts]]


def accounts(partitions: int, per_partition: int = 3) -> list[str]:
    """Account ids, `per_partition` of them hashing to each partition."""
    found: dict[int, list[str]] = defaultdict(list)
    n = 0
    while any(len(found[p]) < per_partition for p in range(partitions)):
        account = f"acct-{n}"
        n += 1
        bucket = found[partition_for(account.encode(), partitions)]
        if len(bucket) < per_partition:
            bucket.append(account)
    return sorted(a for p in range(partitions) for a in found[p])


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in CREATIVES],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


def known_stream(
    total: int, names: list[str], duplicate_share: float = 0.05, seed: int = 5
) -> tuple[list[Any], Truth]:
    """`total` events, `duplicate_share` of them re-published copies of earlier events,
    and the counts they must produce (each (account, kind, event id) once)."""
    rng = random.Random(seed)
    events: list[Any] = []
    unique: list[Any] = []
    while len(events) < total:
        if unique and rng.random() < duplicate_share:
            events.append(rng.choice(unique))
            continue
        n, account, creative = len(unique), rng.choice(names), rng.choice(CREATIVES)
        roll = rng.random()
        if roll < 0.7:
            e: Any = SendEvent(f"e{n}", account, "k", f"p{n}", creative, 1000.0 + n)
        elif roll < 0.93:
            e = ClickEvent(f"e{n}", account, f"p{n}", creative, 1000.0 + n)
        else:
            revenue = round(rng.uniform(1, 90), 2)
            e = ConversionEvent(f"e{n}", account, f"p{n}", creative, 1000.0 + n, revenue)
        unique.append(e)
        events.append(e)
    truth: Truth = {}
    for e in unique:
        delta = AccountStats().apply(e.kind, e.creative_id, e.time, getattr(e, "revenue_micros", 0))
        row = truth.setdefault(e.account_id, {})
        row[e.creative_id] = row.get(e.creative_id, Counts()) + delta.creative(e.creative_id)
    return events, truth


@dataclass
class Traffic:
    """What the drill published: events at a steady rate and requests beside them. The
    last `tail` share of the events waits until `over` is set (the disruption is over,
    however long a restart took), so the disruption always falls mid-stream; requests
    keep coming meanwhile."""

    settings: Settings
    events: list[Any]
    names: list[str]
    event_rate: float
    request_rate: float
    tail: float = 0.1
    batch: int = 1  # events and requests per message (1: single v1 messages)
    over: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[str] = field(default_factory=list)
    started: float = 0.0
    held_seconds: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def run(self) -> None:
        self.started = time.monotonic()
        async with open_producer(self.settings) as producer:
            done = asyncio.Event()
            asking = asyncio.create_task(self._ask(producer, done))
            try:
                await self._publish(producer)
            finally:
                done.set()
                await asking

    async def _publish(self, producer: Any) -> None:
        chunk = max(1, int(self.event_rate / 10))
        held = len(self.events) - int(self.tail * len(self.events))
        paced, base = self.started, 0  # the rate is kept from here, from this index
        for index in range(0, len(self.events), chunk):
            if index >= held and not self.over.is_set():
                waited = time.monotonic()
                await self.over.wait()
                paced, base = time.monotonic(), index
                self.held_seconds = paced - waited
            await publish_batched(
                producer, self.settings, self.events[index : index + chunk], self.batch
            )
            ahead = (index + chunk - base) / self.event_rate - (time.monotonic() - paced)
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def _ask(self, producer: Any, done: asyncio.Event) -> None:
        rng = random.Random(7)
        # Batched: the requests due in each tenth of a second, one message per account.
        per_message = 1 if self.batch == 1 else max(1, int(self.request_rate / 10))
        topic = self.settings.topic("selection-requests")
        while not done.is_set():
            due = []
            for _ in range(per_message):
                n = len(self.requests) + len(due)
                due.append(SelectionRequest(f"r{n}", rng.choice(self.names), "k", f"x{n}"))
            if self.batch == 1:
                await asyncio.gather(*await send_messages(producer, self.settings, due))
            else:
                by_account: dict[str, list[SelectionRequest]] = defaultdict(list)
                for request in due:
                    by_account[request.account_id].append(request)
                await asyncio.gather(
                    *[
                        await producer.send(topic, request_batch(a, rs), key=a.encode())
                        for a, rs in by_account.items()
                    ]
                )
            self.requests.extend(r.request_id for r in due)
            ahead = len(self.requests) / self.request_rate - self.elapsed()
            if ahead > 0:
                await asyncio.sleep(ahead)


async def end_offsets(settings: Settings, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.topic(t), p) for t in topics for p in range(settings.partitions)
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def stats_caught_up(settings: Settings, timeout: float) -> float:
    """Seconds until the stats have applied the last event of every event partition (the
    changelog names, per partition, the highest offset applied)."""
    ends = await end_offsets(settings, EVENT_TOPICS)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        applied = await applied_through(settings)
        if all(
            applied.get(f"{tp.topic}:{tp.partition}", -1) >= end - 1 for tp, end in ends.items()
        ):
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise TimeoutError("the stats did not catch up")


async def answers(settings: Settings, wanted: list[str], timeout: float) -> dict[str, list[bytes]]:
    """Every response on the responses topic by request id, once each wanted request
    has one (or `timeout` passed) and the topic has been read to its end."""
    topic = settings.topic("selection-responses")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, list[bytes]] = defaultdict(list)
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        missing = set(wanted)
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    items = open_responses(r.value)  # single or a response batch
                    for answer in items if isinstance(items, list) else [items]:
                        rid = getattr(answer, "request_id", None)
                        if rid is not None:
                            found[rid].append(encode(answer))
                            missing.discard(rid)
            ends = await consumer.end_offsets(tps)
            at_end = all([await consumer.position(tp) >= ends[tp] for tp in tps])
            if at_end and (not missing or time.monotonic() > deadline):
                return dict(found)
    finally:
        await consumer.stop()


def answer_report(wanted: list[str], found: dict[str, list[bytes]]) -> dict[str, int]:
    """How many requests got no answer, one, the same answer more than once, or
    different answers."""
    report = {"unanswered": 0, "one": 0, "repeated": 0, "different": 0}
    for rid in wanted:
        got = found.get(rid, [])
        if not got:
            report["unanswered"] += 1
        elif len(set(got)) > 1:
            report["different"] += 1
        elif len(got) > 1:
            report["repeated"] += 1
        else:
            report["one"] += 1
    return report


def stats_differences(streamed: Truth, truth: Truth) -> dict[str, dict[str, int]]:
    """Per account, streamed minus true sends, clicks and conversions (non-zero only)."""
    out: dict[str, dict[str, int]] = {}
    for account in sorted(set(streamed) | set(truth)):
        s_row, t_row = streamed.get(account, {}), truth.get(account, {})
        diff = {"sends": 0, "clicks": 0, "conversions": 0}
        for creative in set(s_row) | set(t_row):
            s, t = s_row.get(creative, Counts()), t_row.get(creative, Counts())
            diff["sends"] += s.sends - t.sends
            diff["clicks"] += s.clicks - t.clicks
            diff["conversions"] += s.conversions - t.conversions
        if any(diff.values()):
            out[account] = diff
    return out


class CommitSampler:
    """The group's committed offset and the end offset of every partition of `topics`,
    sampled every second while the drill runs: `behind()` says how far each partition's
    commit lagged, and for how long."""

    def __init__(self, settings: Settings, topics: tuple[str, ...]) -> None:
        self.settings = settings
        self.topics = topics
        self.samples: list[tuple[float, dict[str, tuple[int, int]]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        group = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.settings.app_id,
            enable_auto_commit=False,
        )
        await group.start()
        started = time.monotonic()
        try:
            tps = [
                TopicPartition(self.settings.topic(t), p)
                for t in self.topics
                for p in range(self.settings.partitions)
            ]
            while True:
                ends = await group.end_offsets(tps)
                row = {
                    f"{tp.topic.removeprefix(self.settings.topic_prefix)}:{tp.partition}": (
                        await group.committed(tp) or 0,
                        ends[tp],
                    )
                    for tp in tps
                }
                self.samples.append((time.monotonic() - started, row))
                await asyncio.sleep(1.0)
        finally:
            await group.stop()

    def stalls(self, seconds: float = 5.0) -> dict[str, float]:
        """Per partition, the longest time its commit stood still with messages waiting,
        when that was more than `seconds`."""
        longest: dict[str, float] = {}
        since: dict[str, tuple[float, int]] = {}
        for at, row in self.samples:
            for tp, (committed, end) in row.items():
                start = since.get(tp)
                if committed >= end or start is None or start[1] != committed:
                    since[tp] = (at, committed)
                    continue
                longest[tp] = max(longest.get(tp, 0.0), at - start[0])
        return {tp: round(s, 1) for tp, s in sorted(longest.items()) if s > seconds}


async def positions(settings: Settings, topic: str, wanted: set[str]) -> dict[str, str]:
    """Where the requests with these ids are: "partition:offset", and "/place" in a batch."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    found: dict[str, str] = {}
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    ids, _, batched = salvage_request_ids(r.value)  # a batch, or one request
                    for place, rid in enumerate(ids):
                        if rid in wanted:
                            at = f"/{place}" if batched else ""
                            found[rid] = f"{r.partition}:{r.offset}{at}"
    finally:
        await consumer.stop()
    return found
