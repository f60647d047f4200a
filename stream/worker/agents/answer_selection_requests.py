"""The selection agent: selection requests -> selection responses, in small batches, one
answer per request across crashes and rebalances (`stream.handlers.once`): a request
delivered again gets the answer it already got, or none, never a second decision.

The answers that need nothing more are published first; requests whose reply topic is
being checked (`stream.handlers.reply_to`) are answered right after, within the check's
bound, so a missing reply topic never holds up the batch's other answers. Their answers
join the partition's record when they are ready (a crash in between leaves those
requests unanswered, never answered twice)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from stream.adapters.producer import partition_for
from stream.handlers import once
from stream.handlers.selection import Held
from stream.wire import answered
from stream.wire.envelope import Incoming, Outgoing
from stream.worker import resume
from stream.worker.app import app, settings
from stream.worker.delivery import Ownership, hold_back, mark_read, with_missing
from stream.worker.runtime import confirm_writes, incoming, metrics, progress, read_missing, runtime
from stream.worker.tables import partition_to_answers
from stream.worker.topics import selection_requests_topic

log = logging.getLogger(__name__)

AGENT = "answer_selection_requests"
REQUESTS = settings.topic("selection-requests")
DEAD_LETTERS = settings.topic("dead-letters")
continuity = resume.follow(
    app,
    partition_to_answers,
    [REQUESTS],
    lambda mine: resume.request_starts(partition_to_answers, REQUESTS, mine),
    AGENT,
    metrics,
)
owner = Ownership(app)
# requests per handled chunk: a partition's record keeps the chunk's responses (~400 bytes
# each), well below the producer's 1 MB request limit
KEPT = 1000
_decoded: dict[int, tuple[bytes, answered.Answered]] = {}


def record_of(partition: int) -> answered.Answered | None:
    """The partition's answered record, decoded once per change."""
    raw = partition_to_answers.get(str(partition).encode())
    if raw is None:
        return None
    cached = _decoded.get(partition)
    if cached is None or cached[0] is not raw:
        cached = _decoded[partition] = (raw, answered.loads(raw))
    return cached[1]


def partition_of(answer: Outgoing) -> int | None:
    """The request partition of a response: its key is the account, like the request's."""
    return partition_for(answer.key, settings.partitions) if answer.key else None


async def decide(requests: Sequence[Incoming]) -> tuple[list[Outgoing], Held | None]:
    """The answers ready now, and the requests waiting for their reply topic's check."""
    if not requests:
        return [], None
    try:
        return await runtime.selection.answer_ready(requests)
    except Exception as exc:
        return failed(requests, exc), None


async def decide_held(held: Held) -> list[Outgoing]:
    try:
        return await runtime.selection.answer_held(held)
    except Exception as exc:
        return failed(held.messages, exc)


def failed(batch: Sequence[Incoming], exc: Exception) -> list[Outgoing]:
    log.exception("selection batch failed; answering every request with an error")
    metrics.agent_errors.labels(AGENT).inc()
    return runtime.selection.internal_error(batch, exc)


_unstored: list[asyncio.Future[Any]] = []  # responses published and not yet confirmed


async def publish_soon(messages: list[Outgoing]) -> None:
    """Publish without waiting for the broker: Faust flushes the producer before every
    commit, so a request is never acknowledged to the group before its response is
    stored, and `stored` waits for them before the next record replaces these answers."""
    producer: Any = app.producer
    for m in messages:
        _unstored.append(await producer.send(m.topic, m.key, m.value, None, None, None))


async def stored() -> None:
    """Wait until every response published so far is stored; a failure is logged (those
    requests go unanswered, never answered twice)."""
    sent = list(_unstored)
    _unstored.clear()
    for result in await asyncio.gather(*sent, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("a selection response was not stored: %r", result)
            metrics.agent_errors.labels(AGENT).inc()


async def keep(sorted_: once.Sorted, out: list[Outgoing]) -> once.Sorted:
    """Store each partition's answered record before anything is published; returns the
    batch as the records now hold it (for the held requests' answers to join). The
    answers a record replaces are stored first: a request below the new record's range
    counts as answered."""
    responses = [o for o in out if o.topic != DEAD_LETTERS]
    await stored()
    await partition_to_answers.ready_to_write()
    records = once.next_records(sorted_, responses, partition_of)
    for p, record in records.items():
        raw = answered.dumps(record)
        partition_to_answers[str(p).encode()] = raw
        _decoded[p] = (raw, record)
    await confirm_writes(partition_to_answers)
    return once.Sorted(sorted_.fresh, records, 0, 0)


lock = asyncio.Lock()  # one writer: the agent and its sweep take turns


@app.agent(selection_requests_topic, concurrency=1)
async def answer_selection_requests(stream):  # type: ignore[no-untyped-def]
    runtime.cluster_topics.warm_up()  # the first reply topic's check then waits for no connect
    async for events in stream.take_events(settings.select_batch, settings.select_within_ms / 1e3):
        started = time.perf_counter()
        token, current = owner.take(events)
        if not current:
            metrics.rebalance_dropped.labels(AGENT).inc(len(events))
            continue
        async with lock:
            batch = [incoming(e) for e in current]
            jumps = continuity.check(batch)
            try:
                if jumps:  # requests skipped before the agent would never be answered
                    batch = await with_missing(batch, jumps, read_missing)
                handled = [
                    await handle(token, batch[i : i + KEPT]) for i in range(0, len(batch), KEPT)
                ]
            except BaseException:  # not committed, and read again
                hold_back(current)
                continuity.rewind(resume.unapplied(batch, jumps))
                raise
            if all(handled) and jumps:
                mark_read(app, jumps, batch)
        metrics.selection_latency.observe(time.perf_counter() - started)


@app.timer(interval=resume.SWEEP_SECONDS)  # type: ignore[untyped-decorator]
async def sweep_selection_requests() -> None:
    await resume.sweep(app, continuity, lock, handle, read_missing)


def _timed(step: str, since: float) -> float:
    """Observe the step that began at `since`; returns now, when the next one begins."""
    now = time.perf_counter()
    metrics.answer_step.labels(step).observe(now - since)
    return now


async def handle(token: int, batch: list[Incoming]) -> bool:
    """Answer a batch once; False when a rebalance began meanwhile (nothing published)."""
    progress.started(AGENT, time.time())
    metrics.batch_size.labels(AGENT).observe(len(batch))
    sorted_ = once.sort_out(batch, record_of)
    metrics.redelivered_requests.labels("skipped").inc(sorted_.skipped)
    metrics.redelivered_requests.labels("answered_again").inc(sorted_.repeated)
    resume.tally.update(skipped=sorted_.skipped, answered_again=sorted_.repeated)
    step = time.perf_counter()
    out, waiting = await decide(sorted_.requests())
    step = _timed("decide", step)
    owned = owner.holds(token)
    if not owned:  # a rebalance began: the next holder answers them
        metrics.rebalance_dropped.labels(AGENT).inc(len(batch))
    else:
        kept = await keep(sorted_, out) if sorted_.fresh else sorted_
        step = _timed("store_record", step)
        await publish_soon(out + sorted_.resend())
        _timed("publish", step)
        if waiting is not None:
            late = await decide_held(waiting)
            await keep(kept, late)
            await publish_soon(late)
    progress.finished(AGENT, time.time())
    return owned
