"""The training job's Kafka side: the event topics read into each account's events, the
models topic read for the models in use, and the promoted models published to it.

Events are read with the daily job's reader (librdkafka) from each partition's start to
its end at the start of the run (single events and `event_batch.v1` messages), decoded by
the stats agent's codec, and kept only for the accounts being trained and the creatives of
their catalogs (what the stats count).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from selector.model.artifact import ContextualModel, from_bytes
from selector.model.examples import OutcomeEvent
from selector.stats import EventKind
from stream.adapters.kafka_reader import open_consumer, read_latest, read_ranges, watermarks
from stream.adapters.model_feed import MAX_MODEL_BYTES
from stream.adapters.producer import open_producer
from stream.adapters.profile_store import stored_custom
from stream.adapters.redis_store import redis_client
from stream.handlers.catalog import AccountCatalog
from stream.handlers.models import MODELS_TOPIC
from stream.job.cut import read_catalog
from stream.job.train import AccountResult, TrainOptions, train_all, wanted
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import open_events
from stream.wire.messages import TOPICS

EVENT_KINDS: tuple[EventKind, ...] = ("send", "click", "conversion")


@dataclass(frozen=True, slots=True)
class TrainRun:
    results: list[AccountResult]
    published: int
    events: int  # records read from the event topics
    outcomes: Counter[str]  # kept, rejected, other_account
    read_seconds: float
    train_seconds: float
    publish_seconds: float


def read_events(
    settings: Settings, creatives: Mapping[str, Collection[str]]
) -> tuple[dict[str, list[OutcomeEvent]], Counter[str]]:
    """Each account's events (accounts and creatives of `creatives`), and what was read."""
    limits = codec.Limits(settings.max_message_bytes)
    kinds: dict[str, EventKind] = {settings.topic(TOPICS[k]): k for k in EVENT_KINDS}
    out: dict[str, list[OutcomeEvent]] = {a: [] for a in creatives}
    outcomes: Counter[str] = Counter()

    def keep_one(kind: EventKind, e: Any) -> None:
        if isinstance(e, codec.Rejected):
            outcomes["rejected"] += 1
        elif e.account_id not in out or e.creative_id not in creatives[e.account_id]:
            outcomes["other_account"] += 1
        else:
            revenue, send = getattr(e, "revenue_micros", 0), getattr(e, "send_event_id", None)
            event = OutcomeEvent(
                kind, e.event_id, e.contact_id, e.creative_id, e.time, revenue, send
            )
            out[e.account_id].append(event)
            outcomes["kept"] += 1

    def keep(topic: str, partition: int, run: list[Any]) -> None:
        kind = kinds[topic]
        for r in run:  # single events and event_batch.v1 messages, as the stats agent reads
            opened = open_events(kind, r.value(), key=r.key(), limits=limits)
            if isinstance(opened, codec.Rejected):
                outcomes["rejected"] += 1
                continue
            for item in opened.items:
                keep_one(kind, item.value)

    consumer = open_consumer(settings)
    try:
        tps = [(topic, p) for topic in kinds for p in range(settings.partitions)]
        read_ranges(consumer, watermarks(consumer, tps), keep)
    finally:
        consumer.close()
    return out, outcomes


def read_models(settings: Settings) -> dict[str, ContextualModel]:
    """The newest model per account on the models topic (ones that do not load: none)."""
    latest = read_latest(settings, settings.topic(MODELS_TOPIC), settings.partitions)
    models = {key.decode(): from_bytes(value) for key, value in latest.items()}
    return {a: m for a, m in models.items() if isinstance(m, ContextualModel)}


async def publish_models(settings: Settings, models: Sequence[ContextualModel]) -> None:
    """Each model on the models topic, keyed by its account; returns once all are stored."""
    if not models:
        return
    async with open_producer(
        settings, max_request_size=MAX_MODEL_BYTES, compression_type="gzip"
    ) as producer:
        topic = settings.topic(MODELS_TOPIC)
        sent = [await producer.send(topic, m.to_bytes(), key=m.account_id.encode()) for m in models]
        await asyncio.gather(*sent)


def read_custom(
    settings: Settings,
    catalogs: Mapping[str, AccountCatalog],
    events: Mapping[str, Sequence[OutcomeEvent]],
) -> dict[str, dict[str, tuple[float | None, ...]]]:
    """Per account that declares custom fields, its contacts' stored custom-field slots
    (from the profiles in Redis; none with `CS_COOLDOWN_STORE=memory`)."""
    declared = [a for a, c in catalogs.items() if c.account and c.account.settings.custom_fields]
    pairs = [(a, c) for a in declared for c in sorted({e.contact_id for e in events.get(a, ())})]
    if not pairs or settings.cooldown_store == "memory":
        return {}

    async def read() -> dict[tuple[str, str], tuple[float | None, ...]]:
        client = redis_client(settings)
        try:
            return await stored_custom(client, settings.redis_key_prefix, pairs)
        finally:
            await client.aclose()

    out: dict[str, dict[str, tuple[float | None, ...]]] = {}
    for (account_id, contact), slots in asyncio.run(read()).items():
        out.setdefault(account_id, {})[contact] = slots
    return out


def run(
    settings: Settings, options: TrainOptions, clock: Callable[[], float] = time.time
) -> TrainRun:
    """Read, train every wanted account, publish the promoted models."""
    started = time.perf_counter()
    catalogs: dict[str, AccountCatalog] = read_catalog(settings, clock())
    accounts = {a: c.account for a, c in catalogs.items()}
    current = read_models(settings)
    creatives = {
        a: c.creative_ids
        for a, c in catalogs.items()
        if c.account is not None and wanted(c.account, options)
    }
    events, outcomes = read_events(settings, creatives)
    custom = read_custom(settings, catalogs, events)
    read_done = time.perf_counter()
    results, promoted = train_all(accounts, events, current, clock(), options, custom)
    trained = time.perf_counter()
    if not options.report_only:
        asyncio.run(publish_models(settings, promoted))
    published = 0 if options.report_only else len(promoted)
    marked = [replace(r, published=True) if r.promoted and published else r for r in results]
    return TrainRun(
        marked, published, sum(outcomes.values()), outcomes,
        read_done - started, trained - read_done, time.perf_counter() - trained,
    )  # fmt: skip
