"""A table recovery that stops receiving is sought back and resumed.

Faust's recovery reads each assigned changelog partition from its start (the in-memory
store keeps no offsets) up to the highwater it noted at the assignment, and the worker is
not ready until every one is read. In the rebalance drill a worker that had held a
partition, lost it and got it back a few seconds later sometimes never received a single
record of one such partition: the recovery logged "No event received for active tp"
every 5 s and the worker stayed in recovery (no answers, no counts) until it was killed.
Whether the partition's fetch position or Faust's read offset was left behind from before
the rebalance, or the partition stayed paused, the remedy is the same: seek it to where
the recovery stands (`Consumer.seek_wait`, which also forgets the read offset that would
drop records below it) and resume it (`Consumer.resume_partitions`).

Private: `Recovery.in_recovery`, `active_tps`, `active_offsets`, `active_highwaters`,
`_active_events_received_at` and `_recovery_started_at` (checked against
`stream.worker.delivery.CHECKED_FAUST`). Nothing here changes what a recovery applies:
records it has read are not read twice (the seek is to the offset after the last one it
applied), and a record read twice would be applied idempotently anyway (a table value
is the latest record's).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from stream.worker.app import app, settings
from stream.worker.recovery_watch import stalled
from stream.worker.runtime import metrics

log = logging.getLogger(__name__)
CHECK_SECONDS = 5.0


@app.timer(interval=CHECK_SECONDS)  # type: ignore[untyped-decorator]
async def watch_recovery() -> None:
    if not settings.recovery_stall_seconds:
        return
    tables: Any = app.tables
    recovery = tables.recovery
    started = recovery._recovery_started_at
    if not recovery.in_recovery or started is None:
        return
    found = stalled(
        set(recovery.active_tps),
        recovery.active_offsets,
        recovery.active_highwaters,
        recovery._active_events_received_at,
        started,
        time.monotonic(),
        settings.recovery_stall_seconds,
    )
    if not found:
        return
    log.warning(
        "table recovery received nothing for %.0f s from %s; seeking back and resuming",
        settings.recovery_stall_seconds,
        ", ".join(f"{tp.topic}:{tp.partition}@{offset}" for tp, offset in sorted(found.items())),
    )
    metrics.recovery_restarts.inc(len(found))
    await app.consumer.seek_wait(found)
    app.consumer.resume_partitions(set(found))
    for tp in found:  # the next stall is counted from now
        recovery._active_events_received_at[tp] = time.monotonic()
