"""The selection agent: selection requests -> selection responses, in small batches."""

from __future__ import annotations

import logging
import time

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
    async for events in stream.take_events(settings.select_batch, settings.select_within_ms / 1e3):
        started = time.perf_counter()
        batch = [incoming(e) for e in events]
        jumps = continuity.check(batch)
        if jumps:
            batch = await with_missing(batch, jumps, read_missing)
        progress.started("answer_selection_requests", time.time())
        metrics.batch_size.labels("answer_selection_requests").observe(len(batch))
        try:
            out = await runtime.selection.answer(batch)
        except Exception as exc:
            log.exception("selection batch failed; answering every request with an error")
            metrics.agent_errors.labels("answer_selection_requests").inc()
            out = runtime.selection.internal_error(batch, exc)
        await publish(out)
        if jumps:
            mark_read(app, jumps)
        progress.finished("answer_selection_requests", time.time())
        metrics.selection_latency.observe(time.perf_counter() - started)
