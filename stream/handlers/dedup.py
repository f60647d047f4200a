"""An `event_id` dedup that never lets a duplicate count: it waits for its store, and
refills a store that lost its records before answering again.

`GuardedDedup` wraps a `DedupStore` (Redis in a worker). A batch is only folded once the
store has answered for every one of its events:

- Store failing or slower than `timeout`: the batch waits and is asked again every
  `retry_seconds` (`state` is "waiting"). The stats agent holds the batch meanwhile, so
  nothing is acknowledged and consumer lag grows; `/health`, a metric and an alert say so.
- Store back without its records (restarted empty, flushed): a `RestorableDedup` marks
  each source partition it holds and raises `RecordsLost` for a batch touching one that
  is not marked. Each such partition is refilled from the event topic (the record of
  what was counted) before the batch is asked again (`state` is "refilling"): what the
  lost batch wrote is forgotten, every valid event of the partition from the start of
  the dedup window up to the batch's first offset is written at its first position with
  what is left of its TTL, and the partition is marked. Everything before the batch's
  first offset has been applied (the stats agent reads each partition in order), so the
  store then answers as if it had never lost anything.

"Valid" is what the stats agent asks about: an event that decodes and names a creative
of its account's catalog; the history reader decodes as the daily job does
(`stream.job.recompute.decode_event`) and the catalog is checked here.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeGuard, TypeVar

from stream.handlers.deadline import within
from stream.handlers.stores import DedupRow, DedupStore, RecordsLost, RestorableDedup
from stream.ops.metrics import Metrics

log = logging.getLogger(__name__)
State = Literal["ok", "waiting", "refilling"]
# One event read back from a topic: (account_id, event_id, creative_id, offset, age in s)
Seen = tuple[str, str, str, int, float]
Sink = Callable[[str, Sequence[Seen]], Coroutine[Any, Any, None]]
T = TypeVar("T")


class EventHistory(Protocol):
    async def replay(self, stops: Mapping[str, int], window_seconds: float, sink: Sink) -> int:
        """Hand `sink`, per "topic:partition" of `stops`, in offset order and in chunks,
        the events that decode, from the first written in the last `window_seconds` up
        to the partition's stop offset (excluded); return how many were read."""


class GuardedDedup:
    """A `DedupStore` whose answers are always the store's own, however long that takes."""

    def __init__(
        self,
        store: DedupStore,
        metrics: Metrics,
        *,
        kinds: Mapping[str, str] | None = None,
        creatives: Callable[[bytes], frozenset[str] | None] | None = None,
        history: EventHistory | None = None,
        ttl_seconds: float = 14 * 86400,
        timeout: float = 5.0,
        retry_seconds: float = 0.5,
        clock: Callable[[], float] = _time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._kinds = kinds or {}
        self._creatives = creatives or (lambda key: None)
        self._history = history
        self._ttl = ttl_seconds
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._state: State = "ok"
        self._since: float | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def since(self) -> float | None:
        """When the current wait or refill began (None when the store answers)."""
        return self._since

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        args = (account_ids, kinds, event_ids, positions)
        while True:
            try:
                flags = await within(self._store.duplicates(*args), self.timeout)
            except RecordsLost as lost:
                if await self._refilled(lost.partitions, *args):
                    continue
            except Exception as exc:
                self._wait(exc)
            else:
                self._answered()
                return flags
            await self._sleep(self.retry_seconds)

    def _wait(self, exc: BaseException) -> None:
        if self._state != "waiting":
            log.warning(
                "dedup store unavailable (%s); events wait until it answers",
                type(exc).__name__,
            )
            self._enter("waiting")
        self._metrics.dedup_retries.inc()

    def _enter(self, state: State) -> None:
        if self._since is None:
            self._since = self._clock()
        self._state = state
        self._metrics.dedup_waiting.set(1 if state == "waiting" else 0)
        self._metrics.dedup_refilling.set(1 if state == "refilling" else 0)

    def _answered(self) -> None:
        if self._since is not None:
            log.warning("dedup store answers again after %.1f s", self._clock() - self._since)
        self._since = None
        self._state = "ok"
        self._metrics.dedup_waiting.set(0)
        self._metrics.dedup_refilling.set(0)

    async def _refilled(
        self,
        partitions: Sequence[str],
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> bool:
        """Refill every lost partition; False (the batch waits) when that failed."""
        store = self._store
        if self._history is None or not _restorable(store):
            self._wait(RuntimeError("lost records and no way to refill them"))
            return False
        self._enter("refilling")
        stops: dict[str, int] = {}
        keys: dict[str, list[tuple[str, str, str]]] = {}
        for account, kind, event_id, position in zip(
            account_ids, kinds, event_ids, positions, strict=True
        ):
            tp, at = position.rsplit(":", 1)
            offset = int(at.split("/", 1)[0])  # "offset/index" for an item of a batch
            stops[tp] = min(stops.get(tp, offset), offset)
            keys.setdefault(tp, []).append((account, kind, event_id))
        lost = {tp: stops[tp] for tp in partitions}
        try:
            rows = await self._refill(store, lost, keys)
        except Exception as exc:
            log.warning("refilling the dedup records of %s failed: %r", ", ".join(lost), exc)
            self._metrics.dedup_refills.labels("failed").inc(len(lost))
            self._wait(exc)
            return False
        log.warning("refilled %d dedup records of %s from the topics", rows, ", ".join(lost))
        self._metrics.dedup_refills.labels("completed").inc(len(lost))
        return True

    async def _refill(
        self,
        store: RestorableDedup,
        stops: Mapping[str, int],
        batch: Mapping[str, list[tuple[str, str, str]]],
    ) -> int:
        """One read of every lost partition: forget what the batch wrote, write the
        history, then mark each partition whose refill token is still there."""
        assert self._history is not None
        tokens = {tp: await self._timed(store.begin(tp)) for tp in stops}
        for tp in stops:
            await self._timed(store.forget(batch[tp]))
        written = 0

        async def sink(tp: str, seen: Sequence[Seen]) -> None:
            nonlocal written
            topic = tp.rsplit(":", 1)[0]
            rows = self._rows(tp, self._kinds.get(topic, topic), seen)
            if rows:
                await self._timed(store.restore(rows))
            written += len(rows)
            self._metrics.dedup_refill_records.inc(len(rows))

        await self._history.replay(stops, self._ttl, sink)
        for tp, token in tokens.items():
            if not await self._timed(store.finish(tp, token)):
                raise RuntimeError(f"the dedup store restarted while {tp} was refilled")
        return written

    def _rows(self, tp: str, kind: str, seen: Sequence[Seen]) -> list[DedupRow]:
        rows: list[DedupRow] = []
        known: dict[str, frozenset[str] | None] = {}
        for account, event_id, creative, offset, age in seen:
            if account not in known:
                known[account] = self._creatives(account.encode())
            creatives = known[account]
            left = self._ttl - age
            if creatives is not None and creative in creatives and left > 0:
                rows.append((account, kind, event_id, f"{tp}:{offset}", left))
        return rows

    async def _timed(self, call: Awaitable[T]) -> T:
        return await within(call, self.timeout)


def _restorable(store: DedupStore) -> TypeGuard[RestorableDedup]:
    return all(hasattr(store, name) for name in ("begin", "forget", "restore", "finish"))
