"""Joining live selection responses with the sends, clicks and conversions they led to.

What the wire gives to join on (schemas/): a selection_response.v1 carries the request
id, account, campaign, creative, arm, method, pool, propensity and params version but no
contact; a send.v1 carries the request id of the selection it answered (when one asked),
the contact and the creative; a click.v1 or conversion.v1 names its send
(`send_event_id`) when known, and always the contact and the creative. So a send joins
its response by request id, and an outcome joins its send by `send_event_id`, or else the
contact's latest send of the same creative at or before it, within the attribution window.

Streaming: `JoinAccumulator.add` takes one decoded record at a time, topics interleaved or
one after another, and packs it into a fixed-width row (ids as 64-bit hashes, names as
small integer codes) of a numpy chunk; no Python object per record outlives the call.
`finish` joins with sorts and binary searches. Memory is 45-60 bytes per record, however
many contacts there are. Ids are compared by Python's 64-bit string hash (salted per
process, harmless since keys never leave it); two of ten million ids share one with
probability ~3e-6. The hash is never -1, which marks an absent id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.live_match import (
    ATTRIBUTION_WINDOW,
    KINDS,
    NO_ID,
    UNMATCHED,
    Kind,
    Rows,
    Unmatched,
    join_tables,
)

CHUNK = 1 << 16

_RESPONSE = np.dtype(
    [("key", "i8"), ("account", "i4"), ("campaign", "i4"), ("creative", "i4"), ("arm", "u1"),
     ("method", "u1"), ("pool", "u1"), ("propensity", "f8"), ("version", "i8"), ("time", "f8")]
)  # fmt: skip
_SEND = np.dtype(
    [("key", "i8"), ("request", "i8"), ("account", "i4"), ("campaign", "i4"),
     ("contact", "i8"), ("creative", "i4"), ("time", "f8")]
)  # fmt: skip
_OUTCOME = np.dtype(
    [("key", "i8"), ("send", "i8"), ("account", "i4"), ("contact", "i8"), ("creative", "i4"),
     ("time", "f8"), ("revenue", "f8")]
)  # fmt: skip
_DTYPES: dict[Kind, np.dtype[Any]] = {
    "selection_response": _RESPONSE,
    "send": _SEND,
    "click": _OUTCOME,
    "conversion": _OUTCOME,
}
_ARM = {name: i for i, name in enumerate(ARMS)}
_METHOD = {name: i for i, name in enumerate(DECIDED_BY)}
_POOL = {name: i for i, name in enumerate(POOLS)}
__all__ = ["ATTRIBUTION_WINDOW", "KINDS", "UNMATCHED", "JoinAccumulator", "Joined", "Kind"]


@dataclass(frozen=True, slots=True, eq=False)
class Joined:
    """The reported sends as columns (`sends`: account, campaign, creative, contact, time,
    arm, method, pool, propensity, version, clicks, conversions, revenue), the code
    tables, and what was left out, by kind and reason."""

    accounts: tuple[str, ...]
    campaigns: tuple[str, ...]
    creatives: tuple[str, ...]
    sends: Rows
    records: dict[Kind, int]
    undecodable: dict[Kind, dict[str, int]]
    unmatched: dict[Kind, dict[Unmatched, int]]
    unknown_records: int = 0


def _code(table: dict[str, int], name: str) -> int:
    code = table.get(name)
    if code is None:
        code = table[name] = len(table)
    return code


class JoinAccumulator:
    """Collects records for `finish`. The one mutable object of the live report: it owns
    its chunk buffers and code tables, and `finish` leaves it unchanged."""

    def __init__(self, accounts: Iterable[str] | None = None) -> None:
        self._only = None if accounts is None else frozenset(accounts)
        self._accounts: dict[str, int] = {}
        self._campaigns: dict[str, int] = {}
        self._creatives: dict[str, int] = {}
        self._rows: dict[Kind, list[tuple[Any, ...]]] = {kind: [] for kind in KINDS}
        self._chunks: dict[Kind, list[Rows]] = {kind: [] for kind in KINDS}
        self._seen: Counter[Kind] = Counter()
        self._unknown = 0
        self._undecodable: dict[Kind, Counter[str]] = {kind: Counter() for kind in KINDS}
        self._skipped: dict[Kind, Counter[Unmatched]] = {kind: Counter() for kind in KINDS}
        self._pack = {
            "selection_response": self._response,
            "send": self._send,
            "click": self._outcome,
            "conversion": self._outcome,
        }

    def add(self, record: Any) -> None:
        """One decoded record: a selection response (ok or error), send, click or
        conversion, as `stream.messages` defines them. Anything else is counted."""
        pack = self._pack.get(getattr(record, "kind", None))  # type: ignore[arg-type]
        if pack is None:
            self._unknown += 1
            return
        kind = cast(Kind, record.kind)
        self._seen[kind] += 1
        try:
            row = pack(record)
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            row = "unknown_record"
        if isinstance(row, str):
            self._skipped[kind][row] += 1  # type: ignore[index]
            return
        rows = self._rows[kind]
        rows.append(row)
        if len(rows) >= CHUNK:
            self._flush(kind)

    def add_many(self, records: Iterable[Any]) -> None:
        for record in records:
            self.add(record)

    def add_rejected(self, kind: Kind, reason: str) -> None:
        """A record of `kind` that did not decode, by the decoder's bounded reason."""
        self._seen[kind] += 1
        self._undecodable[kind][reason] += 1

    def _account(self, account_id: str) -> int | None:
        code = self._accounts.get(account_id)
        if code is None and (self._only is None or account_id in self._only):
            code = self._accounts[account_id] = len(self._accounts)
        return code

    def _response(self, r: Any) -> tuple[Any, ...] | str:
        if not hasattr(r, "creative_id"):
            return "error_response"
        account = self._account(r.account_id)
        if account is None:
            return "other_account"
        p = r.propensity
        return (
            hash(r.request_id), account, _code(self._campaigns, r.campaign_id),
            _code(self._creatives, r.creative_id), _ARM[r.arm], _METHOD[r.method],
            _POOL[r.pool], math.nan if p is None else p, r.params_version, r.decided_at,
        )  # fmt: skip

    def _send(self, s: Any) -> tuple[Any, ...] | str:
        account = self._account(s.account_id)
        if account is None:
            return "other_account"
        request = s.request_id
        return (
            hash(s.event_id), NO_ID if request is None else hash(request), account,
            _code(self._campaigns, s.campaign_id), hash(s.contact_id),
            _code(self._creatives, s.creative_id), s.time,
        )  # fmt: skip

    def _outcome(self, o: Any) -> tuple[Any, ...] | str:
        account = self._account(o.account_id)
        if account is None:
            return "other_account"
        send = o.send_event_id
        return (
            hash(o.event_id), NO_ID if send is None else hash(send), account,
            hash(o.contact_id), _code(self._creatives, o.creative_id), o.time,
            getattr(o, "revenue", 0.0),
        )  # fmt: skip

    def _flush(self, kind: Kind) -> None:
        rows = self._rows[kind]
        if rows:
            self._chunks[kind].append(np.array(rows, dtype=_DTYPES[kind]))
            self._rows[kind] = []

    def _table(self, kind: Kind) -> Rows:
        pending = [np.array(self._rows[kind], dtype=_DTYPES[kind])]
        return np.concatenate([*self._chunks[kind], *pending])

    def finish(
        self,
        since: float | None = None,
        until: float | None = None,
        window: float = ATTRIBUTION_WINDOW,
    ) -> Joined:
        """Join what was added: sends decided in [since, until) with their outcomes."""
        reasons = {kind: Counter(c) for kind, c in self._skipped.items()}
        tables = {kind: self._table(kind) for kind in KINDS}
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        sends = join_tables(tables, reasons, (low, high), window)
        return Joined(
            accounts=tuple(self._accounts),
            campaigns=tuple(self._campaigns),
            creatives=tuple(self._creatives),
            sends=sends,
            records={kind: self._seen[kind] for kind in KINDS},
            undecodable={k: dict(c) for k, c in self._undecodable.items() if c},
            unmatched={k: dict(c) for k, c in reasons.items() if c},
            unknown_records=self._unknown,
        )
