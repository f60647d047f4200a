"""Batches of responses and events decoded into columns, for readers of whole topic ranges
(the live report, `stream.report.raw`).

`decode_columns(kind, raws)` gives what `stream.wire.codec.decode` gives value by value,
as one list per field: each JSON value is parsed with `orjson`, and each field is checked
for the whole batch at once (types, lengths, ranges, enums) with C-level passes over the
column. A value any check fails, and only such a value, is decoded again by the codec
itself, which gives its exact rejection reason, or, where a check here is stricter than
the codec's (an integer written as `3.0`), the value the codec accepts, put back in its
place. So the accepted values, their order and the rejections by reason are the codec's.
About five times faster than the codec a value at a time, which builds a dataclass per
value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_, is_not, itemgetter
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray

from selector.batch import ARMS, DECIDED_BY, POOLS, REASONS
from stream.wire import codec
from stream.wire.checks import LIMITS, Limits
from stream.wire.messages import (
    COOLDOWN_STATES,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_REVENUE,
    MAX_TIME,
    SCHEMAS,
    ClickEvent,
    ConversionEvent,
    SelectionResponse,
    SendEvent,
)

ColumnKind = Literal["selection_response", "send", "click", "conversion"]
Mask = NDArray[np.bool_]
Column = Sequence[Any]  # a list or a tuple
ColumnCheck = Callable[[Column], Mask | None]  # None: every value passes
_CURRENCY = re.compile("[A-Z]{3}")
_NOT_NULL = ("cooldowns", "model_version", "custom_dropped")


@dataclass(frozen=True, slots=True, eq=False)
class Columns:
    """Decoded values of one kind: `values[field]` holds one entry per accepted value, in
    arrival order (None for an absent optional field); `rejected` counts the others by
    the codec's reason; `errors` counts selection responses with status error."""

    kind: ColumnKind
    size: int
    values: dict[str, Column]
    rejected: Counter[str] = field(default_factory=Counter)
    errors: int = 0


def _mask(col: Column, ok: Callable[[Any], bool]) -> Mask:
    return np.fromiter(map(ok, col), dtype=bool, count=len(col))


def _strings(col: Column) -> bool:
    """Every value a string of 1 to `MAX_ID_LENGTH` characters (C-level passes)."""
    try:
        "".join(col)  # raises unless every value is a string
    except TypeError:
        return False
    return not col or (min(map(len, col)) > 0 and max(map(len, col)) <= MAX_ID_LENGTH)


def ids(nullable: bool = False, few: bool = False) -> ColumnCheck:
    """Ids (`nullable`: or None); `few`: few distinct values (account, campaign, creative
    ids), checked once each."""

    def one(x: Any) -> bool:
        return (nullable and x is None) or (type(x) is str and 0 < len(x) <= MAX_ID_LENGTH)

    def check(col: Column) -> Mask | None:
        text: Column = col
        if nullable and None in col:
            text = list(filter(None, col))  # drops None, and "" (a failure) with it
            if len(text) + col.count(None) != len(col):
                return _mask(col, one)
        if few:
            try:
                text = list(set(text))
            except TypeError:  # a list or an object
                return _mask(col, one)
        return None if _strings(text) else _mask(col, one)

    return check


def numbers(low: float, high: float, nullable: bool = False) -> ColumnCheck:
    types = {int, float, type(None)} if nullable else {int, float}

    def one(x: Any) -> bool:
        return (nullable and x is None) or (type(x) in (int, float) and low <= x <= high)

    def check(col: Column) -> Mask | None:
        if set(map(type, col)) <= types:
            try:
                v = np.fromiter(col, dtype=np.float64, count=len(col))  # None -> NaN
            except OverflowError:
                return _mask(col, one)
            inside = (v >= low) & (v <= high)
            if nullable:
                inside |= np.isnan(v)
            return None if inside.all() else inside
        return _mask(col, one)

    return check


def integers(low: int, high: int, absent_ok: bool = False) -> ColumnCheck:
    """Integers (`absent_ok`: or None, for an optional field not there)."""

    def one(x: Any) -> bool:
        return (absent_ok and x is None) or (type(x) is int and low <= x <= high)

    def check(col: Column) -> Mask | None:
        values = col
        if absent_ok and None in col:
            if col.count(None) == len(col):
                return None
            values = [x for x in col if x is not None]
        if set(map(type, values)) == {int} and min(values) >= low and max(values) <= high:
            return None
        return _mask(col, one)

    return check


