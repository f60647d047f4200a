"""Training examples from the event topics' history, point in time.

The events (sends, clicks, conversions of one account) are replayed in event-time order
through the same profile fold the stream runs (`profile.add_event`). At each send the
contact's profile as it stands (only events before the send) is snapshotted, and its
features are computed, a chunk of sends at a time, with `features.contact_features` at
the send's time: the function the selection uses, so training and serving cannot drift
apart. Memory holds the features of the matured sends and the outcome of every send.

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

from selector.custom_fields import CustomField
from selector.domain import Account
from selector.model.features import (
    PAIR_FEATURES,
    ContactBatch,
    contact_features,
    feature_names,
)
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
    """The walk's state: profiles, every send (for attribution) and its outcome, and the
    features of the matured sends, computed `CHUNK` snapshots at a time so memory holds
    features, not profiles."""

    def __init__(
        self,
        account: Account,
        custom: Mapping[str, tuple[float | None, ...]],
        fields: tuple[CustomField, ...],
        retention: float,
        matured_until: float,
    ) -> None:
        self.custom, self.fields, self.retention = custom, fields, retention
        self.matured_until = matured_until
        self.offer_of = _OfferLookup(account)
        self.profiles: dict[str, ContactProfile] = {}
        self.rows: list[tuple[str, float]] = []  # (creative id, time) per send
        self.contacts: list[str] = []
        self.by_id: dict[str, int] = {}
        self.latest: dict[tuple[str, str], int] = {}
        self.clicked: list[bool] = []
        self.converted: list[bool] = []
        self.revenue: list[int] = []
        self.seen: set[tuple[EventKind, str]] = set()
        self.matured: list[int] = []
        self.pending: list[tuple[bytes, float, int]] = []  # (snapshot, time, creative key)
        self.raw: list[Any] = []
        self.pair: list[Any] = []

    def step(self, e: OutcomeEvent, window: float) -> None:
        if (e.kind, e.event_id) in self.seen:
            return
        self.seen.add((e.kind, e.event_id))
        profile = self.profiles.get(e.contact_id)
        if profile is None:
            slots = self.custom.get(e.contact_id)
            profile = EMPTY.with_custom(slots) if slots is not None else EMPTY
        if e.kind == "send":
            self._send(e, profile)
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

    def _send(self, e: OutcomeEvent, profile: ContactProfile) -> None:
        row = len(self.rows)
        self.rows.append((e.creative_id, e.time))
        self.contacts.append(e.contact_id)
        self.by_id[e.event_id] = row
        self.latest[e.contact_id, e.creative_id] = row
        self.clicked.append(False)
        self.converted.append(False)
        self.revenue.append(0)
        if e.time <= self.matured_until:
            self.matured.append(row)
            self.pending.append((to_bytes(profile), e.time, creative_key(e.creative_id)))
            if len(self.pending) >= CHUNK:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        snapshots, times, keys = zip(*self.pending, strict=True)
        self.pending = []
        recs = np.frombuffer(b"".join(snapshots), dtype=RECORD)
        batch = contact_features(recs, np.array(times), self.fields, self.retention)
        self.raw.append(batch.raw)
        self.pair.append(sent_pair_features(batch, np.array(keys, np.uint32), self.offer_of))

    def _attributed(self, e: OutcomeEvent, window: float) -> int | None:
        if e.send_event_id is not None and e.send_event_id in self.by_id:
            return self.by_id[e.send_event_id]
        row = self.latest.get((e.contact_id, e.creative_id))
        if row is None or not 0.0 <= e.time - self.rows[row][1] <= window:
            return None
        return row


class _OfferLookup:
    """Offer codes of creative keys, from the catalog; -1 for a key the catalog lacks."""

    def __init__(self, account: Account) -> None:
        offers = {o: i for i, o in enumerate(dict.fromkeys(c.offer_id for c in account.creatives))}
        pairs = sorted((creative_key(c.creative_id), offers[c.offer_id]) for c in account.creatives)
        self.keys = np.array([k for k, _ in pairs], dtype=np.uint32)
        self.codes = np.array([o for _, o in pairs], dtype=np.intp)

    def __call__(self, keys: Any) -> Any:
        if self.keys.size == 0:
            return np.full(keys.shape, -1, dtype=np.intp)
        at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return np.where(self.keys[at] == keys, self.codes[at], -1)


def sent_pair_features(batch: ContactBatch, sent: Any, offer_of: _OfferLookup) -> Any:
    """(N x 2) pair features of each send's own creative: what `pair_features` gives for
    that creative's column, for a catalog creative."""
    valid = batch.clicked_valid
    this = ((batch.clicked == sent[:, None]) & valid).any(axis=1)
    sent_offer = offer_of(sent)
    clicked_offer = offer_of(batch.clicked)
    same = (clicked_offer == sent_offer[:, None]) & (clicked_offer >= 0) & valid
    return np.stack([this, same.any(axis=1)], axis=1).astype(np.float64)


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
    matured_until = cutoff - attribution_seconds
    replay = _Replay(account, custom or {}, fields, retention_seconds, matured_until)
    for e in sorted(events, key=lambda e: (e.time, _ORDER[e.kind])):
        replay.step(e, attribution_seconds)
    replay.flush()
    rows = np.array(replay.matured, dtype=np.intp)
    creative_ids = tuple(dict.fromkeys(c for c, _ in replay.rows))
    code = {c: i for i, c in enumerate(creative_ids)}
    creative = np.array([code[c] for c, _ in replay.rows], dtype=np.intp)[rows]
    times = np.array([t for _, t in replay.rows], dtype=float)[rows]
    width = len(feature_names(fields))
    raw = np.concatenate(replay.raw) if replay.raw else np.zeros((0, width))
    pair = np.concatenate(replay.pair) if replay.pair else np.zeros((0, len(PAIR_FEATURES)))
    clicked = np.array(replay.clicked, dtype=float)[rows]
    catalog = CatalogColumns.of(account)
    cto = {c: (p if f else 0.0) for c, p, f in zip(catalog.creative_ids, catalog.payout,
                                                   catalog.per_click, strict=True)}  # fmt: skip
    click_pay = np.array([cto.get(c, 0.0) for c in creative_ids])[creative]
    revenue = np.array(replay.revenue, dtype=float)[rows] / MICROS + clicked * click_pay
    contact = np.array([contact_key(replay.contacts[i]) for i in rows.tolist()], np.uint32)
    converted = np.array(replay.converted, dtype=float)[rows]
    return Examples(
        raw, pair, creative, creative_ids, times, clicked, converted, revenue, contact
    )  # fmt: skip
