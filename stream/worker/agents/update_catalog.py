"""The catalog agent: the four compacted catalog topics -> `account_to_catalog`."""

from __future__ import annotations

import logging
import time

from stream.handlers.catalog import apply_catalog_message
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.worker.app import app, settings
from stream.worker.runtime import confirm_writes, incoming, metrics, publish
from stream.worker.tables import account_to_catalog
from stream.worker.topics import CATALOG_KINDS, catalog_topics

log = logging.getLogger(__name__)


@app.agent(catalog_topics, concurrency=1)
async def update_catalog(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = incoming(event)
        await account_to_catalog.ready_to_write()
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
                account_to_catalog[key] = value
                metrics.catalog_updates.labels(CATALOG_KINDS[message.topic]).inc()
        except Exception as exc:
            log.exception("catalog message failed; dead-lettering it")
            metrics.agent_errors.labels("update_catalog").inc()
            letter = (internal_error_letter(message, exc), "internal_error")
        await confirm_writes(account_to_catalog)
        if letter is not None:
            metrics.dead_letters.labels(letter[1], message.topic).inc()
            await publish([letter[0]])


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
