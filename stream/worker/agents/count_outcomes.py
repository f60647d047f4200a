"""The stats agent: sends, clicks and conversions, and the daily job's corrections ->
`account_to_stats`.

One agent reads all four topics so that one writer owns the table (concurrency 1): a
second writer could read a value, await Redis, and overwrite a newer one.
"""

from __future__ import annotations

import logging
import time

from stream.worker.app import app, settings
from stream.worker.delivery import mark_read, with_missing
from stream.worker.runtime import (
    confirm_writes,
    incoming,
    metrics,
    progress,
    publish,
    read_missing,
    runtime,
    watched_continuity,
)
from stream.worker.tables import account_to_stats
from stream.worker.topics import outcome_topics

log = logging.getLogger(__name__)


continuity = watched_continuity()


@app.agent(outcome_topics, concurrency=1)
async def count_outcomes(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(settings.stats_batch, settings.stats_within_ms / 1e3):
        batch = [incoming(e) for e in events]
        jumps = continuity.check(batch)
        if jumps:  # messages went missing before they reached us: read them ourselves
            batch = await with_missing(batch, jumps, read_missing)
        await account_to_stats.ready_to_write()
        progress.started("count_outcomes", time.time())
        metrics.batch_size.labels("count_outcomes").observe(len(batch))
        try:
            updates, letters = await runtime.ingestion.ingest(batch)
            for key, ledger in updates.items():
                account_to_stats[key] = ledger
        except Exception as exc:
            log.exception("stats batch failed; dead-lettering it")
            metrics.agent_errors.labels("count_outcomes").inc()
            letters = [runtime.ingestion.internal_error(m, exc) for m in batch]
        await publish(letters)
        await confirm_writes(account_to_stats)  # stored before the batch is acknowledged
        if jumps:
            mark_read(app, jumps)
        progress.finished("count_outcomes", time.time())
