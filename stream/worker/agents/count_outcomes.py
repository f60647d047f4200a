"""The stats agent: sends, clicks and conversions, and the daily job's corrections ->
`account_to_stats`.

One agent reads all four topics so that one writer owns the table (concurrency 1): a
second writer could read a value, await Redis, and overwrite a newer one. After every
assignment each partition resumes from the ledgers (`stream.worker.resume`); a batch a
rebalance overtakes changes nothing (`stream.worker.delivery.Ownership`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from stream.wire.envelope import Incoming
from stream.worker import resume
from stream.worker.app import app, settings
from stream.worker.delivery import Ownership, hold_back, mark_read, with_missing
from stream.worker.runtime import (
    confirm_writes,
    incoming,
    metrics,
    progress,
    publish,
    read_missing,
    runtime,
)
from stream.worker.tables import account_to_stats
from stream.worker.topics import OUTCOME_KINDS, outcome_topics

log = logging.getLogger(__name__)

AGENT = "count_outcomes"
quiet = resume.Quiet(OUTCOME_KINDS, settings.partitions)


def starts(mine: Collection[int]) -> resume.Starts:
    found = resume.stats_starts(account_to_stats, OUTCOME_KINDS, mine, settings.partitions)
    quiet.resumed(found)
    return found


continuity = resume.follow(app, account_to_stats, OUTCOME_KINDS, starts, AGENT, metrics)
owner = Ownership(app)
lock = asyncio.Lock()  # one writer: the agent and its timer take turns


@app.agent(outcome_topics, concurrency=1)
async def count_outcomes(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(settings.stats_batch, settings.stats_within_ms / 1e3):
        token, current = owner.take(events)
        if not current:
            metrics.rebalance_dropped.labels(AGENT).inc(len(events))
            continue
        async with lock:
            batch = [incoming(e) for e in current]
            jumps = continuity.check(batch)
            try:
                if jumps:  # messages went missing before they reached us: read them ourselves
                    batch = await with_missing(batch, jumps, read_missing)
                handled = await in_parts(token, batch)
            except BaseException:  # not committed, and read again
                hold_back(current)
                continuity.rewind(resume.unapplied(batch, jumps))
                raise
            if handled and jumps:
                mark_read(app, jumps, batch)


@app.timer(interval=resume.SWEEP_SECONDS)  # type: ignore[untyped-decorator]
async def sweep_count_outcomes() -> None:
    await resume.sweep(app, continuity, lock, in_parts, read_missing)
    if quiet.due(continuity):
        async with lock:
            token, _ = owner.take([])
            stamped = quiet.stamped(account_to_stats, continuity)
            if stamped and owner.holds(token):
                log.info("stamped %d quiet accounts' ledgers", len(stamped))
                for key, ledger in stamped.items():
                    account_to_stats[key] = ledger
                await confirm_writes(account_to_stats)


async def in_parts(token: int, batch: list[Incoming]) -> bool:
    """Apply a batch in parts of at most CS_STATS_BATCH (a read-back can be long); each
    part's ledgers are stamped only below what the later parts still hold."""
    size = settings.stats_batch
    parts = [batch[i : i + size] for i in range(0, len(batch), size)]
    laters: list[dict[tuple[str, int], int]] = [{}]  # per part, the firsts of the parts after
    for part in reversed(parts[1:]):
        firsts = resume.firsts(part)
        laters.append(
            {**laters[-1], **{tp: min(o, laters[-1].get(tp, o)) for tp, o in firsts.items()}}
        )
    for part, later in zip(parts, reversed(laters), strict=True):
        if not await handle(token, part, later):
            return False
    return True


async def handle(
    token: int, batch: list[Incoming], later: dict[tuple[str, int], int] | None = None
) -> bool:
    """Apply a batch; False when a rebalance began meanwhile (nothing changed)."""
    await account_to_stats.ready_to_write()
    progress.started(AGENT, time.time())
    metrics.batch_size.labels(AGENT).observe(len(batch))
    try:
        updates, letters = await runtime.ingestion.ingest(batch)
    except Exception as exc:
        log.exception("stats batch failed; dead-lettering it")
        metrics.agent_errors.labels(AGENT).inc()
        updates, letters = {}, [runtime.ingestion.internal_error(m, exc) for m in batch]
    if not owner.holds(token):  # a rebalance began: the next holder reads these again
        metrics.rebalance_dropped.labels(AGENT).inc(len(batch))
        progress.finished(AGENT, time.time())
        return False
    for key, ledger in updates.items():
        stamped = resume.stamp(ledger, key, OUTCOME_KINDS, settings.partitions, continuity, later)
        account_to_stats[key] = stamped
    await publish(letters)
    await confirm_writes(account_to_stats)  # stored before the batch is acknowledged
    progress.finished(AGENT, time.time())
    return True
