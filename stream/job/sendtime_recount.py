"""The daily job's reconciliation of the contacts' send-time slot counts in Redis.

1. Read the sends and clicks topics from their start to the end (the watermarks taken
   first), opened like the send-time learner does (single events and `event_batch.v1`,
   each item at its own position, `selector.sendtime.counts.position`).
2. Read every logged contact's stored counts and zone from Redis (one pipeline).
3. Recount each contact from the log, up to the offsets its stored value says it read,
   with the account's send-time settings from the catalog (`selector.sendtime.recount`:
   the same `(account, event id)` dedup and fold as the stream), and compare.
4. Correct each drifting contact (not with `report_only`): under WATCH, read its value
   again, recount to its offsets then, and add the difference once
   (`apply_slot_correction` at this run's position of the `sendtime-corrections`
   source, so a retry of the same run changes nothing; a later run finds no drift). A
   learner write in between makes the transaction fail, and it is tried again.

Contacts whose stored value read past what the job read (the learner was ahead) are
`moving` and left for the next run; contacts with logged events but no stored counts (or
counts of another slot layout) are `missing`: the stream may not have read them yet, so
nothing is written for them.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from selector.sendtime import SendTimeSettings, apply_slot_correction, decode_slots, encode_slots
from selector.sendtime.clock import ZoneCache, load_zone
from selector.sendtime.counts import SOURCES, ContactSlots, SlotDelta, position
from selector.sendtime.hours import local_cells
from selector.sendtime.recount import Cut, LoggedClick, LoggedSend, drift, recount
from stream.adapters.kafka_reader import open_consumer, read_ranges, watermarks
from stream.adapters.redis_sendtime import SLOTS_TTL_SECONDS
from stream.adapters.redis_store import redis_client
from stream.handlers.catalog import AccountCatalog
from stream.handlers.sendtime_store import slots_key, zone_key
from stream.job.cut import JobError
from stream.job.recompute import Record
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import open_events
from stream.wire.messages import TOPICS, ClickEvent, SendEvent

CORRECTION_SOURCE = SOURCES.index("sendtime-corrections")
DEFAULT = SendTimeSettings()
Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ContactDrift:
    """One contact's difference (recounted - stored), summed over its cells."""

    account_id: str
    contact_id: str
    sends: int
    responses: int
    corrected: bool


@dataclass(frozen=True, slots=True)
class SlotReconciliation:
    contacts: int  # compared
    moving: int  # stored value past the log read: next run
    missing: int  # logged, no usable stored value: nothing written
    drifts: tuple[ContactDrift, ...]
    records: Counter[tuple[str, str]] = field(default_factory=Counter)
    # per account: its settings and its compared contacts' recounted values (for the prior)
    recounted: dict[str, tuple[SendTimeSettings, list[ContactSlots]]] = field(default_factory=dict)

    @property
    def corrected(self) -> int:
        return sum(d.corrected for d in self.drifts)

    @property
    def events(self) -> dict[str, int]:
        """Absolute drift per kind, summed over contacts."""
        return {
            "send": sum(abs(d.sends) for d in self.drifts),
            "response": sum(abs(d.responses) for d in self.drifts),
        }


@dataclass
class AccountLog:
    """One account's logged sends and clicks (one partition, by item position)."""

    partition: int
    sends: list[tuple[int, SendEvent]] = field(default_factory=list)
    clicks: list[tuple[int, ClickEvent]] = field(default_factory=list)

    def contacts(self) -> set[str]:
        return {e.contact_id for _, e in self.sends} | {e.contact_id for _, e in self.clicks}


