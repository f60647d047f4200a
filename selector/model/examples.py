"""Training examples from the event topics' history, point in time.

The events (sends, clicks, conversions of one account) are replayed in event-time order
through the same profile fold the stream runs (`profile.add_event`). At each send the
contact's profile as it stands (only events before the send) is snapshotted; its
features are computed afterwards with `features.contact_features` at the send's time,
the function the selection uses, so training and serving cannot drift apart.

Attribution: a click or conversion naming its send (`send_event_id`) goes to that send;
otherwise to the contact's latest earlier send of the same creative within the
attribution window. A send counts at most one click; its conversions add up. Only sends
at least `attribution_seconds` before `cutoff` are returned (matured: their outcome is
final). Upstream duplicates (the same `event_id` of the same kind twice) count once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector.domain import Account
from selector.model.features import (
    PAIR_FEATURES,
    contact_features,
    feature_names,
    pair_features,
)
from selector.model.fields import CustomField
from selector.model.profile import EMPTY, ContactProfile, add_event, creative_key
from selector.model.record import RECORD, to_bytes
from selector.model.train import CatalogColumns, Examples, contact_key
from selector.stats import MICROS, EventKind

_ORDER: dict[EventKind, int] = {"send": 0, "click": 1, "conversion": 2}
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """One send, click or conversion as read from its topic."""

    kind: EventKind
    event_id: str
    contact_id: str
    creative_id: str
    time: float
    revenue_micros: int = 0
    send_event_id: str | None = None


class _Replay:
    """The walk's state: profiles, snapshots of the sends, and their outcomes."""

    def __init__(self, custom: Mapping[str, tuple[float | None, ...]], retention: float):
        self.custom = custom
        self.retention = retention
        self.profiles: dict[str, ContactProfile] = {}
        self.snapshots: list[bytes] = []
        self.rows: list[tuple[str, float]] = []  # (creative id, time) per send
        self.contacts: list[str] = []
        self.by_id: dict[str, int] = {}
        self.latest: dict[tuple[str, str], int] = {}
        self.clicked: list[bool] = []
        self.converted: list[bool] = []
        self.revenue: list[int] = []
        self.seen: set[tuple[EventKind, str]] = set()

    def step(self, e: OutcomeEvent, window: float) -> None:
        if (e.kind, e.event_id) in self.seen:
            return
        self.seen.add((e.kind, e.event_id))
        profile = self.profiles.get(e.contact_id)
        if profile is None:
            slots = self.custom.get(e.contact_id)
            profile = EMPTY.with_custom(slots) if slots is not None else EMPTY
        if e.kind == "send":
            self.snapshots.append(to_bytes(profile))
            row = len(self.rows)
            self.rows.append((e.creative_id, e.time))
            self.contacts.append(e.contact_id)
            self.by_id[e.event_id] = row
            self.latest[e.contact_id, e.creative_id] = row
            self.clicked.append(False)
            self.converted.append(False)
            self.revenue.append(0)
        else:
            target = self._attributed(e, window)
            if target is not None and e.kind == "click":
                self.clicked[target] = True
            elif target is not None:
                self.converted[target] = True
                self.revenue[target] += e.revenue_micros
        self.profiles[e.contact_id] = add_event(
            profile, e.kind, e.creative_id, e.time, e.revenue_micros, self.retention
        )

    def _attributed(self, e: OutcomeEvent, window: float) -> int | None:
        if e.send_event_id is not None and e.send_event_id in self.by_id:
            return self.by_id[e.send_event_id]
        row = self.latest.get((e.contact_id, e.creative_id))
        if row is None or not 0.0 <= e.time - self.rows[row][1] <= window:
            return None
        return row


def examples_from_events(
    account: Account,
    events: Iterable[OutcomeEvent],
    fields: tuple[CustomField, ...],
    retention_seconds: float,
    attribution_seconds: float,
    cutoff: float,
    custom: Mapping[str, tuple[float | None, ...]] | None = None,
) -> Examples:
    """Matured sends with point-in-time features; `custom` holds each contact's current
    custom-field slots (custom fields are attributes, not history)."""
    replay = _Replay(custom or {}, retention_seconds)
    for e in sorted(events, key=lambda e: (e.time, _ORDER[e.kind])):
        replay.step(e, attribution_seconds)
    times = np.array([t for _, t in replay.rows], dtype=float)
    matured = np.flatnonzero(times <= cutoff - attribution_seconds)
    creative_ids = tuple(dict.fromkeys(c for c, _ in replay.rows))
    code = {c: i for i, c in enumerate(creative_ids)}
    creative = np.array([code[c] for c, _ in replay.rows], dtype=np.intp)
    offer_of = _offer_codes(account, creative_ids)
    raw, pair = _features(
        replay.snapshots, matured, times, creative, creative_ids, offer_of, fields,
        retention_seconds,
    )  # fmt: skip
    clicked = np.array(replay.clicked, dtype=float)[matured]
    converted = np.array(replay.converted, dtype=float)[matured]
    revenue = np.array(replay.revenue, dtype=float)[matured] / MICROS
    catalog = CatalogColumns.of(account)
    cto = {c: (p if f else 0.0) for c, p, f in zip(catalog.creative_ids, catalog.payout,
                                                   catalog.per_click, strict=True)}  # fmt: skip
    click_pay = np.array([cto.get(c, 0.0) for c in creative_ids])[creative[matured]]
    contact = np.array([contact_key(c) for c in replay.contacts], dtype=np.uint32)[matured]
    return Examples(
        raw, pair, creative[matured], creative_ids, times[matured], clicked, converted,
        revenue + clicked * click_pay, contact,
    )  # fmt: skip


def _offer_codes(account: Account, creative_ids: tuple[str, ...]) -> Any:
    """An offer code per creative id; a creative the catalog lacks is its own offer."""
    offer = {c.creative_id: c.offer_id for c in account.creatives}
    names = [offer.get(c, f"?{c}") for c in creative_ids]
    code = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return np.array([code[n] for n in names], dtype=np.intp)


def _features(
    snapshots: list[bytes],
    rows: Any,
    times: Any,
    creative: Any,
    creative_ids: tuple[str, ...],
    offer_of: Any,
    fields: tuple[CustomField, ...],
    retention: float,
) -> tuple[Any, Any]:
    keys = np.array([creative_key(c) for c in creative_ids], dtype=np.uint32)
    raws, pairs = [], []
    for start in range(0, rows.size, CHUNK):
        part = rows[start : start + CHUNK]
        recs = np.frombuffer(b"".join([snapshots[i] for i in part.tolist()]), dtype=RECORD)
        batch = contact_features(recs, times[part], fields, retention)
        pair = pair_features(batch, keys, offer_of)
        raws.append(batch.raw)
        pairs.append(pair[np.arange(part.size), creative[part]])
    if not raws:
        return np.zeros((0, len(feature_names(fields)))), np.zeros((0, len(PAIR_FEATURES)))
    return np.concatenate(raws), np.concatenate(pairs)
