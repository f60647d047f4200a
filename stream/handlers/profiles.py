"""Contact profiles kept live: each batch of the stats path folds its events into the
profiles of the contacts they name (`selector.model.profile.apply_profile_events`), in one
read and one write of the profile store.

Exact like the stats. A profile folds exactly the events the stats count: those that
decoded and passed the catalog, with the dedup store's duplicate flags (an upstream
duplicate advances the profile's offsets and adds nothing). A re-delivery after a crash
is skipped by the offsets the profile remembers per source partition, so the profile
written before a crash and the stats written after it (or the other way round) both
end up with each event once.

Safe with two writers. The write is a compare-and-set per contact: a value is replaced
only if it is still the one the fold started from, and a contact whose value changed
meanwhile (a worker that lost the partition and had not stopped yet) is read and folded
again. Nothing is acknowledged before the store has answered: while it does not, the
batch waits and is tried again every `retry_seconds`, as the dedup does.

A stored value that does not decode (`selector.model.record.DECODE_REASONS`) is replaced
by a profile folded from an empty one, and counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from selector.ingest import Outcome
from selector.model.profile import (
    DEFAULT_RETENTION_SECONDS,
    EMPTY,
    Row,
    fold_fields,
    profile_fields,
)
from selector.model.record import decode_fields, encode_fields
from stream.handlers.deadline import within
from stream.handlers.stores import CooldownStore, Pair, Sent
from stream.wire.envelope import Incoming

log = logging.getLogger(__name__)
EMPTY_FIELDS = profile_fields(EMPTY)
Write = tuple[Pair, bytes | None, bytes]  # (pair, value read, new value)


def profile_key(account_id: str, contact_id: str, prefix: str = "") -> str:
    return f"{prefix}pf:{account_id}:{contact_id}"


class ProfileStore(Protocol):
    async def read_profiles(self, pairs: Sequence[Pair]) -> list[bytes | None]:
        """The stored value of each (account, contact) profile (None: none)."""

    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        """Store each new value where the stored one is still the value read; the indices
        of the writes that found another value (nothing is written for those)."""


class MemoryProfiles:
    """In-process profiles for tests and a demo without Redis (no expiry)."""

    def __init__(self) -> None:
        self.values: dict[Pair, bytes] = {}

    async def read_profiles(self, pairs: Sequence[Pair]) -> list[bytes | None]:
        return [self.values.get(pair) for pair in pairs]

    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        conflicts = []
        for i, (pair, expected, value) in enumerate(writes):
            if self.values.get(pair) != expected:
                conflicts.append(i)
            else:
                self.values[pair] = value
        return conflicts


# (message, decoded event, kind, index in its batch message), as the ingestion has them
Item = tuple[Incoming, Any, str, int]


def sourced_by_contact(items: Sequence[Item], flags: Sequence[bool]) -> dict[Pair, list[Row]]:
    """Each contact's events of a batch, in the order read, as the fold's rows
    (`selector.model.profile.Row`)."""
    out: dict[Pair, list[Row]] = {}
    for (message, event, kind, index), duplicate in zip(items, flags, strict=True):
        row: Row = (
            kind,  # type: ignore[assignment]
            event.creative_id, event.time,
            event.revenue_micros if kind == "conversion" else 0,
            message.topic, message.partition, message.offset, duplicate, index,
        )  # fmt: skip
        pair = (event.account_id, event.contact_id)
        rows = out.get(pair)
        if rows is None:
            out[pair] = [row]
        else:
            rows.append(row)
    return out


class ProfileFolder:
    """Folds batches of counted events into the stored profiles."""

    def __init__(
        self,
        store: ProfileStore,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        timeout: float = 5.0,
        retry_seconds: float = 0.5,
        on_outcome: Callable[[str, int], None] = lambda outcome, count: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._on_outcome = on_outcome
        self._sleep = sleep
        self.waiting = False

    async def fold(self, items: Sequence[Item], flags: Sequence[bool]) -> int:
        """Fold the batch's events (`flags`: the dedup's duplicate answers) into their
        contacts' profiles; returns how many profiles changed."""
        pending = sourced_by_contact(items, flags)
        changed = 0
        while pending:
            try:
                written, pending = await self._round(pending)
            except Exception as exc:
                self._wait(exc)
                await self._sleep(self.retry_seconds)
                continue
            changed += written
        if self.waiting:
            log.warning("profile store answers again")
            self.waiting = False
        return changed

    async def _round(self, pending: dict[Pair, list[Row]]) -> tuple[int, dict[Pair, list[Row]]]:
        """One read and one write; what is left (the contacts whose write conflicted)."""
        pairs = list(pending)
        stored = await within(self._store.read_profiles(pairs), self.timeout)
        writes: list[Write] = []
        outcomes: dict[Pair, tuple[dict[Outcome, int], str | None]] = {}
        retention = self.retention_seconds
        for pair, blob in zip(pairs, stored, strict=True):
            value = decode_fields(blob) if blob else EMPTY_FIELDS
            reason: str | None = None
            if isinstance(value, str):  # a value that did not decode, counted by reason
                reason, value = value, EMPTY_FIELDS
            new, counts, _ = fold_fields(value, pending[pair], retention)
            outcomes[pair] = counts, reason
            if new is None:
                new = value
            if blob is None or new != value:  # the profiles' equality, field by field
                writes.append((pair, blob, encode_fields(new)))
        conflicts = await within(self._store.write_profiles(writes, retention), self.timeout)
        retry = {writes[i][0] for i in conflicts}
        applied = replayed = duplicate = 0  # one call per outcome, not per contact
        reasons: Counter[str] = Counter()
        for pair, (counts, reason) in outcomes.items():
            if pair not in retry:
                applied += counts["applied"]
                replayed += counts["replayed"]
                duplicate += counts["duplicate"]
                if reason is not None:
                    reasons[reason] += 1
        totals = {"applied": applied, "replayed": replayed, "duplicate": duplicate, **reasons}
        for outcome, count in totals.items():
            if count > 0:
                self._on_outcome(outcome, count)
        return len(writes) - len(retry), {p: pending[p] for p in pairs if p in retry}

    def _wait(self, exc: BaseException) -> None:
        if not self.waiting:
            log.warning(
                "profile store unavailable (%s); events wait until it answers",
                type(exc).__name__,
            )
            self.waiting = True
        self._on_outcome("store_failure", 1)


class CooldownsWithProfiles:
    """A cooldown store and a profile store read together (`last_sent_and_profiles`), for
    the in-process stores; `stream.adapters.profile_store.RedisContactState` does it in
    one Redis round trip."""

    def __init__(self, cooldowns: CooldownStore, profiles: ProfileStore) -> None:
        self._cooldowns = cooldowns
        self._profiles = profiles

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        return await self._cooldowns.last_sent(pairs)

    async def record(self, sends: Sequence[Sent]) -> None:
        await self._cooldowns.record(sends)

    async def last_sent_and_profiles(
        self, pairs: Sequence[Pair], profile_pairs: Sequence[Pair]
    ) -> tuple[list[dict[str, float]], list[bytes | None]]:
        last = await self._cooldowns.last_sent(pairs)
        return last, await self._profiles.read_profiles(profile_pairs)