class LogFold:
    """The sends and clicks read, per account; `feed` takes one topic-partition's records
    in offset order (`stream.job.recompute.Record`s)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.logs: dict[str, AccountLog] = {}
        self.records: Counter[tuple[str, str]] = Counter()

    def feed(self, kind: str, partition: int, records: Iterable[Record]) -> None:
        for r in records:
            opened = open_events(kind, r.value(), max_bytes=self.max_bytes, key=r.key())
            if isinstance(opened, codec.Rejected):
                self.records[kind, "rejected"] += 1
                continue
            for item in opened.items:
                self._item(kind, partition, position(r.offset(), item.place), item.value)

    def _item(self, kind: str, partition: int, at: int, event: object) -> None:
        if not isinstance(event, SendEvent | ClickEvent):
            self.records[kind, "rejected"] += 1
            return
        self.records[kind, "read"] += 1
        log = self.logs.setdefault(event.account_id, AccountLog(partition))
        if isinstance(event, SendEvent):
            log.sends.append((at, event))
        else:
            log.clicks.append((at, event))


def read_log(settings: Settings) -> tuple[LogFold, dict[str, int]]:
    """Every account's logged sends and clicks, and the end of each partition read, as
    an item position (keyed "send:p" and "click:p")."""
    names = {settings.topic(TOPICS[k]): k for k in ("send", "click")}
    tps = [(t, p) for t in names for p in range(settings.partitions)]
    fold = LogFold(settings.max_message_bytes)
    consumer = open_consumer(settings)
    try:
        marks = watermarks(consumer, tps)
        for (topic, p), (low, _) in marks.items():
            if low > 0:
                raise JobError(
                    f"{topic}:{p} starts at offset {low}: retention deleted sends or clicks "
                    "the slot counts include, so a recount would undercount"
                )
        read_ranges(consumer, marks, lambda t, p, run: fold.feed(names[t], p, run))
    finally:
        consumer.close()
    return fold, {f"{names[t]}:{p}": position(high) for (t, p), (_, high) in marks.items()}


def logged(
    log: AccountLog, settings: SendTimeSettings, zones: Mapping[str, str | None]
) -> tuple[list[LoggedSend], list[LoggedClick]]:
    """The account's events with each send's cell and local day (in the zone its contact's
    send times were decided in, else the account's), as the learner computes them."""
    cache = ZoneCache()
    by_zone: dict[str, list[int]] = defaultdict(list)
    for i, (_, send) in enumerate(log.sends):
        zone = zones.get(send.contact_id)
        by_zone[zone if zone is not None and load_zone(zone) is not None else settings.zone].append(
            i
        )
    cells = np.zeros(len(log.sends), dtype=np.int64)
    days = np.zeros(len(log.sends), dtype=np.int64)
    for zone, index in by_zone.items():
        times = np.array([int(log.sends[i][1].time) for i in index], dtype=np.int64)
        c, d = local_cells(cache.clock(zone), times, settings.slots, settings.split_weekends)
        cells[index], days[index] = c, d
    sends = [
        LoggedSend(offset, e.event_id, e.contact_id, int(cells[i]), int(days[i]))
        for i, (offset, e) in enumerate(log.sends)
    ]
    clicks = [LoggedClick(offset, e.contact_id, e.send_event_id) for offset, e in log.clicks]
    return sends, clicks


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """One account's comparison: its logged events, the contacts compared (their cuts and
    drifts) and those left out."""

    partition: int
    settings: SendTimeSettings
    sends: list[LoggedSend]
    clicks: list[LoggedClick]
    cuts: dict[str, Cut]
    drifts: dict[str, SlotDelta]
    moving: int
    missing: int
    counted: dict[str, ContactSlots]

    def recount_one(self, contact: str, cut: Cut) -> ContactSlots:
        cuts = {**self.cuts, contact: cut}
        return recount(self.sends, self.clicks, cuts, self.partition, self.settings.history)[
            contact
        ]


def compare_account(
    log: AccountLog,
    settings: SendTimeSettings,
    stored: Mapping[str, bytes | None],
    zones: Mapping[str, str | None],
    ends: Mapping[str, int],
) -> AccountCheck:
    """Recount every logged contact of one account and compare it with its stored value."""
    sends, clicks = logged(log, settings, zones)
    p = log.partition
    cuts: dict[str, Cut] = {}
    states: dict[str, ContactSlots] = {}
    moving = missing = 0
    for contact in sorted(log.contacts()):
        state = _decoded(stored.get(contact), settings)
        if state is None:
            missing += 1
            continue
        cut = Cut.of(state, p)
        if not _within(cut, p, ends):
            moving += 1
            continue
        cuts[contact], states[contact] = cut, state
    counted = recount(sends, clicks, cuts, p, settings.history)
    drifts = {c: d for c in cuts if (d := drift(counted[c], states[c])) is not None}
    return AccountCheck(p, settings, sends, clicks, cuts, drifts, moving, missing, counted)


def _decoded(blob: bytes | None, settings: SendTimeSettings) -> ContactSlots | None:
    if blob is None:
        return None
    state = decode_slots(blob, settings.slots, settings.split_weekends)
    return state if isinstance(state, ContactSlots) else None


def _within(cut: Cut, partition: int, ends: Mapping[str, int]) -> bool:
    """The stored value read nothing the job did not."""
    return (cut.send_offset < ends.get(f"send:{partition}", 0) or cut.send_offset < 0) and (
        cut.click_offset < ends.get(f"click:{partition}", 0) or cut.click_offset < 0
    )


async def _correct(
    client: aioredis.Redis, key: str, contact: str, check: AccountCheck, ends: Mapping[str, int],
    run_seq: int,
) -> bool:  # fmt: skip
    """Add the contact's drift to its stored value once, under WATCH; False when there is
    nothing to correct any more (or the value moved past the log read)."""
    s = check.settings
    for _ in range(5):
        try:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                blob: bytes | None = await pipe.get(key)  # type: ignore[assignment]
                state = _decoded(blob, s)
                if state is None:
                    return False
                cut = Cut.of(state, check.partition)
                if not _within(cut, check.partition, ends):
                    return False
                delta = drift(check.recount_one(contact, cut), state)
                if delta is None:
                    return False
                new, _ = apply_slot_correction(state, delta, CORRECTION_SOURCE, 0, run_seq)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, encode_slots(new, s.slots, s.split_weekends), ex=SLOTS_TTL_SECONDS)
                await pipe.execute()
                return True
        except WatchError:  # the learner wrote meanwhile: read again
            continue
    return False