def enum(values: Sequence[Any], absent_ok: bool = False) -> ColumnCheck:
    allowed = frozenset(values) | ({None} if absent_ok else set())

    def one(x: Any) -> bool:
        return (type(x) is str or x is None) and x in allowed

    def check(col: Column) -> Mask | None:
        try:
            if set(col) <= allowed:  # no value of another type equals a string
                return None
        except TypeError:
            pass
        return _mask(col, one)

    return check


def absent(col: Column) -> Mask | None:
    """A rare optional field (`custom_dropped`): values where it is there go to the codec."""
    if col.count(None) == len(col):
        return None
    return np.fromiter(map(is_, col, repeat(None)), bool, len(col))


def currency(col: Column) -> Mask | None:
    if col.count(None) == len(col):
        return None
    return _mask(col, lambda x: x is None or (type(x) is str and bool(_CURRENCY.fullmatch(x))))


@dataclass(frozen=True, slots=True)
class Spec:
    """A kind's checks: per field, the column check; `required`: the fields that must be
    present (null or not); `closed`: the only fields allowed (None: any); `build`: the
    message class, whose fields name the columns. `schema` is checked as a field."""

    checks: dict[str, ColumnCheck]
    build: type
    required: tuple[str, ...]
    closed: frozenset[str] | None = None


def _spec(build: type, checks: dict[str, ColumnCheck], optional: str, closed: bool) -> Spec:
    names = {"schema", *checks}
    required = tuple(n for n in names if n not in optional.split())
    return Spec(checks, build, required, frozenset(names) if closed else None)


def _specs(limits: Limits) -> dict[ColumnKind, Spec]:
    time, few = numbers(0, MAX_TIME), ids(few=True)
    outcome = {"event_id": ids(), "account_id": few, "contact_id": ids(), "creative_id": few}
    outcome |= {"time": time, "send_event_id": ids(True), "campaign_id": ids(True, few=True)}
    response = {"request_id": ids(), "account_id": few, "campaign_id": few, "creative_id": few}
    response |= {
        "status": enum(("ok",)),
        "arm": enum(ARMS),
        "method": enum(DECIDED_BY),
        "pool": enum(POOLS),
        "reason": enum(REASONS),
        "propensity": numbers(0, 1, nullable=True),
        "params_version": integers(0, MAX_INTEGER),
        "decided_at": time,
        "cooldowns": enum(COOLDOWN_STATES, absent_ok=True),
        "model_version": integers(1, MAX_INTEGER, absent_ok=True),
        "custom_dropped": absent,
    }
    sends = {"event_id": ids(), "account_id": few, "campaign_id": few, "contact_id": ids()}
    sends |= {"creative_id": few, "time": time, "request_id": ids(True)}
    revenue = numbers(0, min(MAX_REVENUE, limits.max_revenue))
    with_schema = {kind: enum((SCHEMAS[kind],)) for kind in SCHEMAS}
    return {
        "selection_response": _spec(
            SelectionResponse,
            response | {"schema": with_schema["selection_response"]},
            "cooldowns model_version custom_dropped",
            closed=True,
        ),
        "send": _spec(SendEvent, sends | {"schema": with_schema["send"]}, "request_id", False),
        "click": _spec(
            ClickEvent,
            outcome
            | {"send_time": numbers(0, MAX_TIME, nullable=True)}
            | {"schema": with_schema["click"]},
            "send_event_id campaign_id send_time",
            False,
        ),
        "conversion": _spec(
            ConversionEvent,
            outcome
            | {"revenue": revenue, "currency": currency, "schema": with_schema["conversion"]}
            | {"click_time": numbers(0, MAX_TIME, nullable=True)},
            "send_event_id campaign_id currency click_time",
            False,
        ),
    }


_SPECS: dict[Limits, dict[ColumnKind, Spec]] = {}


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _parsed(kind: ColumnKind, raws: list[Any], limits: Limits) -> tuple[list[Any], Mask]:
    """Parsed values, and which are worth checking further: bytes within the size limit
    that parse to an object."""
    n = len(raws)
    if set(map(type, raws)) != {bytes}:
        ok = np.fromiter(map(is_, map(type, raws), repeat(bytes)), dtype=bool, count=n)
        raws = [r if type(r) is bytes else b"" for r in raws]
    else:
        ok = np.ones(n, dtype=bool)
    limit = limits.max_bytes_for(kind)
    if max(map(len, raws), default=0) > limit:
        ok &= np.fromiter(map(len, raws), dtype=np.int64, count=n) <= limit
    docs = list(map(_loads, raws))
    if set(map(type, docs)) != {dict}:
        ok &= np.fromiter(map(is_, map(type, docs), repeat(dict)), dtype=bool, count=n)
    return docs, ok


