"""Decoded records to fixed-width numpy rows, a chunk of one kind at a time.

A chunk is packed column by column with C-level passes (`map` over attribute getters,
`np.fromiter`), which costs a fraction of a per-record loop. Ids become 64-bit hashes
(`NO_ID` for an absent optional id), names small integer codes in first-seen order.
A chunk the fast path cannot pack (a record missing a field or of a wrong type) is packed
record by record, and the records that still fail count as `unknown_record`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.live_match import NO_ID, Kind, Rows, Unmatched

RESPONSE = np.dtype(
    [("key", "i8"), ("account", "i4"), ("campaign", "i4"), ("creative", "i4"), ("arm", "u1"),
     ("method", "u1"), ("pool", "u1"), ("propensity", "f8"), ("version", "i8"), ("time", "f8")]
)  # fmt: skip
SEND = np.dtype(
    [("key", "i8"), ("request", "i8"), ("account", "i4"), ("campaign", "i4"),
     ("contact", "i8"), ("creative", "i4"), ("time", "f8")]
)  # fmt: skip
OUTCOME = np.dtype(
    [("key", "i8"), ("send", "i8"), ("account", "i4"), ("contact", "i8"), ("creative", "i4"),
     ("time", "f8"), ("revenue", "f8")]
)  # fmt: skip
DTYPES: dict[Kind, np.dtype[Any]] = {
    "selection_response": RESPONSE,
    "send": SEND,
    "click": OUTCOME,
    "conversion": OUTCOME,
}
_ARM = {name: i for i, name in enumerate(ARMS)}
_METHOD = {name: i for i, name in enumerate(DECIDED_BY)}
_POOL = {name: i for i, name in enumerate(POOLS)}
_FAILURES = (AttributeError, KeyError, TypeError, ValueError, OverflowError)
Packer = Callable[[Sequence[Any], Counter[Unmatched]], Rows]


def _get(name: str) -> Callable[[Any], Any]:
    return attrgetter(name)


class Codes:
    """Name -> code tables, and the account filter (excluded accounts map to -1)."""

    def __init__(self, accounts: Iterable[str] | None = None) -> None:
        self.only = None if accounts is None else frozenset(accounts)
        self.accounts: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}
        self.creatives: dict[str, int] = {}
        self._account_lookup: dict[str, int] = {}

    @staticmethod
    def of(table: dict[str, int], names: list[Any]) -> NDArray[np.int32]:
        for name in dict.fromkeys(names):
            if name not in table:
                if type(name) is not str:
                    raise TypeError("a name must be a string")
                table[name] = len(table)
        return np.fromiter(map(table.__getitem__, names), dtype=np.int32, count=len(names))

    def account_codes(self, names: list[Any]) -> NDArray[np.int32]:
        lookup = self._account_lookup
        for name in dict.fromkeys(names):
            if name not in lookup:
                if type(name) is not str:
                    raise TypeError("an account id must be a string")
                if self.only is None or name in self.only:
                    lookup[name] = self.accounts[name] = len(self.accounts)
                else:
                    lookup[name] = -1
        return np.fromiter(map(lookup.__getitem__, names), dtype=np.int32, count=len(names))


def _hashes(ids: list[Any]) -> NDArray[np.int64]:
    out = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
    if None in ids:  # hash(None) is not NO_ID
        out[np.fromiter((x is None for x in ids), dtype=bool, count=len(ids))] = NO_ID
    return out


def _floats(records: Sequence[Any], name: str) -> NDArray[np.float64]:
    return np.fromiter(map(_get(name), records), dtype=np.float64, count=len(records))


def _codes(records: Sequence[Any], name: str, table: Mapping[Any, int]) -> NDArray[np.uint8]:
    values = map(table.__getitem__, map(_get(name), records))
    return np.fromiter(values, dtype=np.uint8, count=len(records))


def _kept(rows: Rows, skipped: Counter[Unmatched]) -> Rows:
    keep = rows["account"] >= 0
    if keep.all():
        return rows
    skipped["other_account"] += int((~keep).sum())
    return rows[keep]


class Packers:
    """The packer of each kind, over shared `Codes`."""

    def __init__(self, codes: Codes) -> None:
        self.codes = codes
        self.by_kind: dict[Kind, Packer] = {
            "selection_response": self.responses,
            "send": self.sends,
            "click": self.outcomes,
            "conversion": self.outcomes,
        }

    def responses(self, records: Sequence[Any], skipped: Counter[Unmatched]) -> Rows:
        try:
            creative = list(map(_get("creative_id"), records))
        except AttributeError:  # error responses carry no decision
            kept = [r for r in records if hasattr(r, "creative_id")]
            skipped["error_response"] += len(records) - len(kept)
            records, creative = kept, list(map(_get("creative_id"), kept))
        c, rows = self.codes, np.empty(len(records), dtype=RESPONSE)
        rows["key"] = _hashes(list(map(_get("request_id"), records)))
        rows["account"] = c.account_codes(list(map(_get("account_id"), records)))
        rows["campaign"] = c.of(c.campaigns, list(map(_get("campaign_id"), records)))
        rows["creative"] = c.of(c.creatives, creative)
        rows["arm"] = _codes(records, "arm", _ARM)
        rows["method"] = _codes(records, "method", _METHOD)
        rows["pool"] = _codes(records, "pool", _POOL)
        rows["propensity"] = _floats(records, "propensity")  # None -> NaN
        rows["version"] = np.fromiter(map(_get("params_version"), records), np.int64, len(records))
        rows["time"] = _floats(records, "decided_at")
        return _kept(rows, skipped)

    def sends(self, records: Sequence[Any], skipped: Counter[Unmatched]) -> Rows:
        c, rows = self.codes, np.empty(len(records), dtype=SEND)
        rows["key"] = _hashes(list(map(_get("event_id"), records)))
        rows["request"] = _hashes(list(map(_get("request_id"), records)))
        rows["account"] = c.account_codes(list(map(_get("account_id"), records)))
        rows["campaign"] = c.of(c.campaigns, list(map(_get("campaign_id"), records)))
        rows["contact"] = _hashes(list(map(_get("contact_id"), records)))
        rows["creative"] = c.of(c.creatives, list(map(_get("creative_id"), records)))
        rows["time"] = _floats(records, "time")
        return _kept(rows, skipped)

    def outcomes(self, records: Sequence[Any], skipped: Counter[Unmatched]) -> Rows:
        c, rows = self.codes, np.empty(len(records), dtype=OUTCOME)
        rows["key"] = _hashes(list(map(_get("event_id"), records)))
        rows["send"] = _hashes(list(map(_get("send_event_id"), records)))
        rows["account"] = c.account_codes(list(map(_get("account_id"), records)))
        rows["contact"] = _hashes(list(map(_get("contact_id"), records)))
        rows["creative"] = c.of(c.creatives, list(map(_get("creative_id"), records)))
        rows["time"] = _floats(records, "time")
        has_revenue = bool(records) and hasattr(records[0], "revenue")
        rows["revenue"] = _floats(records, "revenue") if has_revenue else 0.0
        return _kept(rows, skipped)

    def pack(self, kind: Kind, records: Sequence[Any], skipped: Counter[Unmatched]) -> Rows:
        """`records` of `kind` as rows; what cannot be packed is counted in `skipped`."""
        packer = self.by_kind[kind]
        counted: Counter[Unmatched] = Counter()
        try:
            rows = [packer(records, counted)]
        except _FAILURES:
            rows, counted = [], Counter()
            for record in records:
                one: Counter[Unmatched] = Counter()
                try:
                    rows.append(packer([record], one))
                except _FAILURES:
                    one = Counter({"unknown_record": 1})
                counted.update(one)
        skipped.update(counted)
        return np.concatenate(rows) if rows else np.empty(0, dtype=DTYPES[kind])
