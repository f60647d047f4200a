"""The catalog agent: the four compacted catalog topics -> `account_to_catalog`.

Each catalog value also keeps, per catalog topic-partition, the offset of the last
message applied to it (`applied`): a message at or below it is a re-delivery and changes
nothing, and after every assignment each partition resumes from the lowest of them
(`stream.worker.resume`), whatever the group committed. Compacted topics have holes in
their offsets, so only an assignment's first message is checked against that point.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from selector.ingest import partition_key
from stream.handlers.catalog import apply_catalog_message
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.worker import resume
from stream.worker.app import app, settings
from stream.worker.delivery import Ownership, hold_back, mark_read, with_missing
from stream.worker.runtime import confirm_writes, incoming, metrics, publish, read_missing
from stream.worker.tables import account_to_catalog
from stream.worker.topics import CATALOG_KINDS, catalog_topics

log = logging.getLogger(__name__)

AGENT = "update_catalog"
continuity = resume.follow(
    app,
    account_to_catalog,
    CATALOG_KINDS,
    lambda mine: resume.catalog_starts(
        account_to_catalog, CATALOG_KINDS, mine, settings.partitions
    ),
    AGENT,
    metrics,
    contiguous=False,
)
owner = Ownership(app)


lock = asyncio.Lock()  # one writer: the agent and its sweep take turns


@app.agent(catalog_topics, concurrency=1)
async def update_catalog(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        token, current = owner.take([event])
        if not current:
            metrics.rebalance_dropped.labels(AGENT).inc()
            continue
        async with lock:
            messages = [incoming(event)]
            jumps = continuity.check(messages)
            try:
                if jumps:
                    messages = await with_missing(messages, jumps, read_missing)
                handled = await handle(token, messages)
            except BaseException:  # not committed, and read again
                hold_back([event])
                continuity.rewind(resume.unapplied(messages, jumps))
                raise
            if handled and jumps:
                mark_read(app, jumps, messages)


@app.timer(interval=resume.SWEEP_SECONDS)  # type: ignore[untyped-decorator]
async def sweep_catalog() -> None:
    await resume.sweep(app, continuity, lock, handle, read_missing)


async def handle(token: int, messages: list[Incoming]) -> bool:
    """Apply catalog messages in order; False when a rebalance began meanwhile."""
    await account_to_catalog.ready_to_write()
    for message in messages:
        if not owner.holds(token):
            metrics.rebalance_dropped.labels(AGENT).inc()
            return False
        await apply(message)
    return True


async def apply(message: Incoming) -> None:
    try:
        key, value, letter = apply_catalog_message(
            CATALOG_KINDS[message.topic],
            message,
            account_to_catalog.get,
            settings.max_message_bytes,
            settings.topic("dead-letters"),
            time.time(),
        )
        if value is not None:
            value = with_applied(account_to_catalog.get(key), value, message)
        if value is not None:
            account_to_catalog[key] = value
            metrics.catalog_updates.labels(CATALOG_KINDS[message.topic]).inc()
    except Exception as exc:
        log.exception("catalog message failed; dead-lettering it")
        metrics.agent_errors.labels(AGENT).inc()
        letter = (internal_error_letter(message, exc), "internal_error")
    await confirm_writes(account_to_catalog)
    if letter is not None:
        metrics.dead_letters.labels(letter[1], message.topic).inc()
        await publish([letter[0]])


def with_applied(
    current: dict[str, Any] | None, value: dict[str, Any], message: Incoming
) -> dict[str, Any] | None:
    """`value` with the message's offset as its topic-partition's applied offset; None
    when the current value has applied it already (a re-delivery)."""
    applied = dict((current or {}).get("applied", {}))
    position = partition_key(message.topic, message.partition)
    if message.offset <= applied.get(position, -1):
        return None
    applied[position] = message.offset
    return {**value, "applied": applied}


def internal_error_letter(message: Incoming, exc: Exception) -> Outgoing:
    body = codec.dead_letter(
        message.value,
        message.key,
        "internal_error",
        type(exc).__name__,
        message.topic,
        message.partition,
        message.offset,
        time.time(),
    )
    return Outgoing(settings.topic("dead-letters"), message.key or b"", body)
