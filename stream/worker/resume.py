"""Where each partition resumes after an assignment: from the durable record of what was
applied or answered, never from a group commit ahead of it.

The group's committed offset is Faust's bookkeeping; the truth is in the tables, whose
changelogs are recovered before the stream partitions resume:

- events and corrections: per topic-partition, the lowest applied offset + 1 over the
  stats ledgers of the accounts in that partition (`stats_starts`). The stats agent
  stamps every ledger it writes with how far it has read each of the account's
  topic-partitions (`stamp`, `selector.ingest.advance`), so an account quiet in one
  topic does not hold the others back;
- selection requests: the answered-through record of the partition + 1
  (`stream.handlers.once`);
- catalog topics: the lowest applied offset + 1 over the catalog values of the accounts in
  that partition (`catalog_starts`).

Once a table is recovered (Faust calls its recover callbacks after every recovery,
before the streams resume) `follow` tells the agent's continuity where each of its
partitions resumes. When the group's commit is ahead, the first message comes after
that point, and the agent reads the messages in between from the partition and applies
them first (`stream.worker.continuity`); when it is behind, the re-deliveries are
skipped by the same record. A partition with no record at all resumes from the commit.
When no message comes to show such a hole, a timer finds it (`sweep`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from selector.ingest import Ledger, advance, partition_key
from stream.adapters.producer import partition_for
from stream.ops.metrics import Metrics
from stream.wire import answered
from stream.wire.envelope import Incoming
from stream.worker.continuity import Continuity, Fetch, Jump, TopicPartition
from stream.worker.delivery import ConfirmedTable, assigned, committed_offset

log = logging.getLogger(__name__)

Starts = dict[TopicPartition, int]
# for /health: what each agent follows, and since the start how often it resumed behind
# the group's commit and how many requests came again after they were answered
_followed: list[Continuity] = []
tally: Counter[str] = Counter()


def health(app: Any) -> dict[str, Any]:
    """Resumes from the durable record since the worker started, and the partitions
    whose commit has passed messages their agent has not read back yet."""
    behind = sum(len(c.behind(lambda t, p: committed_offset(app, t, p))) for c in _followed)
    return {
        "resumes_from_record": tally["resumed"],
        "redelivered_requests_skipped": tally["skipped"],
        "redelivered_requests_answered_again": tally["answered_again"],
        "partitions_to_read_back": behind,
    }


def lowest(
    items: Iterable[tuple[bytes, Mapping[str, int]]],
    topics: Iterable[str],
    partitions: Collection[int],
    count: int,
) -> Starts:
    """Per topic-partition of `partitions`, the lowest applied offset + 1 over the keys
    (accounts) that hash to it, from each key's applied offsets ("topic:partition")."""
    names = tuple(topics)
    starts: Starts = {}
    for key, applied in items:
        p = partition_for(key, count)
        if p not in partitions:
            continue
        for topic in names:
            start = applied.get(partition_key(topic, p), -1) + 1
            starts[topic, p] = min(starts.get((topic, p), start), start)
    return starts


def stats_starts(
    table: Any, topics: Iterable[str], partitions: Collection[int], count: int
) -> Starts:
    items = ((key, ledger.applied) for key, ledger in table.items() if ledger is not None)
    return lowest(items, topics, partitions, count)


def catalog_starts(
    table: Any, topics: Iterable[str], partitions: Collection[int], count: int
) -> Starts:
    items = ((key, value.get("applied", {})) for key, value in table.items() if value)
    return lowest(items, topics, partitions, count)


def request_starts(table: Any, topic: str, partitions: Collection[int]) -> Starts:
    starts: Starts = {}
    for p in partitions:
        raw = table.get(str(p).encode())
        if raw is not None:
            starts[topic, p] = answered.loads(raw).through + 1
    return starts


def stamp(
    ledger: Ledger,
    key: bytes,
    topics: Iterable[str],
    count: int,
    through: Continuity,
    below: Mapping[TopicPartition, int] | None = None,
) -> Ledger:
    """The ledger with the applied offset of each of the account's topic-partitions
    raised to how far the agent has read it (everything up to there is in the ledger),
    but below `below`'s offset for a topic-partition whose messages from there on are
    read and not yet applied (the rest of a batch handled in parts)."""
    p = partition_for(key, count)
    offsets = {}
    for topic in topics:
        seen = through.through(topic, p)
        if below and (topic, p) in below and seen is not None:
            seen = min(seen, below[topic, p] - 1)
        if seen is not None:
            offsets[partition_key(topic, p)] = seen
    return advance(ledger, offsets)


