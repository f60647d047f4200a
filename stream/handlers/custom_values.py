"""Custom-field values carried by selection requests (`custom`): checked against the
account's declarations (`settings.custom_fields`), used for the request's own decision,
and kept in the contact's profile for later decisions and for training.

A value that does not fit its declaration (`selector.custom_fields.FIELD_REASONS`) is
dropped and named in the response's `custom_dropped`; the decision is still made, with
the contact's stored value for that field. A request is not refused for it: declarations
change in the catalog independently of the senders, and a sender one field behind
should not stop sending. (A `custom` that breaks the request schema is refused by the
codec like any other schema violation.)

Stored with the profile's compare-and-set (`stream.handlers.profiles.ProfileStore`): the
merge starts from the value the batch read with its cooldowns, and a contact whose value
changed meanwhile (the stats path folded an event) is read and merged again, up to
`rounds` times. The write runs beside the batch's cooldown write; when the store does not
answer, the values were still used for the decision, and are counted `store_failure`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from selector.custom_fields import CustomField, FieldReason, to_slots
from selector.model.profile import EMPTY, ContactProfile
from selector.model.record import Records, custom_slots, decode, encode, records, with_slots
from stream.handlers.deadline import within
from stream.handlers.profiles import ProfileStore, Write
from stream.handlers.stores import Pair

log = logging.getLogger(__name__)
_CUSTOM = attrgetter("custom")
Values = Mapping[str, object]
Slots = tuple[float | None, ...]
Dropped = tuple[tuple[str, FieldReason], ...]


@dataclass(frozen=True, slots=True)
class Update:
    """One request's values for one contact, and the stored value the batch read."""

    pair: Pair
    fields: tuple[CustomField, ...]
    values: Values
    read: bytes | None
    count: int  # values that fit their declaration


@dataclass(frozen=True, slots=True)
class RequestValues:
    """A batch's custom values: the merged slots of the rows that carry any (`rows`), what
    each row dropped (all rows), and the profile updates to store."""

    rows: list[int]
    slots: list[Slots]
    dropped: list[Dropped]
    updates: list[Update]


def request_values(
    fields: tuple[CustomField, ...],
    values: Sequence[Values | None],
    pairs: Sequence[Pair],
    recs: Records,
    blobs: Sequence[bytes | None],
) -> RequestValues:
    """Per request (its `values`, its contact's profile record and stored value): the
    stored slots with the request's valid values applied, and what it dropped."""
    out = RequestValues([], [], [], [])
    stored = custom_slots(recs)[:, : len(fields)] if fields else None
    for i, given in enumerate(values):
        if not given:
            out.dropped.append(())
            continue
        if stored is None:
            out.dropped.append(tuple((str(name), "unknown_field") for name in given))
            continue
        previous = tuple(None if math.isnan(v) else float(v) for v in stored[i])
        slots, dropped = to_slots(fields, given, previous)
        out.rows.append(i)
        out.slots.append(slots)
        out.dropped.append(dropped)
        if len(dropped) < len(given):
            out.updates.append(Update(pairs[i], fields, given, blobs[i], len(given) - len(dropped)))
    return out


def _merged(blob: bytes | None, updates: Sequence[Update]) -> ContactProfile:
    """The stored profile (empty if none or unreadable) with the updates applied in order."""
    profile = decode(blob) if blob else EMPTY
    if isinstance(profile, str):
        profile = EMPTY
    for u in updates:
        profile = profile.with_custom(to_slots(u.fields, u.values, profile.custom)[0])
    return profile


