"""In-memory stores that fail on demand, as Redis does: down (refuses at once), frozen
(never answers) or back empty (restarted without its data)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Literal

from stream.handlers.dedup import Seen, Sink
from stream.handlers.stores import DedupRow, MemoryCooldowns, Pair, RecordsLost, Sent

Mode = Literal["up", "down", "frozen"]


class Outage:
    """What every store sharing it does now; `calls` counts the calls that reached it."""

    def __init__(self) -> None:
        self.mode: Mode = "up"
        self.calls = 0

    async def enter(self) -> None:
        self.calls += 1
        if self.mode == "down":
            raise ConnectionError("refused")
        if self.mode == "frozen":
            await asyncio.Event().wait()


class FlakyCooldowns:
    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self.inner = MemoryCooldowns()
        self.recorded: list[Sent] = []

    def wipe(self) -> None:
        self.inner = MemoryCooldowns()

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        await self.outage.enter()
        return await self.inner.last_sent(pairs)

    async def record(self, sends: Sequence[Sent]) -> None:
        await self.outage.enter()
        self.recorded.extend(sends)
        await self.inner.record(sends)


class FlakyDedup:
    """A `RestorableDedup` in memory: first positions, partition marks, refill tokens."""

    def __init__(self, outage: Outage, marked: bool = True) -> None:
        self.outage = outage
        self.marked = marked
        self.seen: dict[tuple[str, str, str], str] = {}
        self.marks: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.ttls: dict[tuple[str, str, str], float] = {}

    def wipe(self) -> None:
        self.seen, self.marks, self.tokens, self.ttls = {}, set(), {}, {}

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        await self.outage.enter()
        lost = sorted({p.rsplit(":", 1)[0] for p in positions} - self.marks)
        out = []
        for key, position in zip(
            zip(account_ids, kinds, event_ids, strict=True), positions, strict=True
        ):
            first = self.seen.setdefault(key, position)
            out.append(first != position)
        if self.marked and lost:
            raise RecordsLost(lost)
        return out

    async def begin(self, partition: str) -> str:
        await self.outage.enter()
        self.tokens[partition] = f"token-{len(self.tokens)}"
        return self.tokens[partition]

    async def forget(self, keys: Sequence[tuple[str, str, str]]) -> None:
        await self.outage.enter()
        for key in keys:
            self.seen.pop(key, None)

    async def restore(self, rows: Sequence[DedupRow]) -> None:
        await self.outage.enter()
        for account, kind, event_id, position, ttl in rows:
            if self.seen.setdefault((account, kind, event_id), position) == position:
                self.ttls[account, kind, event_id] = ttl

    async def finish(self, partition: str, token: str) -> bool:
        await self.outage.enter()
        if self.tokens.get(partition) != token:
            return False
        self.marks.add(partition)
        return True


class ListHistory:
    """An `EventHistory` over lists: topic -> partition -> [(offset, account, event_id,
    creative, age)]; `during` runs before each chunk (to fail a store mid-refill)."""

    def __init__(
        self, records: dict[tuple[str, int], list[tuple[int, str, str, str, float]]]
    ) -> None:
        self.records = records
        self.asked: list[tuple[dict[str, int], float]] = []
        self.during: list[object] = []
        self.chunk = 2

    async def replay(self, stops: Mapping[str, int], window_seconds: float, sink: Sink) -> int:
        self.asked.append((dict(stops), window_seconds))
        read = 0
        for tp, stop in stops.items():
            topic, partition = tp.rsplit(":", 1)
            rows: list[Seen] = [
                (account, event_id, creative, offset, age)
                for offset, account, event_id, creative, age in self.records.get(
                    (topic, int(partition)), []
                )
                if offset < stop and age <= window_seconds
            ]
            for start in range(0, len(rows), self.chunk):
                if self.during:
                    action = self.during.pop(0)
                    if callable(action):
                        action()
                await sink(tp, rows[start : start + self.chunk])
            read += len(rows)
        return read
