"""The daily job's recount of contacts' slot counts from the logged sends and clicks,
folded exactly like the stream (`stream.handlers.sendtime_learning`), and the drift
between it and what the stream stored.

One account's sends and clicks each live in one partition, read in order. The stream's
value of a contact says how far it got: the highest send and click positions it applied
(`counts.position`: an item's place in its message counts; a click read before its send
advances the click position too). The recount of a contact folds exactly those events
("offset" below is that position):

- a send at or below the contact's send offset counts unless an earlier send (lower
  offset, any contact) had its event id: the stream's dedup keeps the first record;
- a click at or below the contact's click offset counts once per send, in the send's
  cell and local day, if its send is one that counted and is within its own contact's
  send offset; later clicks on the same send are repeats;
- the history window drops old buckets by the latest send day, as `apply_slot_events`.

So the recount is what the stream should hold whatever order the two topics were read
in, and `recount - streamed` (`slot_delta`) is the drift to correct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selector.sendtime.counts import (
    SOURCES,
    ContactSlots,
    History,
    SlotDelta,
    SlotEvent,
    apply_slot_events,
    slot_delta,
)

SEND, CLICK = SOURCES.index("sends"), SOURCES.index("clicks")


@dataclass(frozen=True, slots=True)
class LoggedSend:
    """A send as logged: its position, ids, and the cell and local day it went out in."""

    offset: int
    event_id: str
    contact_id: str
    cell: int
    day: int


@dataclass(frozen=True, slots=True)
class LoggedClick:
    offset: int
    contact_id: str
    send_event_id: str | None


@dataclass(frozen=True, slots=True)
class Cut:
    """How far the stream's value of a contact got: its highest applied positions."""

    send_offset: int
    click_offset: int

    @classmethod
    def of(cls, streamed: ContactSlots, partition: int) -> Cut:
        return cls(
            streamed.applied_offset(SEND, partition), streamed.applied_offset(CLICK, partition)
        )


def recount(
    sends: Sequence[LoggedSend],
    clicks: Sequence[LoggedClick],
    cuts: Mapping[str, Cut],
    partition: int,
    history: History,
) -> dict[str, ContactSlots]:
    """Each contact of `cuts` recounted from one account's logged events (`sends` and
    `clicks` in offset order, all of `partition`).

    >>> sends = [LoggedSend(0, "s1", "a", 3, 100), LoggedSend(1, "s1", "b", 4, 100),
    ...          LoggedSend(2, "s2", "a", 5, 101)]
    >>> clicks = [LoggedClick(0, "a", "s1"), LoggedClick(1, "a", "s1"), LoggedClick(2, "a", "s2")]
    >>> got = recount(sends, clicks, {"a": Cut(2, 1), "b": Cut(1, -1)}, 0, History())
    >>> [(int(c), int(s), int(r)) for c, s, r in zip(got["a"].cell, got["a"].sends,
    ...  got["a"].responses)]
    [(3, 1, 1), (5, 1, 0)]
    >>> int(got["b"].sends.sum())  # its send repeated s1's event id
    0
    """
    first: dict[str, LoggedSend] = {}
    for send in sends:
        first.setdefault(send.event_id, send)
    events: dict[str, list[SlotEvent]] = {contact: [] for contact in cuts}
    for send in sends:
        cut = cuts.get(send.contact_id)
        if cut is not None and send.offset <= cut.send_offset:
            counted = first[send.event_id] is send
            event = SlotEvent("send", send.cell, send.day, SEND, partition, send.offset)
            events[send.contact_id].append(event if counted else _skipped(event))
    claimed: set[str] = set()
    for click in clicks:
        cut = cuts.get(click.contact_id)
        if cut is None or click.offset > cut.click_offset:
            continue
        sent = first.get(click.send_event_id) if click.send_event_id is not None else None
        sender = cuts.get(sent.contact_id) if sent is not None else None
        if sent is None or sender is None or sent.offset > sender.send_offset:
            continue  # its send is not (yet) in the stream's value: not counted there either
        if sent.event_id not in claimed:
            claimed.add(sent.event_id)
            event = SlotEvent("response", sent.cell, sent.day, CLICK, partition, click.offset)
            events[click.contact_id].append(event)
    return {c: apply_slot_events(ContactSlots(), e, history)[0] for c, e in events.items()}


def _skipped(event: SlotEvent) -> SlotEvent:
    return SlotEvent(
        event.kind, event.cell, event.day, event.source, event.partition, event.offset, True
    )


def drift(recounted: ContactSlots, streamed: ContactSlots) -> SlotDelta | None:
    """What the stream's counts miss (positive) or have too many of (negative); None when
    they agree."""
    delta = slot_delta(recounted, streamed)
    return None if delta.is_zero() else delta
