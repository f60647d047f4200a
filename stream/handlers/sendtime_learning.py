"""Keeping each contact's slot counts up to date from the sends and clicks topics: the
work of the send-time learner, without Kafka.

A send counts in the cell of its local time (in the zone its send time was decided in,
else the account's) and is recorded under its event id; a click that names its send
(`send_event_id`) counts once in that send's cell and day (`selector.sendtime
.claim_response`). Re-deliveries change nothing: the counts carry the highest offset
applied per source topic-partition (`selector.sendtime.apply_slot_events`; the learner
folds a contact's events of a batch with `SlotFold`, to the same value and outcomes), and
a batch's counts and records are written together, atomically (a batch of more than
`MAX_EVENTS` events in slices, each written whole). Upstream duplicates do not count
twice: a send whose event id already has a record, a click on a send already claimed by
another click. Invalid events are the stats agent's to dead-letter; here they are only
counted (`rejected`).

The sends and clicks topics are not ordered with each other, so a click may be read
before its send (`early`): its position is kept under the send's event id and the click
counts when the send arrives, guarded by the send's own position (source
`early-responses`); the send's record then names that source as its claimant, so the
same click read again counts as a repeat, not twice. The early click still advances its
contact's click offset, so a contact's value says exactly which sends and clicks it has
read: the daily job recounts those (`selector.sendtime.recount`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from selector.sendtime import (
    ContactSlots,
    SendRecord,
    SendTimeSettings,
    claim_response,
    decode_record,
    decode_slots,
    encode_record,
    encode_slots,
)
from selector.sendtime.clock import ZoneCache, load_zone
from selector.sendtime.counts import (
    SOURCES,
    SlotDelta,
    SlotFold,
    apply_slot_correction,
    position,
)
from selector.sendtime.hours import local_cells
from stream.handlers.sendtime_store import (
    Changes,
    Pair,
    SendKey,
    SendTimeStore,
    decode_early,
    encode_early,
)
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.batches import open_events
from stream.wire.envelope import Incoming
from stream.wire.messages import ClickEvent, SendEvent

SEND_SOURCE, CLICK_SOURCE = SOURCES.index("sends"), SOURCES.index("clicks")
EARLY_SOURCE = SOURCES.index("early-responses")
Event = tuple[Incoming, SendEvent | ClickEvent, int]  # (message, event, item position)
Outcomes = Counter[tuple[str, str]]
# Events per round trip to the store: a batch of many event_batch.v1 messages is learned
# in slices, each read and written whole, so no single command (the read, the atomic
# write) holds Redis, or waits for its reply, for long. Slices are learned in order and
# each reads what the one before wrote, so the result is the whole batch's.
MAX_EVENTS = 10_000


@dataclass
class _Batch:
    """What one batch read, and what it changed; each contact's counts as a `SlotFold`,
    merged once at the end of the batch (or before an early click's correction)."""

    slots: dict[Pair, SlotFold]
    zones: dict[Pair, str]
    records: dict[SendKey, SendRecord | None]
    early: dict[SendKey, tuple[int, int] | None]
    settings: dict[str, SendTimeSettings]
    changed_records: set[SendKey] = field(default_factory=set)
    new_early: set[SendKey] = field(default_factory=set)
    counted_early: set[SendKey] = field(default_factory=set)


class SendTimeLearner:
    """Folds sends and clicks into the contacts' slot counts (see the module docstring).
    `kinds` maps a topic to "send" or "click"; `record_ttl` is how long a send's record
    (and so its clicks' attribution) is kept."""

    def __init__(
        self,
        *,
        store: SendTimeStore,
        metrics: Metrics,
        kinds: Mapping[str, str],
        record_ttl: int,
        max_message_bytes: int = 65536,
        settings_for: Callable[[str], SendTimeSettings] | None = None,
        learns: Callable[[str], bool] | None = None,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._kinds = kinds
        self._record_ttl = record_ttl
        self._max_bytes = max_message_bytes
        self._settings_for = settings_for or (lambda account: SendTimeSettings())
        self._learns = learns
        self._zones = ZoneCache()
        self._max_events = max(1, max_events)

    async def learn(self, batch: Sequence[Incoming]) -> Outcomes:
        """Apply a batch; returns (kind, outcome) counts, also added to the metrics."""
        outcomes: Outcomes = Counter()
        events = self._decoded(batch, outcomes)
        for start in range(0, len(events), self._max_events):
            await self._learn(events[start : start + self._max_events], outcomes)
        for (kind, outcome), n in outcomes.items():
            self._metrics.sendtime.events.labels(kind, outcome).inc(n)
        return outcomes

    async def _learn(self, events: Sequence[Event], outcomes: Outcomes) -> None:
        pairs = sorted({(e.account_id, e.contact_id) for _, e, _ in events})
        keys = sorted({k for _, e, _ in events if (k := _send_key(e)) is not None})
        read = await self._store.for_learning(pairs, keys)
        settings = {a: self._settings_for(a) for a in {p[0] for p in pairs}}
        state = _Batch(
            {
                p: SlotFold(self._contact(settings[p[0]], blob), settings[p[0]].history)
                for p, blob in zip(pairs, read.slots, strict=True)
            },
            {p: z.decode() for p, z in zip(pairs, read.zones, strict=True) if z is not None},
            {k: _record(blob) for k, blob in zip(keys, read.records, strict=True)},
            {k: decode_early(blob) for k, blob in zip(keys, read.early, strict=True)},
            settings,
        )
        cells = self._cells(state, events)
        for i, (message, event, at) in enumerate(events):
            if isinstance(event, SendEvent):
                self._send(state, message.partition, at, event, cells[i], outcomes)
            else:
                outcomes["response", self._click(state, message.partition, at, event)] += 1
        await self._store.write(self._changes(state), self._record_ttl)

    def _changes(self, state: _Batch) -> Changes:
        early = {k: encode_early(*e) for k in state.new_early if (e := state.early[k])}
        slots = {}
        for pair, fold in state.slots.items():
            value = fold.value()
            if fold.changed:
                slots[pair] = self._encoded(state.settings[pair[0]], value)
        return Changes(
            slots,
            {k: encode_record(r) for k in state.changed_records if (r := state.records[k])},
            early,
            sorted(state.counted_early),
        )

    def _decoded(self, batch: Sequence[Incoming], outcomes: Outcomes) -> list[Event]:
        """The valid sends and clicks of the batch's messages, single or `event_batch.v1`,
        each with its item position."""
        out: list[Event] = []
        for message in batch:
            kind = self._kinds.get(message.topic)
            if kind not in ("send", "click"):
                continue
            label = "send" if kind == "send" else "response"
            opened = open_events(kind, message.value, max_bytes=self._max_bytes, key=message.key)
            if isinstance(opened, codec.Rejected):
                outcomes[label, "rejected"] += 1
                continue
            for item in opened.items:
                event = item.value
                if not isinstance(event, SendEvent | ClickEvent):
                    outcomes[label, "rejected"] += 1
                elif self._learns is not None and not self._learns(event.account_id):
                    outcomes[label, "not_learned"] += 1
                else:
                    out.append((message, event, position(message.offset, item.place)))
        return out

    def _contact(self, s: SendTimeSettings, blob: bytes | None) -> ContactSlots:
        if blob is None:
            return ContactSlots()
        decoded = decode_slots(blob, s.slots, s.split_weekends)
        if isinstance(decoded, ContactSlots):
            return decoded
        self._metrics.sendtime.state_issues.labels(decoded.reason).inc()
        return ContactSlots()

    def _encoded(self, s: SendTimeSettings, slots: ContactSlots) -> bytes:
        return encode_slots(slots, s.slots, s.split_weekends)

    def _cells(self, state: _Batch, events: Sequence[Event]) -> dict[int, tuple[int, int]]:
        """(cell, local day) of each send of `events` by its index: its local time in its
        contact's zone (else the account's), one `local_cells` call per zone and
        account layout."""
        usable: dict[str, bool] = {}
        groups: dict[tuple[str, int, bool], tuple[list[int], list[int]]] = {}
        for i, (_, event, _) in enumerate(events):
            if not isinstance(event, SendEvent):
                continue
            s = state.settings[event.account_id]
            zone = state.zones.get((event.account_id, event.contact_id))
            if zone is not None and (ok := usable.get(zone)) is None:
                ok = usable[zone] = load_zone(zone) is not None
            name = zone if zone is not None and ok else s.zone
            which, seconds = groups.setdefault((name, s.slots, s.split_weekends), ([], []))
            which.append(i)
            seconds.append(int(event.time))
        out: dict[int, tuple[int, int]] = {}
        for (name, slots, split), (which, seconds) in groups.items():
            times = np.array(seconds, dtype=np.int64)
            cell, day = local_cells(self._zones.clock(name), times, slots, split)
            out.update(zip(which, zip(cell.tolist(), day.tolist(), strict=True), strict=True))
        return out

    def _send(
        self,
        state: _Batch,
        partition: int,
        at: int,
        send: SendEvent,
        where: tuple[int, int],
        outcomes: Outcomes,
    ) -> None:
        pair = (send.account_id, send.contact_id)
        key = (send.account_id, send.event_id)
        cell, day = where
        known = state.records.get(key) is not None
        outcome = state.slots[pair].apply("send", cell, day, SEND_SOURCE, partition, at, known)
        outcomes["send", outcome] += 1
        if known:
            return
        record = SendRecord(cell, day)
        early = state.early.get(key)
        if early is not None and outcome in ("applied", "expired"):
            record = SendRecord(cell, day, (EARLY_SOURCE, *early))
            state.early[key] = None
            state.counted_early.add(key)
            outcomes["response", self._early(state, pair, cell, day, partition, at, outcome)] += 1
        state.records[key] = record
        state.changed_records.add(key)

    def _early(
        self, state: _Batch, pair: Pair, cell: int, day: int, partition: int, at: int, outcome: str
    ) -> str:
        """Count a click read before its send, at the send's position."""
        if outcome != "applied":
            return outcome  # the send itself is older than the history kept
        history = state.settings[pair[0]].history
        one = np.ones(1, dtype=np.int64)
        delta = SlotDelta(one * history.bucket(day), one * cell, one * 0, one)
        fold = state.slots[pair]  # its value has the contact's events so far merged
        new, done = apply_slot_correction(fold.value(), delta, EARLY_SOURCE, partition, at)
        if done == "applied":
            fold.replace(new)
        return done

    def _click(self, state: _Batch, partition: int, at: int, click: ClickEvent) -> str:
        key = _send_key(click)
        if key is None:
            return "unattributed"
        record, claim = claim_response(state.records.get(key), CLICK_SOURCE, partition, at)
        pair = (click.account_id, click.contact_id)
        if record is None:
            outcome = self._before_its_send(state, key, (partition, at))
            if outcome == "early":  # the contact's click position still says it was read
                state.slots[pair].apply("response", 0, 0, CLICK_SOURCE, partition, at, True)
            return outcome
        if claim == "first":
            state.records[key] = record
            state.changed_records.add(key)
        fold = state.slots[pair]
        return fold.apply(
            "response", record.cell, record.day, CLICK_SOURCE, partition, at, claim == "repeat"
        )  # fmt: skip

    def _before_its_send(self, state: _Batch, key: SendKey, where: tuple[int, int]) -> str:
        """A click whose send is not recorded (yet): keep its position for the send."""
        early = state.early.get(key)
        if early is None:
            state.early[key] = where
            state.new_early.add(key)
            return "early"
        return "replayed" if early == where else "duplicate"


def _send_key(event: SendEvent | ClickEvent) -> SendKey | None:
    if isinstance(event, SendEvent):
        return event.account_id, event.event_id
    return None if event.send_event_id is None else (event.account_id, event.send_event_id)


def _record(blob: bytes | None) -> SendRecord | None:
    if blob is None:
        return None
    decoded = decode_record(blob)
    return decoded if isinstance(decoded, SendRecord) else None
