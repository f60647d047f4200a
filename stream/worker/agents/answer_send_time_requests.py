"""The send-time agent: send-time requests -> send-time responses, in small batches
(`stream.handlers.sendtime` does the work)."""

from __future__ import annotations

import logging
import time

from stream.worker.app import app, settings
from stream.worker.runtime import incoming, metrics, progress, publish, runtime
from stream.worker.topics import send_time_requests_topic

log = logging.getLogger(__name__)
AGENT = "answer_send_time_requests"


@app.agent(send_time_requests_topic, concurrency=1)
async def answer_send_time_requests(stream):  # type: ignore[no-untyped-def]
    service, _ = runtime.send_times()
    async for events in stream.take_events(settings.select_batch, settings.select_within_ms / 1e3):
        started = time.perf_counter()
        batch = [incoming(e) for e in events]
        progress.started(AGENT, time.time())
        metrics.batch_size.labels(AGENT).observe(len(batch))
        try:
            out = await service.answer(batch)
        except Exception as exc:
            log.exception("send-time batch failed; answering every request with an error")
            metrics.agent_errors.labels(AGENT).inc()
            out = service.internal_error(batch, exc)
        await publish(out)
        progress.finished(AGENT, time.time())
        metrics.sendtime.batch_seconds.labels(AGENT).observe(time.perf_counter() - started)
