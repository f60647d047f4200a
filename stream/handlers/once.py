"""One answer per request, across crashes and rebalances: which requests of a batch to
decide, which get again the answer they already got, which to skip, and the record to
keep per request partition.

The selection agent keeps one `Answered` record per request partition (the
`partition-to-answers` table; that agent is its only writer, and the table's changelog
partition is the request partition, so the record moves with it). Per batch:

1. `sort_out`: a request above the partition's `through` is new; one in the range of
   the record's last batch gets that batch's kept answers again (all of them, the same
   bytes); an older one was answered by a batch whose responses are known to be stored,
   and is skipped. So is an offset seen earlier in the same batch.
2. The agent decides the new requests.
3. `next_records`: once the previous batch's responses are stored, the new record of
   each partition with new requests (`through` its highest offset, the batch's answers
   kept) is stored, and the agent waits until the broker has it.
4. The responses are published, and the batch is acknowledged. Faust flushes its
   producer before every commit, so the group never commits a request whose response
   is not stored.

A crash before 3 leaves the batch unanswered and delivers it again: it is decided then,
once. A crash after 3 and before the commit delivers it again too: the record holds it,
and the kept answers go out again. Anything delivered after the next batch's record is
stored is skipped (its answers were stored first). The record therefore also says where
the agent resumes after an assignment: `through + 1`, whatever the consumer group
committed.

>>> from stream.wire.envelope import Incoming
>>> record = Answered(5, 6, (Outgoing("responses", b"acme", b"ok"),))
>>> batch = [Incoming(b"", b"acme", "requests", 0, o) for o in (4, 5, 7, 7)]
>>> sorted_ = sort_out(batch, {0: record}.get)
>>> [m.offset for m in sorted_.fresh[0]], sorted_.again == {0: record}, sorted_.skipped
([7], True, 2)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from stream.wire.answered import Answered
from stream.wire.envelope import Incoming, Outgoing


@dataclass(frozen=True, slots=True)
class Sorted:
    """A batch sorted by `sort_out`: per partition, the requests to decide and the
    record whose answers go out again; how many requests are skipped or answered
    again."""

    fresh: Mapping[int, Sequence[Incoming]]
    again: Mapping[int, Answered]
    skipped: int
    repeated: int

    def requests(self) -> list[Incoming]:
        return [m for messages in self.fresh.values() for m in messages]

    def resend(self) -> list[Outgoing]:
        return [answer for record in self.again.values() for answer in record.answers]


def sort_out(batch: Iterable[Incoming], record_of: Callable[[int], Answered | None]) -> Sorted:
    """Sort a batch of one request topic's messages by what each needs."""
    fresh: dict[int, list[Incoming]] = defaultdict(list)
    again: dict[int, Answered] = {}
    high: dict[int, int] = {}
    skipped = repeated = 0
    records: dict[int, Answered | None] = {}  # one table read per partition
    for message in batch:
        p = message.partition
        if p not in records:
            records[p] = record_of(p)
        record = records[p]
        if p not in high:
            high[p] = record.through if record is not None else -1
        if message.offset > high[p]:
            fresh[p].append(message)
            high[p] = message.offset
        elif record is not None and record.holds(message.offset):
            again[p] = record
            repeated += 1
        else:
            skipped += 1
    return Sorted(dict(fresh), again, skipped, repeated)


def next_records(
    sorted_: Sorted, answers: Iterable[Outgoing], partition_of: Callable[[Outgoing], int | None]
) -> dict[int, Answered]:
    """The record to keep for each partition with new requests: through its highest
    offset, with this batch's answers (and any kept answers sent again, whose requests
    it still holds). An answer `partition_of` cannot place goes to every record."""
    placed: dict[int, list[Outgoing]] = defaultdict(list)
    for answer in answers:
        p = partition_of(answer)
        for q in [p] if p is not None and p in sorted_.fresh else sorted_.fresh:
            placed[q].append(answer)
    out = {}
    for p, requests in sorted_.fresh.items():
        kept = sorted_.again.get(p)
        first = kept.first if kept is not None else min(m.offset for m in requests)
        previous = kept.answers if kept is not None else ()
        out[p] = Answered(first, max(m.offset for m in requests), previous + tuple(placed[p]))
    return out
