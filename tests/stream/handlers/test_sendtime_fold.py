"""The send-time learner folds a batch's events per contact and merges once: on random
event streams (fixed seeds) with re-deliveries, out-of-order partitions, upstream
duplicates, clicks read before their sends, clicks on unknown sends and sends older
than the history kept, it stores byte-identical values and counts the same outcomes,
batch by batch, as the learner that applied one event at a time
(`tests.stream.handlers.sendtime_reference`); and so does a batch learned in slices of a
few events each."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from selector.sendtime import SendTimeSettings
from selector.sendtime.counts import History
from stream.handlers.sendtime_learning import SendTimeLearner
from stream.handlers.sendtime_store import MemorySendTimeStore
from stream.ops.metrics import Metrics
from stream.wire.batches import event_batch
from stream.wire.envelope import Incoming
from stream.wire.messages import ClickEvent, SendEvent, encode
from tests.stream.handlers.sendtime_reference import ReferenceLearner

KINDS = {"sends": "send", "clicks": "click"}
START = datetime(2025, 1, 6, tzinfo=UTC).timestamp()
SETTINGS = {
    "acme": SendTimeSettings(),
    "tight": SendTimeSettings(
        slots=6,
        split_weekends=True,
        zone="America/New_York",
        history=History(history_days=21, bucket_days=7),
    ),
}
ZONES = ("Europe/Berlin", "Asia/Kathmandu", "Narnia/Cair", "+05:45")
SEEDS = range(40)


def settings_for(account: str) -> SendTimeSettings:
    return SETTINGS[account]


def stream_of(seed: int) -> tuple[list[tuple[str, str, str]], list[list[Incoming]]]:
    """(zones to remember, batches) of one random stream."""
    rng = random.Random(seed)
    contacts = [(a, f"ct-{i}") for a in SETTINGS for i in range(rng.randint(1, 4))]
    zones = [(a, c, rng.choice(ZONES)) for a, c in contacts if rng.random() < 0.6]
    n_sends = rng.randint(5, 60)
    span = rng.choice((30, 120, 700))  # days the sends spread over: some older than kept
    sends: list[SendEvent] = []
    for i in range(n_sends):
        account, contact = rng.choice(contacts)
        t = START + rng.uniform(0, span * 86_400)
        if sends and rng.random() < 0.1:  # an upstream duplicate: the same id again
            sends.append(SendEvent(rng.choice(sends).event_id, account, "c", contact, "x", t))
        else:
            sends.append(SendEvent(f"s{i}", account, "c", contact, "x", t))
    clicks: list[ClickEvent] = []
    for i in range(rng.randint(0, 2 * n_sends)):
        send = rng.choice(sends)
        target: str | None = send.event_id
        if rng.random() < 0.05:
            target = "never-sent"
        elif rng.random() < 0.05:
            target = None
        contact = send.contact_id if rng.random() < 0.9 else rng.choice(contacts)[1]
        clicks.append(ClickEvent(f"k{i}", send.account_id, contact, "x", send.time + 60, target))
    # each topic's events go to two partitions, as messages of one account's events
    events: list[SendEvent | ClickEvent] = [*sends, *clicks]
    rng.shuffle(events)
    offsets: Counter[tuple[str, int]] = Counter()
    messages: list[Incoming] = []
    while events:
        head = events.pop(0)
        topic = "sends" if isinstance(head, SendEvent) else "clicks"
        partition = rng.randrange(2)
        group = [head]
        if rng.random() < 0.7:  # an event_batch.v1 of up to five
            same = [e for e in events if type(e) is type(head) and e.account_id == head.account_id]
            for e in same[: rng.randint(0, 4)]:
                events.remove(e)
                group.append(e)
        value = (
            event_batch(head.kind, head.account_id, group) if len(group) > 1 or rng.random() < 0.5
            else encode(head)
        )  # fmt: skip
        offset = offsets[topic, partition]
        offsets[topic, partition] += rng.choice((1, 1, 1, 3))
        messages.append(Incoming(value, head.account_id.encode(), topic, partition, offset))
    # delivery: re-deliveries of earlier messages, and the odd pair swapped (read out of
    # partition order), cut into batches
    delivered: list[Incoming] = []
    for m in messages:
        delivered.append(m)
        if rng.random() < 0.15:
            delivered.insert(rng.randrange(len(delivered)), rng.choice(messages))
    for _ in range(len(delivered) // 10):
        i = rng.randrange(len(delivered))
        j = min(len(delivered) - 1, i + rng.randint(1, 3))
        delivered[i], delivered[j] = delivered[j], delivered[i]
    batches, at = [], 0
    while at < len(delivered):
        size = rng.choice((1, 3, 10, 40, 200))
        batches.append(delivered[at : at + size])
        at += size
    return zones, batches


@pytest.mark.parametrize("seed", SEEDS)
async def test_the_folded_learner_stores_the_same_bytes_and_outcomes_as_one_at_a_time(
    seed: int,
) -> None:
    zones, batches = stream_of(seed)
    folded_store, reference_store = MemorySendTimeStore(), MemorySendTimeStore()
    for store in (folded_store, reference_store):
        await store.remember_zones(zones, 86_400)
    common = {"kinds": KINDS, "record_ttl": 86_400, "settings_for": settings_for}
    folded = SendTimeLearner(store=folded_store, metrics=Metrics(), **common)  # type: ignore[arg-type]
    reference = ReferenceLearner(store=reference_store, metrics=Metrics(), **common)  # type: ignore[arg-type]
    for batch in batches:
        assert await folded.learn(batch) == await reference.learn(batch)
        assert folded_store.data == reference_store.data


@pytest.mark.parametrize("seed", SEEDS[::4])
async def test_a_batch_learned_in_slices_is_learned_as_that_many_batches(seed: int) -> None:
    zones, batches = stream_of(seed)
    folded_store, reference_store = MemorySendTimeStore(), MemorySendTimeStore()
    for store in (folded_store, reference_store):
        await store.remember_zones(zones, 86_400)
    common = {"kinds": KINDS, "record_ttl": 86_400, "settings_for": settings_for, "max_events": 7}
    folded = SendTimeLearner(store=folded_store, metrics=Metrics(), **common)  # type: ignore[arg-type]
    reference = ReferenceLearner(store=reference_store, metrics=Metrics(), **common)  # type: ignore[arg-type]
    for batch in batches:
        assert await folded.learn(batch) == await reference.learn(batch)
        assert folded_store.data == reference_store.data


async def test_the_random_streams_reach_every_outcome() -> None:
    seen: Counter[tuple[str, str]] = Counter()
    for seed in SEEDS:
        zones, batches = stream_of(seed)
        store = MemorySendTimeStore()
        await store.remember_zones(zones, 86_400)
        learner = SendTimeLearner(
            store=store,
            metrics=Metrics(),
            kinds=KINDS,
            record_ttl=86_400,
            settings_for=settings_for,
        )
        for batch in batches:
            seen += await learner.learn(batch)
    wanted = {
        ("send", o) for o in ("applied", "replayed", "duplicate", "expired")
    } | {
        ("response", o)
        for o in ("applied", "replayed", "duplicate", "expired", "early", "unattributed")
    }  # fmt: skip
    assert wanted <= {k for k, n in seen.items() if n > 0}, sorted(seen.items())
