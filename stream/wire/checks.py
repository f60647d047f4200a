"""Field checks for the codec: each takes a JSON value and its path, and returns the
typed value or raises `Bad` with a bounded reason and a detail that names the field and
the rule, never a string value."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from selector import domain as d
from selector.custom_fields import MAX_FIELDS, MAX_NAME, CustomField, fields_from_dicts
from stream.wire import messages as m
from stream.wire.messages import MAX_ID_LENGTH, MAX_INTEGER, MAX_REVENUE, MAX_TEXT_LENGTH, MAX_TIME
from stream.wire.reasons import Rejection

_SNAPSHOT_KINDS = frozenset(
    {
        "dead_letter",
        "account_settings",
        "campaigns",
        "creatives",
        "offers",
        "params_snapshot",
        "stats_correction",
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits and plausibility ceilings; from the service settings as
    `Limits(s.max_message_bytes, max_revenue=s.max_revenue,
    max_future_seconds=s.max_future_seconds)`."""

    max_bytes: int = 65_536
    max_snapshot_bytes: int = 1_048_576  # catalogs, parameter snapshots, dead letters
    max_batch_bytes: int = 1_048_576  # batch envelopes (stream.wire.batches)
    max_revenue: float = 1_000_000.0
    max_future_seconds: float = 86_400.0

    def max_bytes_for(self, kind: m.Kind) -> int:
        return self.max_snapshot_bytes if kind in _SNAPSHOT_KINDS else self.max_bytes


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message was not decoded: a bounded reason and a human-readable detail."""

    reason: Rejection
    detail: str


class Bad(Exception):
    def __init__(self, reason: Rejection, detail: str) -> None:
        self.reason = reason
        self.detail = detail


Check = Callable[[Any, str], Any]
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}


def wrong(path: str, expected: str, value: object) -> Bad:
    got = JSON_TYPES.get(type(value), "null" if value is None else "object")
    return Bad("wrong_type", f"{path}: must be {expected}, got {got}")


def string(
    low: int = 1,
    high: int = MAX_ID_LENGTH,
    *,
    ok: Callable[[str], Any] | None = None,
    rule: str = "",
) -> Check:
    rule = rule or f"{low} to {high} characters"

    def check(v: Any, path: str) -> str:
        if type(v) is not str:
            raise wrong(path, "a string", v)
        if not (low <= len(v) <= high and (ok is None or ok(v))):
            raise Bad("invalid_value", f"{path}: must be {rule}")
        return v

    return check


def enum(values: tuple[str, ...]) -> Check:
    return string(0, 64, ok=frozenset(values).__contains__, rule=f"one of {', '.join(values)}")


def pattern(regex: str, rule: str) -> Check:
    return string(0, 2**31, ok=re.compile(regex).fullmatch, rule=rule)


def number(
    low: float, high: float | None = None, *, above: bool = False, integer: bool = False
) -> Check:
    rule = f"{'>' if above else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")

    def check(v: Any, path: str) -> float:
        kind = type(v)
        if integer and kind is float and v.is_integer():  # JSON Schema: 3.0 is an integer
            v, kind = int(v), int
        if kind is not int and (integer or kind is not float):
            raise wrong(path, "an integer" if integer else "a number", v)
        if v < low or (above and v == low) or (high is not None and v > high):
            raise Bad("invalid_value", f"{path}: must be {rule}, got {v:.6g}")
        return v if integer else float(v)

    return check


def boolean(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise wrong(path, "a boolean", v)
    return v


def integer(low: int) -> Check:
    return number(low, MAX_INTEGER, integer=True)


def nullable(inner: Check) -> Check:
    def check(v: Any, path: str) -> Any:
        return None if v is None else inner(v, path)

    return check


def array(item: Check, *, unique_by: str | None = None, min_items: int = 0) -> Check:
    def check(v: Any, path: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise wrong(path, "an array", v)
        if len(v) < min_items:
            raise Bad("invalid_value", f"{path}: needs at least {min_items} item(s)")
        items = tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))
        ids = [getattr(x, unique_by) for x in items] if unique_by else []
        if len(set(ids)) != len(ids):
            raise Bad("invalid_value", f"{path}: lists a {unique_by} more than once")
        return items

    return check


def map(value: Check) -> Check:
    def check(v: Any, path: str) -> MappingProxyType[str, Any]:
        if type(v) is not dict:
            raise wrong(path, "an object", v)
        for k in v:
            id(k, f"{path} key")
        return MappingProxyType({k: value(x, f"{path}.{k}") for k, x in v.items()})

    return check


def custom_fields(v: Any, path: str) -> tuple[CustomField, ...]:
    """An account's custom-field declarations: each shape checked here, the rest by
    `selector.custom_fields.fields_from_dicts`."""
    if type(v) is not list:
        raise wrong(path, "an array", v)
    for i, item in enumerate(v):
        categorical = type(item) is dict and item.get("type") == "categorical"
        (_CATEGORICAL if categorical else _NUMERIC)(item, f"{path}[{i}]")
    try:
        return fields_from_dicts(v)
    except d.ConfigError as exc:
        raise Bad("invalid_value", f"{path}: {exc}") from None


def custom_values(v: Any, path: str) -> MappingProxyType[str, str | float | None]:
    """A request's custom-field values: at most `MAX_FIELDS` names (1-64 characters), each
    a string, a number or null. Whether a value fits the account's declaration is checked
    when the request is decided (a value that does not is dropped, not refused)."""
    if type(v) is not dict:
        raise wrong(path, "an object", v)
    if len(v) > MAX_FIELDS:
        raise Bad("invalid_value", f"{path}: at most {MAX_FIELDS} fields; got {len(v)}")
    for name, value in v.items():
        if not 0 < len(name) <= MAX_NAME:
            raise Bad("invalid_value", f"{path}: field names must be 1 to {MAX_NAME} characters")
        if type(value) is str:
            if len(value) > MAX_ID_LENGTH:
                raise Bad("invalid_value", f"{path}.{name}: at most {MAX_ID_LENGTH} characters")
        elif type(value) is int or type(value) is float:
            if not math.isfinite(value):
                raise Bad("invalid_value", f"{path}.{name}: must be finite")
        elif value is not None:
            raise wrong(f"{path}.{name}", "a string, a number or null", value)
    return MappingProxyType(dict(v))


id = string()
b64_text = pattern(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", "base64")
COMMON: dict[str, Check] = {  # checks by field name, unless a shape overrides them
    "time": number(0, MAX_TIME),
    "decided_at": number(0, MAX_TIME),
    "computed_at": number(0, MAX_TIME),
    "revenue": number(0, MAX_REVENUE),
    "payout": number(0, MAX_REVENUE),
    "payout_floor": number(0, MAX_REVENUE),
    "alpha": number(0, above=True),
    "beta": number(0, above=True),
    "automated_percent": number(0, 100),
    "traffic_pct": number(0, 100),
    "learning_pct": number(0, 100),
    "exploration_floor_pct": number(0, 100),
    "cooldown_seconds": number(0, MAX_TIME),
    "half_life_seconds": nullable(number(0, MAX_TIME, above=True)),
    "model_training_interval_seconds": number(0, MAX_TIME, above=True),
    **dict.fromkeys(("sends", "clicks", "conversions", "learning_threshold"), integer(0)),
    **dict.fromkeys(("ctr_alpha", "ctr_beta", "cvr_alpha", "cvr_beta"), number(0, above=True)),
    **dict.fromkeys(("version", "params_version", "original_size"), integer(0)),
    "model_version": integer(1),
    **dict.fromkeys(("partition", "offset"), integer(-1)),
    **dict.fromkeys(("detail", "message"), string(0, MAX_TEXT_LENGTH)),
    "original": lambda v, path: base64.b64decode(b64_text(v, path)),
    "key": nullable(lambda v, path: base64.b64decode(b64_text(v, path))),
}
MISSING = object()


class Shape:
    """An object: checks each field, then returns `build(**fields)`. Fields are named in
    `spec`, space separated, `?` marking the optional ones; a field's check comes from
    `checks`, else `COMMON`, else it is an id. Unknown fields are rejected, unless the
    spec ends with `...`: events from upstream ignore them, so producers can add fields
    without a new version."""

    __slots__ = ("absent", "build", "fields", "known", "positional")

    def __init__(self, spec: str, build: Any, **checks: Check) -> None:
        words = spec.split()
        names = [(name.rstrip("?"), not name.endswith("?")) for name in words if name != "..."]
        self.fields = tuple((n, checks.get(n) or COMMON.get(n, id), req) for n, req in names)
        self.build: Callable[..., Any] = build
        self.known = None if "..." in words else frozenset(n for n, _ in names)
        # Positional construction is twice as fast; it needs the dataclass's own field
        # order and None as the default of every optional field.
        own = dataclasses.fields(build) if dataclasses.is_dataclass(build) else ()
        self.positional = [f.name for f in own] == [n for n, _ in names] and all(
            req or f.default is None for f, (_, req) in zip(own, names, strict=True)
        )
        self.absent = None if self.positional else MISSING

    def __call__(self, v: Any, path: str) -> Any:
        if type(v) is not dict:
            raise wrong(path or "message", "an object", v)
        if self.known is not None and not self.known.issuperset(v):
            unknown = ", ".join(sorted(set(v) - self.known))
            raise Bad("invalid_value", f"{path or 'message'}: unknown field(s) {unknown}")
        prefix = f"{path}." if path else ""
        values = []
        for name, check, required in self.fields:
            x = v.get(name, MISSING)
            if x is MISSING:
                if required:
                    raise Bad("missing_field", f"{prefix}{name}: is required")
                x = self.absent
            elif check is not id or type(x) is not str or not 0 < len(x) <= MAX_ID_LENGTH:
                x = check(x, prefix + name)  # a valid id, the commonest field, skips the call
            values.append(x)
        try:
            if self.positional:
                return self.build(*values)
            named = zip(self.fields, values, strict=True)
            return self.build(**{f[0]: x for f, x in named if x is not MISSING})
        except d.ConfigError as exc:
            raise Bad("invalid_value", str(exc)) from None


_FIELD_NAME = string(1, MAX_NAME)
_NUMERIC = Shape(
    "name type min max",
    dict,
    name=_FIELD_NAME,
    type=enum(("numeric", "categorical")),
    min=number(-math.inf),
    max=number(-math.inf),
)
_CATEGORICAL = Shape(
    "name type values",
    dict,
    name=_FIELD_NAME,
    type=enum(("categorical",)),
    values=array(string(1, 2**31), min_items=1),
)