def firsts(messages: Iterable[Incoming]) -> dict[TopicPartition, int]:
    """The lowest offset of each topic-partition among `messages`."""
    out: dict[TopicPartition, int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        out[tp] = min(out.get(tp, m.offset), m.offset)
    return out


def unapplied(batch: Iterable[Incoming], jumps: Iterable[Jump]) -> dict[TopicPartition, int]:
    """Per topic-partition, the lowest offset of `batch` and of the messages its `jumps`
    were to read: where a batch whose handling failed is to be read again from."""
    out = firsts(batch)
    for j in jumps:
        tp = (j.topic, j.partition)
        out[tp] = min(out.get(tp, j.expected), j.expected)
    return out


class Quiet:
    """Keeps each partition's resume point within `lag` offsets of how far the stats
    agent has read it: an account with no event for that long in one of its
    topic-partitions would otherwise hold the resume point back (everything after it is
    read again, and skipped, at the next assignment). `due` says when a pass is worth it;
    `stamped` gives the ledgers to write again, raised to how far the agent has read."""

    def __init__(self, topics: Iterable[str], count: int, lag: int = 500_000) -> None:
        self.topics, self.count, self.lag = tuple(topics), count, lag
        self.floors: dict[TopicPartition, int] = {}  # a lower bound of the lowest applied
        self._partition: dict[bytes, int] = {}

    def resumed(self, starts: Starts) -> None:
        self.floors = {tp: start - 1 for tp, start in starts.items()}

    def due(self, through: Continuity) -> bool:
        return any(
            (seen := through.through(*tp)) is not None and seen - floor > self.lag
            for tp, floor in self.floors.items()
        )

    def stamped(self, table: Any, through: Continuity) -> dict[bytes, Ledger]:
        """Ledgers more than half the lag behind, stamped; the floors raised to match."""
        marks = {tp: seen - self.lag // 2 for tp in self.floors if (seen := through.through(*tp))}
        out = {}
        for key, ledger in table.items():
            if ledger is None:
                continue
            p = self._partition.get(key)
            if p is None:
                p = self._partition[key] = partition_for(key, self.count)
            if any(
                (t, p) in marks and ledger.applied.get(partition_key(t, p), -1) < marks[t, p]
                for t in self.topics
            ):
                out[key] = stamp(ledger, key, self.topics, self.count, through)
        self.floors.update(marks)
        return out


Handle = Callable[[int, list[Incoming]], Awaitable[Any]]
SWEEP_SECONDS = 2.0


async def sweep(
    app: Any, continuity: Continuity, lock: asyncio.Lock, handle: Handle, read: Fetch
) -> None:
    """Read and handle what the group's commit has passed without the agent seeing it.

    The continuity check sees a hole only when a later message arrives; the messages of
    a batch a rebalance overtook, or a resume point behind the commit, in a partition
    that then goes quiet would wait for the next message. A timer calls this; it takes
    the agent's lock, so the table keeps one writer.
    """
    if app.rebalancing or not continuity.behind(lambda t, p: committed_offset(app, t, p)):
        return
    async with lock:
        if app.rebalancing:
            return
        token = app.rebalancing_count
        jumps = continuity.behind(lambda t, p: committed_offset(app, t, p))
        found = await asyncio.gather(*(read(j) for j in jumps))
        if app.rebalancing or app.rebalancing_count != token:
            return  # a rebalance came while reading: the new assignment starts over
        continuity.read_through(jumps)
        batch = [m for messages in found for m in messages]
        if batch:
            log.warning("read %d messages the group's commit had passed", len(batch))
            try:
                await handle(token, batch)
            except BaseException:
                continuity.rewind(unapplied(batch, jumps))
                raise


def follow(
    app: Any,
    table: ConfirmedTable,
    topics: Iterable[str],
    starts: Callable[[Collection[int]], Starts],
    agent: str,
    metrics: Metrics,
    *,
    contiguous: bool = True,
) -> Continuity:
    """A continuity check for `agent` over `topics`, told after every recovery of
    `table` where each assigned partition resumes, and started over for partitions
    this worker loses; at a revocation the table's writes in flight are waited for."""
    names = frozenset(topics)

    def count(topic: str, partition: int, jumped: bool) -> None:
        metrics.resumes.labels(agent, "record" if jumped else "committed").inc()
        tally["resumed"] += jumped

    continuity = Continuity(
        lambda topic, partition: committed_offset(app, topic, partition),
        contiguous=contiguous,
        on_resume=count,
    )

    async def recovered() -> None:
        mine = {p for topic, p in assigned(app) if topic in names}
        found = starts(mine)
        continuity.resume_at(found)
        at = ", ".join(f"{t}:{p}@{o}" for (t, p), o in sorted(found.items()))
        log.info("%s resumes %d partitions from the durable record: %s", agent, len(found), at)

    async def revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        gone = args[0] if args else kwargs.get("revoked", set())
        continuity.forget((tp.topic, tp.partition) for tp in gone)
        # every write begun before the rebalance is stored before this worker rejoins, so
        # the next holder of a partition recovers it (Faust's own flush may give up)
        await table.settle()

    _followed.append(continuity)
    table.count_ignored(metrics.stale_changelog_records.labels(table.name).inc)
    table.on_recover(recovered)
    app.on_partitions_revoked.connect(revoked)
    return continuity