def settings_of(catalog: AccountCatalog | None) -> SendTimeSettings:
    return catalog.send_time.settings if catalog is not None else DEFAULT


def reconcile(
    settings: Settings, catalogs: Mapping[str, AccountCatalog], *, correct: bool, run_seq: int
) -> SlotReconciliation:
    """Read the log, compare every logged contact, correct the drifting ones (`correct`);
    `run_seq` orders runs (a later run's corrections apply after an earlier one's)."""
    fold, ends = read_log(settings)
    try:
        return asyncio.run(_reconcile(settings, fold, ends, catalogs, correct, run_seq))
    except RedisError as exc:
        raise JobError(f"cannot read or correct the slot counts in Redis: {exc}") from None


async def _reconcile(
    settings: Settings, fold: LogFold, ends: Mapping[str, int],
    catalogs: Mapping[str, AccountCatalog], correct: bool, run_seq: int,
) -> SlotReconciliation:  # fmt: skip
    prefix = settings.redis_key_prefix
    client = redis_client(settings)
    compared = moving = missing = 0
    found: list[ContactDrift] = []
    recounted: dict[str, tuple[SendTimeSettings, list[ContactSlots]]] = {}
    try:
        for account, log in sorted(fold.logs.items()):
            contacts = sorted(log.contacts())
            pipe = client.pipeline(transaction=False)
            for contact in contacts:
                pipe.get(slots_key(account, contact, prefix))
                pipe.get(zone_key(account, contact, prefix))
            replies = await pipe.execute()
            stored = dict(zip(contacts, replies[0::2], strict=True))
            zones = {
                c: z.decode() if z else None for c, z in zip(contacts, replies[1::2], strict=True)
            }
            check = compare_account(log, settings_of(catalogs.get(account)), stored, zones, ends)
            compared += len(check.cuts)
            recounted[account] = (check.settings, [check.counted[c] for c in sorted(check.cuts)])
            moving, missing = moving + check.moving, missing + check.missing
            for contact, delta in sorted(check.drifts.items()):
                key = slots_key(account, contact, prefix)
                fixed = correct and await _correct(client, key, contact, check, ends, run_seq)
                found.append(
                    ContactDrift(account, contact, int(delta.sends.sum()),
                                 int(delta.responses.sum()), fixed)
                )  # fmt: skip
    finally:
        await client.aclose()
    return SlotReconciliation(compared, moving, missing, tuple(found), fold.records, recounted)
