"""The selection agent: selection requests -> selection responses, in small batches.

The answers that need nothing more are published first; requests whose reply topic is
being checked (`stream.handlers.reply_to`) are answered right after, within the check's
bound, so a missing reply topic never holds up the batch's other answers."""

from __future__ import annotations

import logging
import time

from stream.wire.envelope import Incoming, Outgoing
from stream.worker.app import app, settings
from stream.worker.delivery import mark_read, with_missing
from stream.worker.runtime import (
    incoming,
    metrics,
    progress,
    publish,
    read_missing,
    runtime,
    watched_continuity,
)
from stream.worker.topics import selection_requests_topic

log = logging.getLogger(__name__)

# Requests skipped before the agent would never be answered (see stream/worker/delivery.py).
continuity = watched_continuity()


@app.agent(selection_requests_topic, concurrency=1)
async def answer_selection_requests(stream):  # type: ignore[no-untyped-def]
    runtime.cluster_topics.warm_up()  # the first reply topic's check then waits for no connect
    async for events in stream.take_events(settings.select_batch, settings.select_within_ms / 1e3):
        started = time.perf_counter()
        batch = [incoming(e) for e in events]
        jumps = continuity.check(batch)
        if jumps:
            batch = await with_missing(batch, jumps, read_missing)
        progress.started("answer_selection_requests", time.time())
        metrics.batch_size.labels("answer_selection_requests").observe(len(batch))
        held = None
        try:
            out, held = await runtime.selection.answer_ready(batch)
        except Exception as exc:
            out = failed(batch, exc)
        await publish(out)
        if held is not None:
            try:
                late = await runtime.selection.answer_held(held)
            except Exception as exc:
                late = failed(held.messages, exc)
            await publish(late)
        if jumps:
            mark_read(app, jumps)
        progress.finished("answer_selection_requests", time.time())
        metrics.selection_latency.observe(time.perf_counter() - started)


def failed(batch: list[Incoming], exc: Exception) -> list[Outgoing]:
    log.exception("selection batch failed; answering every request with an error")
    metrics.agent_errors.labels("answer_selection_requests").inc()
    return runtime.selection.internal_error(batch, exc)
