"""The daily job's recomputation of per-account stats from raw event records, without
Kafka: the reader hands it each topic-partition's records in offset order.

It folds exactly what the stats agent folded up to the cut:
- only records at or below the account's cut offset for that topic-partition (the
  highest offset the streamed value says it applied there) count;
- each record is decoded and validated like the agent does (`stream.wire.codec`, the same
  limits, the Kafka key), then checked against the account's current catalog;
- an `event_id` counts once per account and event kind, first occurrence wins; only
  valid events register ids. One account's events of one kind live in one partition,
  read in offset order, so "first" is the lowest offset, as in the agent's dedup.

`decode_event` is the agent's decoding with a fast path: a record whose fields all pass
cheap checks that imply the codec's is accepted directly; anything else gets the codec's
own verdict (the tests prove the two agree).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from selector.ingest import partition_key
from selector.reconcile import Tally
from selector.stats import EventKind
from stream.wire import codec
from stream.wire.messages import MAX_ID_LENGTH, MAX_REVENUE, MAX_TIME, MICROS, SCHEMAS

# (account_id, creative_id, event_id, time, revenue_micros, origin_time): the origin is
# a click's `send_time` or a conversion's `click_time`, None when the event has none
Fields = tuple[str, str, str, float, int, float | None]


class Record(Protocol):
    """A consumed record (confluent-kafka's `Message` is one; so is `Plain`)."""

    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Plain:
    """A record made by hand (tests, other readers)."""

    at: int
    k: bytes | None
    v: bytes | None

    def offset(self) -> int:
        return self.at

    def key(self) -> bytes | None:
        return self.k

    def value(self) -> bytes | None:
        return self.v


_IDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # (required, optional)
    "send": (
        ("event_id", "account_id", "campaign_id", "contact_id", "creative_id"),
        ("request_id",),
    ),
    "click": (
        ("event_id", "account_id", "contact_id", "creative_id"),
        ("send_event_id", "campaign_id"),
    ),
    "conversion": (
        ("event_id", "account_id", "contact_id", "creative_id"),
        ("send_event_id", "campaign_id"),
    ),
}
_ORIGIN = {"click": "send_time", "conversion": "click_time"}
_CURRENCY = re.compile("[A-Z]{3}").fullmatch
_SCHEMA_OF = {kind: SCHEMAS[kind] for kind in _IDS}  # type: ignore[index]
_NONE: frozenset[str] = frozenset()


def _fast(
    kind: str, raw: bytes, key: bytes | None, limits: codec.Limits, now: float
) -> Fields | None:
    """The fields of a record whose every field passes checks that imply the codec's;
    None for anything else (the codec then gives its verdict)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or doc.get("schema") != _SCHEMA_OF[kind]:
        return None
    required, optional = _IDS[kind]
    for name in required:
        v = doc.get(name)
        if type(v) is not str or not 0 < len(v) <= MAX_ID_LENGTH:
            return None
    for name in optional:
        v = doc.get(name)
        if v is not None and (type(v) is not str or not 0 < len(v) <= MAX_ID_LENGTH):
            return None
    t = doc.get("time")
    if not (type(t) is float or type(t) is int) or not 0 <= t <= MAX_TIME:
        return None
    if t > now + limits.max_future_seconds:
        return None
    origin = doc.get(_ORIGIN[kind]) if kind in _ORIGIN else None
    if origin is not None:
        if not (type(origin) is float or type(origin) is int) or not 0 <= origin <= MAX_TIME:
            return None
        origin = float(origin)
    account: str = doc["account_id"]
    if key is not None and key != account.encode():
        return None
    micros = 0
    if kind == "conversion":
        currency = doc.get("currency")
        if currency is not None and (type(currency) is not str or not _CURRENCY(currency)):
            return None
        r = doc.get("revenue")
        if not (type(r) is float or type(r) is int) or not 0 <= r <= MAX_REVENUE:
            return None
        if r > limits.max_revenue:
            return None
        micros = round(float(r) * MICROS)
    return (account, doc["creative_id"], doc["event_id"], float(t), micros, origin)


def decode_event(
    kind: str, raw: bytes | None, key: bytes | None, limits: codec.Limits, now: float
) -> Fields | codec.Rejected:
    """The fields the fold needs, or the codec's rejection."""
    if type(raw) is bytes and len(raw) <= limits.max_bytes:
        fields = _fast(kind, raw, key, limits, now)
        if fields is not None:
            return fields
    event: Any = codec.decode(kind, raw, key=key, limits=limits, now=now)
    if isinstance(event, codec.Rejected):
        return event
    micros = getattr(event, "revenue_micros", 0)
    origin = getattr(event, _ORIGIN.get(kind, ""), None)
    return (event.account_id, event.creative_id, event.event_id, event.time, micros, origin)