def _columns(spec: Spec, docs: list[dict[str, Any]]) -> tuple[dict[str, Column], Mask]:
    """Every field's column, and which rows have every required field."""
    n, get = len(docs), dict.get
    ok = np.ones(n, dtype=bool)
    required = spec.required
    columns: dict[str, Column]
    if not docs:
        return {name: [] for name in spec.checks}, ok
    try:
        rows = zip(*map(itemgetter(*required), docs), strict=True)
        columns = dict(zip(required, rows, strict=True))
    except KeyError:
        columns = {name: list(map(get, docs, repeat(name))) for name in required}
        for name in required:
            ok &= np.fromiter(map(dict.__contains__, docs, repeat(name)), bool, n)
    for name in spec.checks:
        if name not in columns:
            columns[name] = list(map(get, docs, repeat(name)))
    return columns, ok


def _checked(spec: Spec, docs: list[dict[str, Any]]) -> tuple[dict[str, Column], Mask]:
    """The columns of every field, and which rows pass every check."""
    columns, ok = _columns(spec, docs)
    for name, check in spec.checks.items():
        bad = check(columns[name])
        if bad is not None:
            ok &= bad
    for name in _NOT_NULL:  # optional, but not null when there
        if name in spec.checks and None in columns[name]:
            n = len(docs)
            there = np.fromiter(map(dict.__contains__, docs, repeat(name)), bool, n)
            if columns[name].count(None) != n - int(there.sum()):
                ok &= ~there | np.fromiter(map(is_not, columns[name], repeat(None)), bool, n)
    closed = spec.closed
    if closed is not None and not closed.issuperset(set().union(*docs)):
        ok &= _mask(docs, closed.issuperset)  # unknown here: the codec says what it is
    return columns, ok


def _pick(columns: dict[str, Column], rows: list[int]) -> dict[str, Column]:
    return {name: list(map(col.__getitem__, rows)) for name, col in columns.items()}


def decode_columns(kind: ColumnKind, raws: list[Any], limits: Limits = LIMITS) -> Columns:
    """`raws` (value bytes, None for a tombstone) of `kind` as columns; see the module."""
    specs = _SPECS.get(limits) or _SPECS.setdefault(limits, _specs(limits))
    spec = specs[kind]
    if not raws:
        return Columns(kind, 0, {name: [] for name in spec.checks})
    docs, parsed = _parsed(kind, raws, limits)
    viable = np.flatnonzero(parsed)
    if viable.size < len(raws):
        docs = list(map(docs.__getitem__, viable.tolist()))
    columns, fine = _checked(spec, docs)
    if fine.all() and viable.size == len(raws):
        return Columns(kind, len(raws), columns)
    rejected: Counter[str] = Counter()
    errors, again = 0, {}
    failed = np.union1d(np.flatnonzero(~parsed), viable[~fine])
    for i in failed.tolist():
        message = codec.decode(kind, raws[i], limits=limits)
        if isinstance(message, codec.Rejected):
            rejected[message.reason] += 1
        elif isinstance(message, spec.build):
            again[i] = message
        else:
            errors += 1  # a selection response with status error
    out = columns if fine.all() else _pick(columns, np.flatnonzero(fine).tolist())
    if again:
        out = _merged(out, viable[fine], again)
    return Columns(kind, len(next(iter(out.values()))), out, rejected, errors)


def _merged(
    out: dict[str, Column], rows: NDArray[np.intp], again: dict[int, Any]
) -> dict[str, Column]:
    """`out` (the values at positions `rows`) with the codec's messages `again` (by
    position) put in their places."""
    positions = rows.tolist()
    result: dict[str, list[Any]] = {name: [] for name in out}
    merged = sorted(
        [(p, j, None) for j, p in enumerate(positions)] + [(p, -1, m) for p, m in again.items()],
        key=lambda x: x[0],
    )
    for _, j, message in merged:
        for name, column in result.items():
            column.append(out[name][j] if message is None else getattr(message, name, None))
    return dict(result)


__all__ = ["ColumnKind", "Columns", "decode_columns"]