class CustomWriter:
    """Stores the valid custom values of a batch's requests in their contacts' profiles."""

    def __init__(
        self,
        store: ProfileStore,
        *,
        retention_seconds: float,
        timeout: float = 1.0,
        rounds: int = 3,
        on_outcome: Callable[[str, int], None] = lambda outcome, count: None,
    ) -> None:
        self._store = store
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.rounds = rounds
        self._on_outcome = on_outcome
        self.count = on_outcome
        self.failing = False

    async def store(self, updates: Sequence[Update]) -> None:
        """Write the updates (a contact's in the order given); never raises."""
        by_pair: dict[Pair, list[Update]] = {}
        for u in updates:
            by_pair.setdefault(u.pair, []).append(u)
        pending = {pair: items[0].read for pair, items in by_pair.items()}
        try:
            for attempt in range(self.rounds):
                retry = await self._write(by_pair, pending)
                pending = dict.fromkeys(retry)
                if not retry or attempt == self.rounds - 1:
                    break
                blobs = await within(self._store.read_profiles(retry), self.timeout)
                pending = dict(zip(retry, blobs, strict=True))
            self.failing = False
        except Exception as exc:
            if not self.failing:
                log.warning(
                    "profile store unavailable (%s); custom values not stored", type(exc).__name__
                )
                self.failing = True
        for pair in pending:
            self._on_outcome("store_failure", sum(u.count for u in by_pair[pair]))

    async def _write(
        self, by_pair: Mapping[Pair, list[Update]], read: Mapping[Pair, bytes | None]
    ) -> list[Pair]:
        """One write of the pairs in `read`, each merged from the value read; the pairs
        whose stored value changed meanwhile (nothing was written for those)."""
        writes: list[Write] = []
        for pair, blob in read.items():
            new = _merged(blob, by_pair[pair])
            value = encode(new)
            if (blob is not None and value == blob) or (blob is None and new == EMPTY):
                self._on_outcome("unchanged", sum(u.count for u in by_pair[pair]))
            else:
                writes.append((pair, blob, value))
        if not writes:
            return []
        conflicts = set(
            await within(self._store.write_profiles(writes, self.retention_seconds), self.timeout)
        )
        for i, (pair, _, _) in enumerate(writes):
            if i not in conflicts:
                self._on_outcome("stored", sum(u.count for u in by_pair[pair]))
        return [writes[i][0] for i in sorted(conflicts)]


@dataclass(frozen=True, slots=True)
class Profiles:
    """An account's share of a batch's profile read: the stored value per request (None
    where none, or not read), whether the `model` method uses them, and where the custom
    values to store go."""

    stored: list[bytes | None] | None  # None: none read
    modelled: bool
    updates: list[Update]


def profile_reads(
    by_account: Mapping[str, Sequence[tuple[Any, Any]]],
    modelled: Container[str],
    fields: Callable[[str], tuple[CustomField, ...]] | None,
) -> tuple[dict[str, list[bool] | None], list[Pair]]:
    """Per account, which of its (source, request) items need their contact's stored
    profile (None: none), and those (account, contact) pairs in order: every request of
    an account that uses the `model` method, and those carrying custom values when they
    are kept (`fields`: an account's declarations; None: the service keeps none)."""
    reads: dict[str, list[bool] | None] = {}
    wanted: list[Pair] = []
    for account_id, items in by_account.items():
        if account_id in modelled:
            reads[account_id] = [True] * len(items)
            wanted += [(account_id, r.contact_id) for _, r in items]
        elif fields is not None and fields(account_id) and any(r.custom for _, r in items):
            flags = [r.custom is not None for _, r in items]
            reads[account_id] = flags
            wanted += [
                (account_id, r.contact_id) for (_, r), f in zip(items, flags, strict=True) if f
            ]
        else:
            reads[account_id] = None
    return reads, wanted


def taken(blobs: Iterator[bytes | None], flags: list[bool] | None) -> list[bytes | None] | None:
    """An account's share of the batch's profile values read (`profile_reads`' flags)."""
    return None if flags is None else [next(blobs) if f else None for f in flags]


def profile_records(
    fields: tuple[CustomField, ...],
    account_id: str,
    requests: Sequence[Any],
    known: Sequence[int],
    profiles: Profiles | None,
    count: Callable[[str, int], None],
) -> tuple[Records | None, list[Dropped]]:
    """The profile records of the requests (`known`: their rows in `profiles`) for the
    decision, None when the account does not use them, with each request's valid custom
    values applied; what each request dropped (counted by reason), and the updates to
    store added to `profiles.updates`."""
    modelled = profiles is not None and profiles.modelled
    carried = any(map(_CUSTOM, requests))
    if not modelled and not carried:
        return None, []
    stored = profiles.stored if profiles is not None else None
    blobs = [stored[i] for i in known] if stored is not None else [None] * len(known)
    recs = records(blobs)[0]
    if not carried:
        return recs, []
    pairs = [(account_id, r.contact_id) for r in requests]
    found = request_values(fields, [r.custom for r in requests], pairs, recs, blobs)
    for row in found.dropped:
        for _, reason in row:
            count(reason, 1)
    if profiles is not None:
        profiles.updates.extend(found.updates)
    return (with_slots(recs, found.rows, found.slots) if modelled else None), found.dropped


async def beside(
    write: Awaitable[None] | None,
    writer: CustomWriter | None,
    updates: Sequence[Update],
    degraded: bool,
) -> None:
    """`write` (a batch's cooldowns) and, concurrently, the batch's custom values; not
    while the store is known not to answer (`degraded`): the values were used for the
    decisions, and are counted `store_failure`."""
    pending = [write] if write is not None else []
    if writer is not None and updates:
        if degraded:
            writer.count("store_failure", sum(u.count for u in updates))
        else:
            pending.append(writer.store(updates))
    await asyncio.gather(*pending)
