"""Cooldowns that survive an outage of their store.

`GuardedCooldowns` wraps a `CooldownStore` (Redis in a worker) and keeps, beside it, a
bounded in-process record of the sends this worker decided (`RecentSends`). Requests are
keyed by account, so one worker answers every request of its accounts' contacts: the
record alone knows their cooldowns for as long as it holds them.

- Store answering: its cooldowns merged with the record's (the record also covers a store
  that came back empty after a restart).
- Store failing or slower than `timeout` (stopped, SIGSTOPped, unreachable): the batch is
  answered from the record and marked degraded; the guard stops asking the store (no
  batch waits on a dead store) and keeps the writes it could not make.
- Meanwhile a background attempt every `retry_seconds` replays the kept writes, oldest
  first, each with what is left of its cooldown; when all are stored and the store
  answers a read, cooldowns are exact again.

Everything is bounded: the record by contacts (least recently written leave first) and
creatives per contact, the kept writes by count (the oldest are dropped and counted).
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stream.handlers.deadline import within
from stream.handlers.stores import CooldownStore, Pair, Sent
from stream.ops.metrics import Metrics

log = logging.getLogger(__name__)
State = Literal["exact", "degraded"]


@dataclass(frozen=True, slots=True)
class CooldownRead:
    """What a batch's cooldown lookup found: per pair creative_id -> last send time, and
    whether the store could not be asked (the record alone answered); and the stored
    profiles asked for with them (None: none, or the store could not be asked)."""

    last_sent: list[dict[str, float]]
    degraded: bool = False
    profiles: list[bytes | None] = field(default_factory=list)


class RecentSends:
    """(account, contact) -> creative -> time of the last send this worker decided, each
    contact kept until its longest cooldown ends; at most `max_contacts` contacts (the
    least recently written leave first) and `max_creatives` creatives per contact (the
    oldest send leaves first).

    >>> recent = RecentSends(max_contacts=2, clock=lambda: 100.0)
    >>> recent.add([("a", "x", "c1", 90.0, 60.0), ("a", "y", "c1", 95.0, 60.0)])
    >>> recent.add([("a", "z", "c2", 99.0, 60.0)])  # x leaves: least recently written
    >>> recent.lookup([("a", "x"), ("a", "z")])
    [{}, {'c2': 99.0}]
    """

    def __init__(
        self,
        max_contacts: int = 100_000,
        max_creatives: int = 16,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self.max_contacts = max_contacts
        self.max_creatives = max_creatives
        self._clock = clock
        # pair -> [expiry, {creative: time of its last send}], least recently written first
        self._entries: OrderedDict[Pair, list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, sends: Sequence[Sent]) -> None:
        now = self._clock()
        entries = self._entries
        for account_id, contact, creative, when, ttl in sends:
            if ttl <= 0:
                continue
            pair = (account_id, contact)
            entry = entries.get(pair)
            if entry is None:
                entries[pair] = [now + ttl, {creative: when}]
                continue
            entries.move_to_end(pair)
            entry[0] = max(entry[0], now + ttl)
            creatives = entry[1]
            if when >= creatives.get(creative, when):
                creatives[creative] = when
            if len(creatives) > self.max_creatives:
                del creatives[min(creatives, key=creatives.__getitem__)]
        while len(entries) > self.max_contacts:
            entries.popitem(last=False)

    def lookup(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        """Per pair, creative -> time of its last send (read-only: the record's own)."""
        now = self._clock()
        entries = self._entries
        out: list[dict[str, float]] = []
        for pair in pairs:
            entry = entries.get(pair)
            if entry is None:
                out.append({})
            elif entry[0] <= now:
                del entries[pair]
                out.append({})
            else:
                out.append(entry[1])
        return out


def merged(remote: list[dict[str, float]], local: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per pair, the later send time of each creative from either source."""
    out: list[dict[str, float]] = []
    for far, near in zip(remote, local, strict=True):
        if not near:
            out.append(far)
        elif not far:
            out.append(dict(near))
        else:
            row = dict(far)
            for creative, when in near.items():
                if when > row.get(creative, -1.0):
                    row[creative] = when
            out.append(row)
    return out


class GuardedCooldowns:
    """A `CooldownStore` that never fails and never waits longer than `timeout`."""

    def __init__(
        self,
        store: CooldownStore,
        metrics: Metrics,
        *,
        timeout: float = 0.25,
        retry_seconds: float = 1.0,
        max_contacts: int = 100_000,
        max_pending: int = 100_000,
        replay_chunk: int = 500,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.recent = RecentSends(max_contacts, clock=clock)
        self._pending: deque[tuple[Sent, float]] = deque(maxlen=max_pending)
        self._chunk = replay_chunk
        self._clock = clock
        self._degraded_since: float | None = None
        self._next_try = 0.0
        self._recovery: asyncio.Task[bool] | None = None

    @property
    def state(self) -> State:
        return "exact" if self._degraded_since is None else "degraded"

    @property
    def degraded_since(self) -> float | None:
        return self._degraded_since

    @property
    def pending(self) -> int:
        """Writes kept for the store while it does not answer."""
        return len(self._pending)

    async def read(self, pairs: Sequence[Pair], profiles: Sequence[Pair] = ()) -> CooldownRead:
        """The pairs' cooldowns, and the stored profiles of `profiles` (same round trip)."""
        local = self.recent.lookup(pairs)
        if self._degraded_since is None:
            try:
                remote, blobs = await within(
                    _with_profiles(self._store, pairs, profiles), self.timeout
                )
                return CooldownRead(merged(remote, local), profiles=blobs)
            except Exception as exc:
                self._degrade(exc)
        self._maybe_recover()
        missing: list[bytes | None] = [None] * len(profiles)
        return CooldownRead([dict(row) for row in local], degraded=True, profiles=missing)

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        return (await self.read(pairs)).last_sent

    async def record(self, sends: Sequence[Sent]) -> None:
        self.recent.add(sends)
        if self._degraded_since is None:
            try:
                await within(self._store.record(sends), self.timeout)
                return
            except Exception as exc:
                self._degrade(exc)
        self._keep(sends)
        self._maybe_recover()

    def _keep(self, sends: Sequence[Sent]) -> None:
        now = self._clock()
        kept = [(sent, now) for sent in sends if sent[4] > 0]
        dropped = max(0, len(self._pending) + len(kept) - (self._pending.maxlen or 0))
        self._pending.extend(kept)
        if dropped:
            self._metrics.cooldown_writes_dropped.inc(dropped)
        self._metrics.cooldown_writes_pending.set(len(self._pending))

    def _degrade(self, exc: BaseException) -> None:
        if self._degraded_since is None:
            log.warning(
                "cooldown store unavailable (%s); answering from this worker's own record",
                type(exc).__name__,
            )
            self._degraded_since = self._clock()
            self._next_try = self._degraded_since + self.retry_seconds
            self._metrics.cooldown_degraded.set(1)
            self._metrics.cooldown_store_failures.inc()

    def _maybe_recover(self) -> None:
        """Start a background recovery attempt when one is due and none runs."""
        if self._recovery is not None and not self._recovery.done():
            return
        if self._clock() < self._next_try:
            return
        self._recovery = asyncio.get_running_loop().create_task(self.recover())

    async def recover(self) -> bool:
        """Replay the kept writes and read once; True when cooldowns are exact again."""
        if self._degraded_since is None:
            return True
        self._next_try = self._clock() + self.retry_seconds
        try:
            await self._replay()
            await within(self._store.last_sent([("", "")]), self.timeout)
            await self._replay()  # what was kept while the read was in flight
        except Exception:
            self._next_try = self._clock() + self.retry_seconds
            return False
        log.warning(
            "cooldown store answers again after %.1f s; cooldowns are exact",
            self._clock() - self._degraded_since,
        )
        self._degraded_since = None
        self._metrics.cooldown_degraded.set(0)
        return True

    async def _replay(self) -> None:
        while self._pending:
            chunk = [self._pending[i] for i in range(min(self._chunk, len(self._pending)))]
            await within(self._store.record(self._left(chunk)), self.timeout)
            for _ in chunk:
                self._pending.popleft()
            self._metrics.cooldown_writes_replayed.inc(len(chunk))
            self._metrics.cooldown_writes_pending.set(len(self._pending))

    def _left(self, chunk: Sequence[tuple[Sent, float]]) -> list[Sent]:
        """The kept sends with what is left of their cooldowns; the ended ones left out."""
        now = self._clock()
        out = []
        for (account_id, contact, creative, when, ttl), kept_at in chunk:
            left = ttl - (now - kept_at)
            if left > 0:
                out.append((account_id, contact, creative, when, left))
        return out


async def read_cooldowns(
    store: CooldownStore, pairs: Sequence[Pair], profiles: Sequence[Pair] = ()
) -> CooldownRead:
    """A batch's cooldowns (and stored profiles) from any store; only a guarded one can
    say it was degraded."""
    if isinstance(store, GuardedCooldowns):
        return await store.read(pairs, profiles)
    last, blobs = await _with_profiles(store, pairs, profiles)
    return CooldownRead(last, profiles=blobs)


async def _with_profiles(
    store: Any, pairs: Sequence[Pair], profiles: Sequence[Pair]
) -> tuple[list[dict[str, float]], list[bytes | None]]:
    """One round trip where the store can read both (`last_sent_and_profiles`); a store
    that keeps no profiles answers None for each."""
    if profiles and hasattr(store, "last_sent_and_profiles"):
        last, blobs = await store.last_sent_and_profiles(pairs, profiles)
        return last, list(blobs)
    return await store.last_sent(pairs), [None] * len(profiles)
