"""Joining live selection responses with the sends, clicks and conversions they led to.

What the wire gives to join on (schemas/): a selection_response.v1 carries the request
id, account, campaign, creative, arm, method, pool, propensity and params version but no
contact; a send.v1 carries the request id of the selection it answered (when one asked),
the contact and the creative; a click.v1 or conversion.v1 names its send
(`send_event_id`) when known, and always the contact and the creative. So a send joins
its response by request id, and an outcome joins its send by `send_event_id`, or else the
contact's latest send of the same creative at or before it, within the attribution window.

Streaming: `JoinAccumulator.add` takes one decoded record at a time, topics interleaved or
one after another; every `CHUNK` records of a kind are packed into fixed-width numpy rows
(`selector.live_pack`: ids as 64-bit hashes, names as small integer codes) and the
records themselves are dropped. `finish` joins with sorts and binary searches
(`selector.live_match`). Memory is 45-60 bytes per record, however many contacts there
are. Ids are compared by Python's 64-bit string hash (salted per
process, harmless since keys never leave it); two of ten million ids share one with
probability ~3e-6. The hash is never -1, which marks an absent id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from selector.live_match import (
    ATTRIBUTION_WINDOW,
    KINDS,
    UNMATCHED,
    Kind,
    Rows,
    Unmatched,
    join_tables,
)
from selector.live_pack import DTYPES, Codes, Lists, Packers

__all__ = ["ATTRIBUTION_WINDOW", "KINDS", "UNMATCHED", "JoinAccumulator", "Joined", "Kind"]
CHUNK = 1 << 16


@dataclass(frozen=True, slots=True, eq=False)
class Joined:
    """The reported sends as columns (`sends`: account, campaign, creative, contact, time,
    arm, method, pool, propensity, version, clicks, conversions, revenue, decided (the
    response's decision time)), the code
    tables, and what was left out, by kind and reason."""

    accounts: tuple[str, ...]
    campaigns: tuple[str, ...]
    creatives: tuple[str, ...]
    sends: Rows
    records: dict[Kind, int]
    undecodable: dict[Kind, dict[str, int]]
    unmatched: dict[Kind, dict[Unmatched, int]]
    unknown_records: int = 0


class JoinAccumulator:
    """Collects records for `finish`. The one mutable object of the live report: it owns
    its pending records (fewer than `CHUNK` per kind), packed chunks and code tables;
    `finish` packs what is pending and leaves the rest as it was, so more may follow."""

    def __init__(self, accounts: Iterable[str] | None = None) -> None:
        self._codes = Codes(accounts)
        self._packers = Packers(self._codes)
        self._pending: dict[Kind, list[Any]] = {kind: [] for kind in KINDS}
        self._chunks: dict[Kind, list[Rows]] = {kind: [] for kind in KINDS}
        self._seen: Counter[Kind] = Counter()
        self._unknown = 0
        self._undecodable: dict[Kind, Counter[str]] = {kind: Counter() for kind in KINDS}
        self._skipped: dict[Kind, Counter[Unmatched]] = {kind: Counter() for kind in KINDS}

    @property
    def packed_bytes(self) -> int:
        """Memory held by the packed rows (the pending records aside)."""
        return sum(chunk.nbytes for chunks in self._chunks.values() for chunk in chunks)

    def add(self, record: Any) -> None:
        """One decoded record: a selection response (ok or error), send, click or
        conversion, as `stream.wire.messages` defines them. Anything else is counted."""
        pending = self._pending.get(getattr(record, "kind", None))  # type: ignore[arg-type]
        if pending is None:
            self._unknown += 1
            return
        pending.append(record)
        if len(pending) >= CHUNK:
            self._flush(record.kind)

    def add_many(self, records: Iterable[Any]) -> None:
        add = self.add
        for record in records:
            add(record)

    def add_kind(self, kind: Kind, records: Iterable[Any]) -> None:
        """Records of one kind, among which the decoder's rejections (objects with a
        `reason` and no `kind`) are counted by reason."""
        it = iter(records)
        if kind not in self._pending:  # not a kind the report reads
            self._unknown += sum(1 for _ in it)
            return
        while chunk := list(islice(it, CHUNK)):
            self._pack(kind, chunk)

    def add_raw(
        self,
        items: Iterable[tuple[Kind, bytes | None]],
        decode: Callable[[Kind, bytes | None], Any],
    ) -> None:
        """(kind, value bytes) pairs, decoded by `decode` (`stream.wire.codec.decode`); its
        rejections are counted by kind and reason. Call it once or once per batch read."""
        pending = self._pending
        for kind, raw in items:
            bucket = pending.get(kind)
            if bucket is None:
                self._unknown += 1
                continue
            bucket.append(decode(kind, raw))
            if len(bucket) >= CHUNK:
                self._flush(kind)

    def add_rejected(self, kind: Kind, reason: str, count: int = 1) -> None:
        """`count` records of `kind` that did not decode, by the decoder's bounded reason."""
        self._seen[kind] += count
        self._undecodable[kind][reason] += count

    def add_columns(
        self,
        kind: Kind,
        values: Mapping[str, Sequence[Any]],
        size: int,
        rejected: Mapping[str, int] | None = None,
        errors: int = 0,
    ) -> None:
        """Decoded records of `kind` as columns (`values[field]`, `size` entries each, in
        arrival order, the fields named as in `stream.wire.messages`), those that did not
        decode by reason, and `errors` selection responses with status error. Records
        added before of the same kind keep their place before these."""
        self._flush(kind)
        for reason, count in (rejected or {}).items():
            self.add_rejected(kind, reason, count)
        self._seen[kind] += size + errors
        if errors:
            self._skipped[kind]["error_response"] += errors
        packed = self._packers.pack_columns(kind, Lists(values, size), self._skipped[kind])
        self._chunks[kind].append(packed)

    def add_unknown(self, count: int) -> None:
        """`count` records of no kind the report reads."""
        self._unknown += count

    def _pack(self, kind: Kind, records: list[Any]) -> None:
        good = [r for r in records if hasattr(r, "kind")]
        if len(good) < len(records):
            for record in records:
                if not hasattr(record, "kind"):
                    self.add_rejected(kind, str(getattr(record, "reason", "unknown")))
        self._seen[kind] += len(good)
        self._chunks[kind].append(self._packers.pack(kind, good, self._skipped[kind]))

    def _flush(self, kind: Kind) -> None:
        pending = self._pending[kind]
        if pending:
            self._pending[kind] = []
            self._pack(kind, pending)

    def finish(
        self,
        since: float | None = None,
        until: float | None = None,
        window: float = ATTRIBUTION_WINDOW,
    ) -> Joined:
        """Join what was added: sends in [since, until) with their outcomes."""
        for kind in KINDS:
            self._flush(kind)
        reasons = {kind: Counter(c) for kind, c in self._skipped.items()}
        tables = {
            kind: np.concatenate([np.empty(0, dtype=DTYPES[kind]), *self._chunks[kind]])
            for kind in KINDS
        }
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        sends = join_tables(tables, reasons, (low, high), window)
        codes = self._codes
        return Joined(
            accounts=tuple(codes.accounts),
            campaigns=tuple(codes.campaigns),
            creatives=tuple(codes.creatives),
            sends=sends,
            records={kind: self._seen[kind] for kind in KINDS},
            undecodable={k: dict(c) for k, c in self._undecodable.items() if c},
            unmatched={k: dict(c) for k, c in reasons.items() if c},
            unknown_records=self._unknown,
        )
