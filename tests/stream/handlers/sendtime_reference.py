"""The send-time learner one event at a time, as it was before it folded a batch's events
per contact (`stream.handlers.sendtime_learning`): the reference the batched learner is
checked against. Every event goes through `apply_slot_events` on its own, and every
send's cell through its own `local_cells` call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from selector.sendtime import (
    ContactSlots,
    SendRecord,
    SendTimeSettings,
    SlotEvent,
    apply_slot_events,
    claim_response,
    decode_record,
    decode_slots,
    encode_record,
    encode_slots,
)
from selector.sendtime.clock import ZoneCache, load_zone
from selector.sendtime.counts import SOURCES, SlotDelta, apply_slot_correction, position
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
Event = tuple[Incoming, SendEvent | ClickEvent, int]
Outcomes = Counter[tuple[str, str]]


@dataclass
class _Batch:
    """What one batch read, and what it changed."""

    slots: dict[Pair, ContactSlots]
    zones: dict[Pair, str]
    records: dict[SendKey, SendRecord | None]
    early: dict[SendKey, tuple[int, int] | None]
    changed_slots: set[Pair] = field(default_factory=set)
    changed_records: set[SendKey] = field(default_factory=set)
    new_early: set[SendKey] = field(default_factory=set)
    counted_early: set[SendKey] = field(default_factory=set)


class ReferenceLearner:
    """The learner as it was: each event applied alone by `apply_slot_events`, each send's
    cell computed alone. `max_events`: learn a batch in slices of that many events, each
    read and written on its own, as if the batch had been that many smaller ones."""

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
        max_events: int = 1 << 62,
    ) -> None:
        self._max_events = max_events
        self._store = store
        self._metrics = metrics
        self._kinds = kinds
        self._record_ttl = record_ttl
        self._max_bytes = max_message_bytes
        self._settings_for = settings_for or (lambda account: SendTimeSettings())
        self._learns = learns
        self._zones = ZoneCache()

    async def learn(self, batch: Sequence[Incoming]) -> Outcomes:
        """Apply a batch; returns (kind, outcome) counts, also added to the metrics."""
        outcomes: Outcomes = Counter()
        events = self._decoded(batch, outcomes)
        for start in range(0, max(1, len(events)), self._max_events):
            await self._learn(events[start : start + self._max_events], outcomes)
        return outcomes

    async def _learn(self, events: Sequence[Event], outcomes: Outcomes) -> None:
        pairs = sorted({(e.account_id, e.contact_id) for _, e, _ in events})
        keys = sorted({k for _, e, _ in events if (k := _send_key(e)) is not None})
        read = await self._store.for_learning(pairs, keys)
        state = _Batch(
            {p: self._contact(p[0], blob) for p, blob in zip(pairs, read.slots, strict=True)},
            {p: z.decode() for p, z in zip(pairs, read.zones, strict=True) if z is not None},
            {k: _record(blob) for k, blob in zip(keys, read.records, strict=True)},
            {k: decode_early(blob) for k, blob in zip(keys, read.early, strict=True)},
        )
        for message, event, at in events:
            if isinstance(event, SendEvent):
                self._send(state, message.partition, at, event, outcomes)
            else:
                outcomes["response", self._click(state, message.partition, at, event)] += 1
        await self._store.write(self._changes(state), self._record_ttl)

    def _changes(self, state: _Batch) -> Changes:
        early = {k: encode_early(*e) for k in state.new_early if (e := state.early[k])}
        return Changes(
            {p: self._encoded(p[0], state.slots[p]) for p in state.changed_slots},
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

    def _contact(self, account_id: str, blob: bytes | None) -> ContactSlots:
        if blob is None:
            return ContactSlots()
        s = self._settings_for(account_id)
        decoded = decode_slots(blob, s.slots, s.split_weekends)
        if isinstance(decoded, ContactSlots):
            return decoded
        self._metrics.sendtime.state_issues.labels(decoded.reason).inc()
        return ContactSlots()

    def _encoded(self, account_id: str, slots: ContactSlots) -> bytes:
        s = self._settings_for(account_id)
        return encode_slots(slots, s.slots, s.split_weekends)

    def _cell(self, account_id: str, zone: str | None, t: float) -> tuple[int, int]:
        """(cell, local day) of a send at `t` in `zone` (else the account's)."""
        s = self._settings_for(account_id)
        name = zone if zone is not None and load_zone(zone) is not None else s.zone
        second = np.array([int(t)], dtype=np.int64)
        cell, day = local_cells(self._zones.clock(name), second, s.slots, s.split_weekends)
        return int(cell[0]), int(day[0])

    def _apply(self, state: _Batch, pair: Pair, event: SlotEvent) -> str:
        settings = self._settings_for(pair[0])
        new, counted = apply_slot_events(state.slots[pair], [event], settings.history)
        if new is not state.slots[pair]:
            state.slots[pair] = new
            state.changed_slots.add(pair)
        return next(outcome for (_, outcome), n in counted.items() if n)

    def _send(
        self, state: _Batch, partition: int, at: int, send: SendEvent, outcomes: Outcomes
    ) -> None:
        pair = (send.account_id, send.contact_id)
        key = (send.account_id, send.event_id)
        cell, day = self._cell(send.account_id, state.zones.get(pair), send.time)
        known = state.records.get(key) is not None
        event = SlotEvent("send", cell, day, SEND_SOURCE, partition, at, known)
        outcome = self._apply(state, pair, event)
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
        history = self._settings_for(pair[0]).history
        one = np.ones(1, dtype=np.int64)
        delta = SlotDelta(one * history.bucket(day), one * cell, one * 0, one)
        new, done = apply_slot_correction(state.slots[pair], delta, EARLY_SOURCE, partition, at)
        if done == "applied":
            state.slots[pair] = new
            state.changed_slots.add(pair)
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
                self._apply(
                    state, pair, SlotEvent("response", 0, 0, CLICK_SOURCE, partition, at, True)
                )
            return outcome
        if claim == "first":
            state.records[key] = record
            state.changed_records.add(key)
        event = SlotEvent(
            "response", record.cell, record.day, CLICK_SOURCE, partition, at, claim == "repeat"
        )  # fmt: skip
        return self._apply(state, pair, event)

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
