"""The load of the stream benchmark: its accounts, the messages it publishes, and the
processes that publish them (`bench.stream_raw` measures plain aiokafka beside them).

Every message set is built from a `Load` alone (a seeded generator), so the load
generator process and the raw-client probe build byte-identical messages without
shipping them between processes. Request ids carry their index (`<tag><index>`), which
is how a response is matched to its request and its scheduled send time.

The functions named `*_process` run in processes of their own (`multiprocessing`,
spawn), so the load generator does not share an interpreter with the bench's response
consumer or with the worker. `time.monotonic()` is one clock across processes on Linux,
so a schedule made in one process is read in another.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from bench.selector_bench import OFFERS
from stream.adapters.kafka_config import kafka_config
from stream.settings import Settings
from stream.wire.batches import EVENT_BATCH, request_batch, response_batch
from stream.wire.messages import (
    ClickEvent,
    ConversionEvent,
    SelectionRequest,
    SelectionResponse,
    SendEvent,
    encode,
)

CREATIVES = 10
TOPIC_OF_KIND = {"send": "sends", "click": "clicks", "conversion": "conversions"}
LEARNED_KINDS = ("send", "click")  # what the send-time learner reads besides the stats agent
CAMPAIGNS = ("welcome-series", "winback")
COOLDOWN_SECONDS = 3 * 86400
CLICK_RATES = np.linspace(0.08, 0.15, CREATIVES)
CONVERSION_RATE = 0.1
# The load generator's producer: as fast as aiokafka goes (big batches, a few ms of
# linger); the latency sender's producer: what SelectionClient uses.
BULK_PRODUCER = {"acks": "all", "linger_ms": 5, "max_batch_size": 262_144}
CLIENT_PRODUCER = {"acks": "all", "linger_ms": 1, "enable_idempotence": True}
Message = tuple[str, bytes, bytes]  # (topic, key, value)


@dataclass(frozen=True, slots=True)
class Load:
    """What the benchmark publishes; `env` is the worker's `CS_` environment."""

    env: dict[str, str]
    accounts: int = 4
    contacts: int = 200_000
    requests: int = 200_000
    events: int = 200_000
    duplicate_pct: float = 1.0
    seed: int = 7
    batch: int = 100  # requests per message (`selection_request_batch.v1`); 1: single ones
    linger_ms: float = 2.0  # the paced sender's, as `SelectionClient`'s

    @property
    def settings(self) -> Settings:
        return _settings(tuple(sorted(self.env.items())))

    @property
    def sends_per_creative(self) -> int:
        per_send = 1 + CLICK_RATES.mean() * (1 + CONVERSION_RATE)
        unique = self.events / (1 + self.duplicate_pct / 100)
        return max(1, int(unique / per_send / (self.accounts * CREATIVES)))

    @property
    def learning_threshold(self) -> int:
        """Below the sends each creative gets, so every creative is scored (Thompson)."""
        return max(1, min(3000, self.sends_per_creative // 2))


@functools.cache
def _settings(env: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.from_env(dict(env))


def account_id(a: int) -> str:
    return f"bench-account-{a:02d}"


def catalog_documents(load: Load) -> list[dict[str, Any]]:
    """Accounts of 10 automated creatives over three offers, revenue goal, two campaigns
    80% automated, a Thompson/two-step/random split and a three-day cooldown."""
    return [
        {
            "account_id": account_id(a),
            "settings": {
                "goal": "revenue",
                "cooldown_seconds": COOLDOWN_SECONDS,
                "methods": {"thompson_single_step": 80, "thompson_two_step": 10, "random": 10},
                "learning_threshold": load.learning_threshold,
            },
            "offers": [{"offer_id": o, "payout": p, "payout_type": t} for o, p, t in OFFERS],
            "creatives": [
                {"creative_id": f"creative-{k:02d}", "offer_id": OFFERS[k % len(OFFERS)][0]}
                for k in range(CREATIVES)
            ],
            "campaigns": [
                {"campaign_id": c, "default_creative_id": "creative-00", "automated_percent": 80}
                for c in CAMPAIGNS
            ],
        }
        for a in range(load.accounts)
    ]


def request_message(
    load: Load, tag: str, index: int, account: int, campaign: int, contact: int, at: float
) -> Message:
    request = SelectionRequest(
        f"{tag}{index}", account_id(account), CAMPAIGNS[campaign], f"contact-{contact:07d}", at
    )
    topic = load.settings.topic("selection-requests")
    return topic, request.account_id.encode(), encode(request)


def request_messages(load: Load, tag: str, count: int, at: float) -> list[Message]:
    """`count` requests, in batches of `load.batch` of one account each (in the order
    the requests come, as `SelectionClient` makes them), or single ones when it is 1."""
    rng = np.random.default_rng([load.seed, count])
    accounts = rng.integers(0, load.accounts, count).tolist()
    campaigns = rng.integers(0, len(CAMPAIGNS), count).tolist()
    contacts = rng.integers(0, load.contacts, count).tolist()
    singles = [
        request_message(load, tag, i, accounts[i], campaigns[i], contacts[i], at)
        for i in range(count)
    ]
    return batched(load, singles)


def batched(load: Load, singles: Sequence[Message]) -> list[Message]:
    """Single request messages regrouped by account into batches of `load.batch`."""
    if load.batch == 1:
        return list(singles)
    out: list[Message] = []
    queued: dict[bytes, list[SelectionRequest]] = {}
    for topic, key, value in singles:
        queue = queued.setdefault(key, [])
        queue.append(_request(value))
        if len(queue) == load.batch:
            out.append((topic, key, request_batch(key.decode(), queued.pop(key))))
    topic = load.settings.topic("selection-requests")
    out += [(topic, key, request_batch(key.decode(), q)) for key, q in queued.items()]
    return out


def _request(value: bytes) -> SelectionRequest:
    doc = orjson.loads(value)
    del doc["schema"]
    return SelectionRequest(**doc)


def items_in(messages: Sequence[Message]) -> int:
    """Requests, responses or events in messages, single or batched."""
    count = 0
    for _, _, value in messages:
        doc = orjson.loads(value)
        count += len(doc.get("requests") or doc.get("responses") or doc.get("events") or [1])
    return count


def duplicate_count(unique: int, load: Load) -> int:
    return int(unique * load.duplicate_pct / 100)


def unique_count(total: int, load: Load) -> int:
    """How many of `total` published events were distinct (the rest are copies)."""
    unique = round(total / (1 + load.duplicate_pct / 100))
    while unique + duplicate_count(unique, load) > total:
        unique -= 1
    while unique + duplicate_count(unique, load) < total:
        unique += 1
    return unique


def event_messages(load: Load, at: float) -> list[Message]:
    """Sends, then their clicks and conversions, for every creative of every account;
    `duplicate_pct` of them published twice (same event id); shuffled across topics."""
    rng = np.random.default_rng(load.seed)
    settings = load.settings
    events: list[SendEvent | ClickEvent | ConversionEvent] = []
    n = load.sends_per_creative
    for a in range(load.accounts):
        acct = account_id(a)
        for k in range(CREATIVES):
            creative = f"creative-{k:02d}"
            payout = OFFERS[k % len(OFFERS)][1]
            contacts = rng.integers(0, load.contacts, n).tolist()
            clicked = (rng.random(n) < CLICK_RATES[k]).tolist()
            converted = (rng.random(n) < CONVERSION_RATE).tolist()
            for j in range(n):
                contact, send_id = f"contact-{contacts[j]:07d}", f"s-{a}-{k}-{j}"
                events.append(SendEvent(send_id, acct, CAMPAIGNS[j % 2], contact, creative, at))
                if clicked[j]:
                    events.append(ClickEvent(f"c-{a}-{k}-{j}", acct, contact, creative, at))
                    if converted[j]:
                        events.append(
                            ConversionEvent(f"v-{a}-{k}-{j}", acct, contact, creative, at, payout)
                        )
    copies = rng.choice(len(events), duplicate_count(len(events), load), replace=False)
    events += [events[i] for i in copies.tolist()]
    order = rng.permutation(len(events)).tolist()
    return [
        (settings.topic(TOPIC_OF_KIND[e.kind]), e.account_id.encode(), encode(e))
        for e in (events[i] for i in order)
    ]


def batched_events(load: Load, singles: Sequence[Message]) -> list[Message]:
    """Single event messages regrouped into `event_batch.v1` messages of `load.batch`
    events of one kind and account, in the order they come (as `publish_events` does)."""
    if load.batch == 1:
        return list(singles)
    out: list[Message] = []
    queued: dict[tuple[str, bytes], list[Any]] = {}
    kinds = {load.settings.topic(t): k for k, t in TOPIC_OF_KIND.items()}
    for topic, key, value in singles:
        queue = queued.setdefault((topic, key), [])
        queue.append(value)
        if len(queue) == load.batch:
            out.append(_event_batch(kinds[topic], topic, key, queued.pop((topic, key))))
    out += [_event_batch(kinds[t], t, key, values) for (t, key), values in queued.items()]
    return out


def _event_batch(kind: str, topic: str, key: bytes, values: list[bytes]) -> Message:
    items = []
    for value in values:
        doc = orjson.loads(value)
        del doc["schema"], doc["account_id"]
        items.append(doc)
    body = {"schema": EVENT_BATCH, "kind": kind, "account_id": key.decode(), "events": items}
    return topic, key, orjson.dumps(body)


def response_sample(load: Load, count: int) -> list[Message]:
    """Responses shaped like the worker's (for the raw client's rates at their size)."""
    topic = load.settings.topic("selection-responses")
    out = []
    for i in range(count):
        response = SelectionResponse(
            f"x{i}", account_id(i % load.accounts), CAMPAIGNS[i % 2], "creative-03",
            "automated", "thompson_single_step", "scored", "none", 0.4213, 12345 + i,
            time.time(),
        )  # fmt: skip
        out.append((topic, response.account_id.encode(), encode(response)))
    if load.batch == 1:
        return out
    return [
        (topic, out[i][1], response_batch([v for _, _, v in out[i : i + load.batch]]))
        for i in range(0, count, load.batch)
    ]


def pin(cpus: Sequence[int] | None) -> None:
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))


# --- publishing --------------------------------------------------------------------------


async def produce(settings: Settings, messages: Sequence[Message], **options: Any) -> float:
    """Publish every message as fast as aiokafka takes them; seconds until all are stored."""
    producer = AIOKafkaProducer(**kafka_config(settings), **(BULK_PRODUCER | options))
    await producer.start()
    try:
        started = time.perf_counter()
        last = None
        for topic, key, value in messages:
            last = await producer.send(topic, value, key=key)
        await producer.flush()
        if last is not None:
            await last
        return time.perf_counter() - started
    finally:
        await producer.stop()


def publish_process(load: Load, what: str, cpus: list[int] | None, out: Any) -> None:
    """Build `what` ("events" or "requests"), signal ready with the count (for events: all
    of them, and the sends and clicks the send-time learner reads), publish on "go"."""
    pin(cpus)
    at = time.time()
    if what == "events":
        singles = event_messages(load, at)
        messages = batched_events(load, singles)
        learned = {load.settings.topic(TOPIC_OF_KIND[k]) for k in LEARNED_KINDS}
        total: Any = (len(singles), sum(1 for topic, _, _ in singles if topic in learned))
    else:
        messages, total = request_messages(load, "t", load.requests, at), load.requests
    out.send(("ready", total))
    out.recv()
    seconds = asyncio.run(produce(load.settings, messages))
    out.send(("done", {"messages": len(messages), "seconds": seconds}))


async def paced(
    load: Load, rate: float, count: int, tag: str, pipe: Any, topic: str | None = None
) -> dict[str, Any]:
    """Open loop: request i leaves at `t0 + i / rate` whatever came back; when behind,
    the late ones leave at once (they were due). Latency is counted from the schedule,
    so a stall here or in the worker shows as latency, not as fewer requests. `t0` comes
    from the pipe once the producer is connected. With `load.batch` > 1 the requests due
    leave in batches by account once the first of them has waited `load.linger_ms`."""
    rng = np.random.default_rng([load.seed, 1])
    accounts = rng.integers(0, load.accounts, count).tolist()
    campaigns = rng.integers(0, len(CAMPAIGNS), count).tolist()
    contacts = rng.integers(0, load.contacts, count).tolist()
    producer = AIOKafkaProducer(**kafka_config(load.settings), **CLIENT_PRODUCER)
    await producer.start()
    behind, linger = 0.0, (load.linger_ms / 1e3 if load.batch > 1 else 0.0)
    try:
        pipe.send(("ready", count))
        t0 = pipe.recv()
        i = 0
        while i < count:
            # the requests due by now leave once the first has waited `linger`, or when
            # a batch's worth is due: as SelectionClient sends them
            now = time.monotonic()
            due = min(count, int((now - t0) * rate) + 1)
            deadline = t0 + i / rate + linger
            if due - i < load.batch and now < deadline:
                full = t0 + (i + load.batch - 1) / rate
                await asyncio.sleep(min(deadline, full) - now)
                continue
            behind = max(behind, now - deadline)
            at = time.time()
            singles = [
                request_message(load, tag, j, accounts[j], campaigns[j], contacts[j], at)
                for j in range(i, due)
            ]
            for requests, key, value in batched(load, singles):
                await producer.send(topic or requests, value, key=key)
            i = due
        await producer.flush()
    finally:
        await producer.stop()
    return {"sent": count, "max_behind_schedule_seconds": behind}


def paced_process(
    load: Load, rate: float, count: int, topic: str | None, cpus: list[int] | None, out: Any
) -> None:
    """The paced sender; `topic` None: the worker's requests topic."""
    pin(cpus)
    tag = "l" if topic is None else "e"
    out.send(("done", asyncio.run(paced(load, rate, count, tag, out, topic))))
