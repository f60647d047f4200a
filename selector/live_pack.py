"""Decoded records, or ready columns, to fixed-width numpy rows, a chunk of one kind at a time.

A chunk is packed column by column with C-level passes (`map` over attribute getters for
records (`Records`), the lists themselves for columns (`Lists`), `np.fromiter`), which
costs a fraction of a per-record loop. Ids become 64-bit hashes
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
     ("method", "u1"), ("pool", "u1"), ("propensity", "f8"), ("version", "i8"), ("time", "f8"),
     ("model", "i8")]
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


class Codes:
    """Name -> code tables, and the account filter (excluded accounts map to -1)."""

    def __init__(self, accounts: Iterable[str] | None = None) -> None:
        self.only = None if accounts is None else frozenset(accounts)
        self.accounts: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}
        self.creatives: dict[str, int] = {}
        self._account_lookup: dict[str, int] = {}

    @staticmethod
    def of(table: dict[str, int], names: Sequence[Any]) -> NDArray[np.int32]:
        for name in dict.fromkeys(names):
            if name not in table:
                if type(name) is not str:
                    raise TypeError("a name must be a string")
                table[name] = len(table)
        return np.fromiter(map(table.__getitem__, names), dtype=np.int32, count=len(names))

    def account_codes(self, names: Sequence[Any]) -> NDArray[np.int32]:
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


class Records:
    """Column source over decoded records (attribute per field)."""

    __slots__ = ("records",)

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __call__(self, name: str) -> Sequence[Any]:
        return list(map(attrgetter(name), self.records))

    def optional(self, name: str) -> Sequence[Any]:
        return [getattr(r, name, None) for r in self.records]

    def one(self, i: int) -> Records:
        return Records(self.records[i : i + 1])


class Lists:
    """Column source over ready columns (`values[field]`, one entry per row; None for an
    absent optional field)."""

    __slots__ = ("size", "values")

    def __init__(self, values: Mapping[str, Sequence[Any]], size: int) -> None:
        self.values, self.size = values, size

    def __len__(self) -> int:
        return self.size

    def __call__(self, name: str) -> Sequence[Any]:
        return self.values[name]

    def optional(self, name: str) -> Sequence[Any]:
        return self.values.get(name) or [None] * self.size

    def one(self, i: int) -> Lists:
        return Lists({k: v[i : i + 1] for k, v in self.values.items()}, 1)


Source = Records | Lists


def _hashes(ids: Sequence[Any]) -> NDArray[np.int64]:
    out = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
    if None in ids:  # hash(None) is not NO_ID
        out[np.fromiter((x is None for x in ids), dtype=bool, count=len(ids))] = NO_ID
    return out


def _floats(values: Sequence[Any]) -> NDArray[np.float64]:
    return np.fromiter(values, dtype=np.float64, count=len(values))  # None -> NaN


def _versions(values: Sequence[Any]) -> NDArray[np.int64]:
    """Optional versions; -1 where there is none."""
    if values.count(None) == len(values):
        return np.full(len(values), -1, dtype=np.int64)
    return np.fromiter((-1 if v is None else v for v in values), np.int64, len(values))


def _codes(values: Sequence[Any], table: Mapping[Any, int]) -> NDArray[np.uint8]:
    return np.fromiter(map(table.__getitem__, values), dtype=np.uint8, count=len(values))


def _kept(rows: Rows, skipped: Counter[Unmatched]) -> Rows:
    keep = rows["account"] >= 0
    if keep.all():
        return rows
    skipped["other_account"] += int((~keep).sum())
    return rows[keep]


Packer = Callable[[Source, Counter[Unmatched]], Rows]


class Packers:
    """The packer of each kind, over shared `Codes`."""

    def __init__(self, codes: Codes) -> None:
        self.codes = codes
        self.by_kind: dict[Kind, Packer] = {
            "selection_response": self.responses,
            "send": self.sends,
            "click": self.outcomes,
            "conversion": self.conversions,
        }

    def responses(self, col: Source, skipped: Counter[Unmatched]) -> Rows:
        c, rows = self.codes, np.empty(len(col), dtype=RESPONSE)
        rows["key"] = _hashes(col("request_id"))
        rows["account"] = c.account_codes(col("account_id"))
        rows["campaign"] = c.of(c.campaigns, col("campaign_id"))
        rows["creative"] = c.of(c.creatives, col("creative_id"))
        rows["arm"] = _codes(col("arm"), _ARM)
        rows["method"] = _codes(col("method"), _METHOD)
        rows["pool"] = _codes(col("pool"), _POOL)
        rows["propensity"] = _floats(col("propensity"))
        rows["version"] = np.fromiter(col("params_version"), np.int64, len(col))
        rows["time"] = _floats(col("decided_at"))
        rows["model"] = _versions(col.optional("model_version"))
        return _kept(rows, skipped)

    def sends(self, col: Source, skipped: Counter[Unmatched]) -> Rows:
        c, rows = self.codes, np.empty(len(col), dtype=SEND)
        rows["key"] = _hashes(col("event_id"))
        rows["request"] = _hashes(col("request_id"))
        rows["account"] = c.account_codes(col("account_id"))
        rows["campaign"] = c.of(c.campaigns, col("campaign_id"))
        rows["contact"] = _hashes(col("contact_id"))
        rows["creative"] = c.of(c.creatives, col("creative_id"))
        rows["time"] = _floats(col("time"))
        return _kept(rows, skipped)

    def outcomes(self, col: Source, skipped: Counter[Unmatched], revenue: bool = False) -> Rows:
        c, rows = self.codes, np.empty(len(col), dtype=OUTCOME)
        rows["key"] = _hashes(col("event_id"))
        rows["send"] = _hashes(col("send_event_id"))
        rows["account"] = c.account_codes(col("account_id"))
        rows["contact"] = _hashes(col("contact_id"))
        rows["creative"] = c.of(c.creatives, col("creative_id"))
        rows["time"] = _floats(col("time"))
        rows["revenue"] = _floats(col("revenue")) if revenue else 0.0
        return _kept(rows, skipped)

    def conversions(self, col: Source, skipped: Counter[Unmatched]) -> Rows:
        return self.outcomes(col, skipped, revenue=True)

    def pack(self, kind: Kind, records: Sequence[Any], skipped: Counter[Unmatched]) -> Rows:
        """`records` of `kind` as rows; what cannot be packed is counted in `skipped`.
        Selection responses without a decision (status error) count as `error_response`."""
        if kind == "selection_response" and records:
            kept = [r for r in records if hasattr(r, "creative_id")]
            if len(kept) < len(records):
                skipped["error_response"] += len(records) - len(kept)
                records = kept
        return self.pack_columns(kind, Records(records), skipped)

    def pack_columns(self, kind: Kind, source: Source, skipped: Counter[Unmatched]) -> Rows:
        """The rows of a column source; a row that cannot be packed (a missing field, a
        wrong type) counts as `unknown_record`."""
        packer = self.by_kind[kind]
        counted: Counter[Unmatched] = Counter()
        try:
            rows = [packer(source, counted)]
        except _FAILURES:
            rows, counted = [], Counter()
            for i in range(len(source)):
                one: Counter[Unmatched] = Counter()
                try:
                    rows.append(packer(source.one(i), one))
                except _FAILURES:
                    one = Counter({"unknown_record": 1})
                counted.update(one)
        skipped.update(counted)
        return np.concatenate(rows) if rows else np.empty(0, dtype=DTYPES[kind])