@dataclass(frozen=True, slots=True)
class Scope:
    """What to recompute: per account, its cut (`"topic:partition"` -> highest offset the
    streamed value applied), its catalog's creative ids and its half-life."""

    cut: Mapping[str, Mapping[str, int]]
    creatives: Mapping[str, frozenset[str]]
    half_life: Mapping[str, float | None]

    def stop_offset(self, topic: str, partition: int) -> int:
        """One past the highest cut offset of any account in this topic-partition."""
        tp = partition_key(topic, partition)
        return 1 + max((c.get(tp, -1) for c in self.cut.values()), default=-1)


# Outcomes of a record: counted, duplicate, rejected (the codec's or the catalog's
# verdict), after_cut (beyond the account's cut, or an account out of scope).
RecordOutcome = str


class Recompute:
    """Per-account tallies over the records fed, with a count per (kind, outcome)."""

    def __init__(self, scope: Scope, limits: codec.Limits, now: float) -> None:
        self.scope = scope
        self.limits = limits
        self.now = now
        self.tallies: dict[str, Tally] = {}
        self.outcomes: Counter[tuple[str, RecordOutcome]] = Counter()
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._cut_by_tp: dict[str, dict[str, int]] = {}

    def feed(self, kind: EventKind, topic: str, partition: int, records: Iterable[Record]) -> None:
        """Records of one topic-partition, in offset order."""
        limit_of = self._limits_of(partition_key(topic, partition))
        creatives, limits, now = self.scope.creatives, self.limits, self.now
        counted = duplicate = rejected = after_cut = 0
        for record in records:
            offset = record.offset()
            fields = decode_event(kind, record.value(), record.key(), limits, now)
            if type(fields) is not tuple:
                rejected += 1
                continue
            account, creative, event_id, time, revenue, origin = fields
            if offset > limit_of.get(account, -1):
                after_cut += 1
            elif creative not in creatives.get(account, _NONE):
                rejected += 1
            elif not self._first(account, kind, event_id):
                duplicate += 1
            else:
                self._tally(account).add(kind, creative, time, revenue, origin)
                counted += 1
        for name, n in (
            ("counted", counted),
            ("duplicate", duplicate),
            ("rejected", rejected),
            ("after_cut", after_cut),
        ):
            if n:
                self.outcomes[kind, name] += n

    def _limits_of(self, tp: str) -> dict[str, int]:
        """Each account's cut offset in one topic-partition (built once per partition)."""
        limits = self._cut_by_tp.get(tp)
        if limits is None:
            cut = self.scope.cut.items()
            limits = self._cut_by_tp[tp] = {a: c[tp] for a, c in cut if tp in c}
        return limits

    def _first(self, account: str, kind: str, event_id: str) -> bool:
        seen = self._seen.get((account, kind))
        if seen is None:
            seen = self._seen[account, kind] = set()
        if event_id in seen:
            return False
        seen.add(event_id)
        return True

    def _tally(self, account: str) -> Tally:
        tally = self.tallies.get(account)
        if tally is None:
            tally = self.tallies[account] = Tally(self.scope.half_life.get(account))
        return tally
