"""The send-time learner: sends and clicks -> each contact's slot counts in Redis
(`stream.handlers.sendtime_learning` does the work; it is idempotent, so a batch that
fails is tried again, and one that keeps failing is given up and counted)."""

from __future__ import annotations

import asyncio
import logging
import time

from stream.worker.app import app, settings
from stream.worker.runtime import incoming, metrics, progress, runtime
from stream.worker.topics import sendtime_event_topics

log = logging.getLogger(__name__)
AGENT = "learn_send_times"
ATTEMPTS = 3


@app.agent(sendtime_event_topics, concurrency=1)
async def learn_send_times(stream):  # type: ignore[no-untyped-def]
    _, learner = runtime.send_times()
    async for events in stream.take_events(settings.stats_batch, settings.stats_within_ms / 1e3):
        started = time.perf_counter()
        batch = [incoming(e) for e in events]
        progress.started(AGENT, time.time())
        metrics.batch_size.labels(AGENT).observe(len(batch))
        for attempt in range(ATTEMPTS):
            try:
                await learner.learn(batch)
                break
            except Exception:
                if attempt + 1 == ATTEMPTS:
                    log.exception("send-time learning gave up on a batch of %d", len(batch))
                    metrics.agent_errors.labels(AGENT).inc()
                else:
                    await asyncio.sleep(0.2 * (attempt + 1))
        progress.finished(AGENT, time.time())
        metrics.sendtime.batch_seconds.labels(AGENT).observe(time.perf_counter() - started)
