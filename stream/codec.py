"""Decode wire messages into typed values, or say precisely why not; never raise on input.

The hot path decodes tens of thousands of events a second, so it is `orjson.loads` and
hand-written field checks rather than a JSON Schema validator. The schemas in
`schemas/` stay the contract, and the tests prove that whatever one rejects the other
rejects too. Rules a schema cannot express (method shares summing to 100, unique ids in
a catalog list, plausibility ceilings, the Kafka key matching the account) are the
codec's alone. Details name the field and the rule but never echo a string value, so a
contact id or phone number cannot leak into a dead letter, a log or a response.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypedDict, Unpack, get_args, overload

import orjson

from selector import domain as d
from selector.batch import ARMS, DECIDED_BY, POOLS, REASONS, Decision
from stream import messages as m
from stream.messages import MAX_ID_LENGTH, MAX_INTEGER, MAX_REVENUE, MAX_TEXT_LENGTH, MAX_TIME
from stream.reasons import REJECTIONS, Rejection

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


class _Bad(Exception):
    def __init__(self, reason: Rejection, detail: str) -> None:
        self.reason = reason
        self.detail = detail


Check = Callable[[Any, str], Any]
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}


def _wrong(path: str, expected: str, value: object) -> _Bad:
    got = _JSON_TYPES.get(type(value), "null" if value is None else "object")
    return _Bad("wrong_type", f"{path}: must be {expected}, got {got}")


def _string(
    low: int = 1,
    high: int = MAX_ID_LENGTH,
    *,
    ok: Callable[[str], Any] | None = None,
    rule: str = "",
) -> Check:
    rule = rule or f"{low} to {high} characters"

    def check(v: Any, path: str) -> str:
        if type(v) is not str:
            raise _wrong(path, "a string", v)
        if not (low <= len(v) <= high and (ok is None or ok(v))):
            raise _Bad("invalid_value", f"{path}: must be {rule}")
        return v

    return check


def _enum(values: tuple[str, ...]) -> Check:
    return _string(0, 64, ok=frozenset(values).__contains__, rule=f"one of {', '.join(values)}")


def _pattern(regex: str, rule: str) -> Check:
    return _string(0, 2**31, ok=re.compile(regex).fullmatch, rule=rule)


def _number(
    low: float, high: float | None = None, *, above: bool = False, integer: bool = False
) -> Check:
    rule = f"{'>' if above else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")

    def check(v: Any, path: str) -> float:
        kind = type(v)
        if integer and kind is float and v.is_integer():  # JSON Schema: 3.0 is an integer
            v, kind = int(v), int
        if kind is not int and (integer or kind is not float):
            raise _wrong(path, "an integer" if integer else "a number", v)
        if v < low or (above and v == low) or (high is not None and v > high):
            raise _Bad("invalid_value", f"{path}: must be {rule}, got {v:.6g}")
        return v if integer else float(v)

    return check


def _integer(low: int) -> Check:
    return _number(low, MAX_INTEGER, integer=True)


def _nullable(inner: Check) -> Check:
    def check(v: Any, path: str) -> Any:
        return None if v is None else inner(v, path)

    return check


def _array(item: Check, *, unique_by: str | None = None, min_items: int = 0) -> Check:
    def check(v: Any, path: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise _wrong(path, "an array", v)
        if len(v) < min_items:
            raise _Bad("invalid_value", f"{path}: needs at least {min_items} item(s)")
        items = tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))
        ids = [getattr(x, unique_by) for x in items] if unique_by else []
        if len(set(ids)) != len(ids):
            raise _Bad("invalid_value", f"{path}: lists a {unique_by} more than once")
        return items

    return check


def _map(value: Check) -> Check:
    def check(v: Any, path: str) -> MappingProxyType[str, Any]:
        if type(v) is not dict:
            raise _wrong(path, "an object", v)
        for k in v:
            _id(k, f"{path} key")
        return MappingProxyType({k: value(x, f"{path}.{k}") for k, x in v.items()})

    return check


_id = _string()
_b64_text = _pattern(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", "base64")
_COMMON: dict[str, Check] = {  # checks by field name, unless a shape overrides them
    "time": _number(0, MAX_TIME),
    "decided_at": _number(0, MAX_TIME),
    "computed_at": _number(0, MAX_TIME),
    "revenue": _number(0, MAX_REVENUE),
    "payout": _number(0, MAX_REVENUE),
    "payout_floor": _number(0, MAX_REVENUE),
    "alpha": _number(0, above=True),
    "beta": _number(0, above=True),
    "automated_percent": _number(0, 100),
    "traffic_pct": _number(0, 100),
    "learning_pct": _number(0, 100),
    "exploration_floor_pct": _number(0, 100),
    "cooldown_seconds": _number(0, MAX_TIME),
    "half_life_seconds": _nullable(_number(0, MAX_TIME, above=True)),
    "model_training_interval_seconds": _number(0, MAX_TIME, above=True),
    **dict.fromkeys(("sends", "clicks", "conversions", "learning_threshold"), _integer(0)),
    **dict.fromkeys(("ctr_alpha", "ctr_beta", "cvr_alpha", "cvr_beta"), _number(0, above=True)),
    **dict.fromkeys(("version", "params_version", "original_size"), _integer(0)),
    **dict.fromkeys(("partition", "offset"), _integer(-1)),
    **dict.fromkeys(("detail", "message"), _string(0, MAX_TEXT_LENGTH)),
    "original": lambda v, path: base64.b64decode(_b64_text(v, path)),
    "key": _nullable(lambda v, path: base64.b64decode(_b64_text(v, path))),
}
_MISSING = object()


class _Shape:
    """An object: checks each field, then returns `build(**fields)`. Fields are named in
    `spec`, space separated, `?` marking the optional ones; a field's check comes from
    `checks`, else `_COMMON`, else it is an id. Unknown fields are rejected, unless the
    spec ends with `...`: events from upstream ignore them, so producers can add fields
    without a new version."""

    __slots__ = ("absent", "build", "fields", "known", "positional")

    def __init__(self, spec: str, build: Any, **checks: Check) -> None:
        words = spec.split()
        names = [(name.rstrip("?"), not name.endswith("?")) for name in words if name != "..."]
        self.fields = tuple((n, checks.get(n) or _COMMON.get(n, _id), req) for n, req in names)
        self.build: Callable[..., Any] = build
        self.known = None if "..." in words else frozenset(n for n, _ in names)
        # Positional construction is twice as fast; it needs the dataclass's own field
        # order and None as the default of every optional field.
        own = dataclasses.fields(build) if dataclasses.is_dataclass(build) else ()
        self.positional = [f.name for f in own] == [n for n, _ in names] and all(
            req or f.default is None for f, (_, req) in zip(own, names, strict=True)
        )
        self.absent = None if self.positional else _MISSING

    def __call__(self, v: Any, path: str) -> Any:
        if type(v) is not dict:
            raise _wrong(path or "message", "an object", v)
        if self.known is not None and not self.known.issuperset(v):
            unknown = ", ".join(sorted(set(v) - self.known))
            raise _Bad("invalid_value", f"{path or 'message'}: unknown field(s) {unknown}")
        prefix = f"{path}." if path else ""
        values = []
        for name, check, required in self.fields:
            x = v.get(name, _MISSING)
            if x is _MISSING:
                if required:
                    raise _Bad("missing_field", f"{prefix}{name}: is required")
                x = self.absent
            elif check is not _id or type(x) is not str or not 0 < len(x) <= MAX_ID_LENGTH:
                x = check(x, prefix + name)  # a valid id, the commonest field, skips the call
            values.append(x)
        try:
            if self.positional:
                return self.build(*values)
            named = zip(self.fields, values, strict=True)
            return self.build(**{f[0]: x for f, x in named if x is not _MISSING})
        except d.ConfigError as exc:
            raise _Bad("invalid_value", str(exc)) from None


def _selection_response(v: Any, path: str) -> m.SelectionResponse | m.SelectionError:
    error = type(v) is dict and v.get("status") == "error"
    result: m.SelectionResponse | m.SelectionError = (_ERROR if error else _OK)(v, path)
    return result


_opt = _nullable(_id)
_CATALOG_ENUMS = {
    "goal": d.Goal,
    "payout_type": d.PayoutType,
    "type": d.CreativeType,
    "status": d.CreativeStatus,
    "mode": d.CampaignMode,
    "rotation": d.Rotation,
    "learning_mode": d.LearningMode,
}
_catalog = {name: _enum(get_args(values)) for name, values in _CATALOG_ENUMS.items()}
_PARAMS = "sends clicks conversions revenue ctr_alpha ctr_beta cvr_alpha cvr_beta"
_OK = _Shape(
    "request_id account_id status campaign_id creative_id arm method pool reason propensity"
    " params_version decided_at",
    lambda status, **kw: m.SelectionResponse(**kw),
    status=_enum(("ok",)),
    arm=_enum(ARMS),
    method=_enum(DECIDED_BY),
    pool=_enum(POOLS),
    reason=_enum(REASONS),
    propensity=_nullable(_number(0, 1)),
)
_ERROR = _Shape(
    "request_id account_id status error decided_at",
    lambda status, error, **kw: m.SelectionError(**kw, **error),
    request_id=_opt,
    account_id=_opt,
    status=_enum(("error",)),
    error=_Shape("reason message", dict, reason=_enum(REJECTIONS)),
)
_SETTINGS = _Shape(
    "goal? cooldown_seconds? methods? learning_threshold? learning_pct? learning_mode?"
    " payout_floor? prior? half_life_seconds? exploration_floor_pct?"
    " model_training_interval_seconds?",
    d.SelectionSettings,
    goal=_catalog["goal"],
    learning_mode=_catalog["learning_mode"],
    methods=_array(
        _Shape("method traffic_pct", d.MethodShare, method=_enum(d.METHODS)), min_items=1
    ),
    prior=_Shape("alpha? beta?", d.BetaPrior),
)
_signed_count = _number(-MAX_INTEGER, MAX_INTEGER, integer=True)
_signed_amount = _number(-MAX_INTEGER, MAX_INTEGER)
_DECODERS: dict[m.Kind, Check] = {
    "send": _Shape(
        "event_id account_id campaign_id contact_id creative_id time request_id? ...",
        m.SendEvent,
        request_id=_opt,
    ),
    "click": _Shape(
        "event_id account_id contact_id creative_id time send_event_id? campaign_id? ...",
        m.ClickEvent,
        send_event_id=_opt,
        campaign_id=_opt,
    ),
    "conversion": _Shape(
        "event_id account_id contact_id creative_id time revenue send_event_id? campaign_id?"
        " currency? ...",
        m.ConversionEvent,
        send_event_id=_opt,
        campaign_id=_opt,
        currency=_nullable(_pattern("[A-Z]{3}", "an ISO 4217 code (three capital letters)")),
    ),
    "selection_request": _Shape(
        "request_id account_id campaign_id contact_id time? reply_to? ...",
        m.SelectionRequest,
        time=_nullable(_COMMON["time"]),
        reply_to=_nullable(_pattern("[A-Za-z0-9._-]{1,249}", "a Kafka topic name")),
    ),
    "selection_response": _selection_response,
    "dead_letter": _Shape(
        "reason detail source original original_size key time",
        lambda source, **kw: m.DeadLetter(**source, **kw),
        reason=_enum(REJECTIONS),
        source=_Shape("topic partition offset", dict, topic=_string(1, 255)),
    ),
    "account_settings": _Shape(
        "account_id settings", m.AccountSettingsSnapshot, settings=_SETTINGS
    ),
    "campaigns": _Shape(
        "account_id campaigns",
        m.CampaignsSnapshot,
        campaigns=_array(
            _Shape(
                "campaign_id default_creative_id mode? automated_percent? manual_creative_ids?"
                " rotation?",
                d.Campaign,
                manual_creative_ids=_array(_id),
                **_catalog,
            ),
            unique_by="campaign_id",
        ),
    ),
    "creatives": _Shape(
        "account_id creatives",
        m.CreativesSnapshot,
        creatives=_array(
            _Shape("creative_id offer_id type? status?", d.Creative, **_catalog),
            unique_by="creative_id",
        ),
    ),
    "offers": _Shape(
        "account_id offers",
        m.OffersSnapshot,
        offers=_array(
            _Shape("offer_id payout payout_type?", d.Offer, **_catalog), unique_by="offer_id"
        ),
    ),
    "params_snapshot": _Shape(
        "account_id version computed_at prior creatives offers",
        m.ParamsSnapshot,
        prior=_Shape("alpha beta", d.BetaPrior),
        creatives=_map(_Shape(f"offer_id {_PARAMS}", m.CreativeParams)),
        offers=_map(_Shape(_PARAMS, m.OfferParams)),
    ),
    "stats_correction": _Shape(
        "account_id run_id computed_at creatives",
        m.StatsCorrection,
        creatives=_map(
            _Shape(
                "sends clicks conversions revenue_micros decayed",
                m.CreativeCorrection,
                **dict.fromkeys(
                    ("sends", "clicks", "conversions", "revenue_micros"), _signed_count
                ),
                decayed=_nullable(
                    _Shape(
                        "sends clicks conversions revenue ref_time",
                        m.DecayedDelta,
                        **dict.fromkeys(
                            ("sends", "clicks", "conversions", "revenue"), _signed_amount
                        ),
                        ref_time=_COMMON["time"],
                    )
                ),
            )
        ),
    ),
}


class Options(TypedDict, total=False):
    """Keyword options of `decode`."""

    key: bytes | None  # the Kafka key; must be the message's account id when given
    max_bytes: int | None  # default: limits.max_bytes_for(kind)
    limits: Limits
    now: float | None  # epoch seconds; enables the too-far-in-the-future check


def _plausible(message: Any, limits: Limits, now: float | None) -> None:
    if isinstance(message, m.ConversionEvent) and message.revenue > limits.max_revenue:
        raise _Bad("implausible_value", f"revenue: above the ceiling of {limits.max_revenue:g}")
    time = getattr(message, "time", None)
    if now is None or time is None or isinstance(message, m.DeadLetter):
        return
    if time > now + limits.max_future_seconds:
        raise _Bad("implausible_value", f"time: {time - now:.0f} s in the future")


def _decode(kind: m.Kind, raw: bytes | None, options: Options) -> m.Message | Rejected:
    limits = options.get("limits", LIMITS)
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Rejected("malformed_json", "no value (a tombstone?)")
    limit = options.get("max_bytes") or limits.max_bytes_for(kind)
    if len(raw) > limit:
        return Rejected("oversized", f"{len(raw)} bytes, the limit is {limit}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("malformed_json", str(exc)[:MAX_TEXT_LENGTH])
    if type(doc) is not dict:
        return Rejected("not_an_object", _wrong("message", "an object", doc).detail)
    schema = doc.pop("schema", None)
    if schema != m.SCHEMAS[kind]:
        known = schema is None or (isinstance(schema, str) and schema in m.KIND_OF_SCHEMA)
        got = repr(schema) if known else "another value"
        return Rejected("schema_mismatch", f"schema: must be {m.SCHEMAS[kind]!r}, got {got}")
    try:
        message = _DECODERS[kind](doc, "")
        _plausible(message, limits, options.get("now"))
    except _Bad as bad:
        return Rejected(bad.reason, bad.detail)
    except Exception as exc:  # a bug here must not stop an agent
        return Rejected("internal_error", f"{kind} decoder: {type(exc).__name__}")
    key, account_id = options.get("key"), getattr(message, "account_id", None)
    if key is not None and account_id is not None and key != account_id.encode():
        return Rejected("invalid_value", "key: is not the message's account_id")
    result: m.Message = message
    return result


@overload
def decode(
    kind: Literal["send"], raw: bytes | None, **o: Unpack[Options]
) -> m.SendEvent | Rejected: ...
@overload
def decode(
    kind: Literal["click"], raw: bytes | None, **o: Unpack[Options]
) -> m.ClickEvent | Rejected: ...
@overload
def decode(
    kind: Literal["conversion"], raw: bytes | None, **o: Unpack[Options]
) -> m.ConversionEvent | Rejected: ...
@overload
def decode(
    kind: Literal["selection_request"], raw: bytes | None, **o: Unpack[Options]
) -> m.SelectionRequest | Rejected: ...
@overload
def decode(
    kind: Literal["selection_response"], raw: bytes | None, **o: Unpack[Options]
) -> m.SelectionResponse | m.SelectionError | Rejected: ...
@overload
def decode(
    kind: Literal["dead_letter"], raw: bytes | None, **o: Unpack[Options]
) -> m.DeadLetter | Rejected: ...
@overload
def decode(
    kind: Literal["account_settings"], raw: bytes | None, **o: Unpack[Options]
) -> m.AccountSettingsSnapshot | Rejected: ...
@overload
def decode(
    kind: Literal["campaigns"], raw: bytes | None, **o: Unpack[Options]
) -> m.CampaignsSnapshot | Rejected: ...
@overload
def decode(
    kind: Literal["creatives"], raw: bytes | None, **o: Unpack[Options]
) -> m.CreativesSnapshot | Rejected: ...
@overload
def decode(
    kind: Literal["offers"], raw: bytes | None, **o: Unpack[Options]
) -> m.OffersSnapshot | Rejected: ...
@overload
def decode(
    kind: Literal["params_snapshot"], raw: bytes | None, **o: Unpack[Options]
) -> m.ParamsSnapshot | Rejected: ...
@overload
def decode(
    kind: Literal["stats_correction"], raw: bytes | None, **o: Unpack[Options]
) -> m.StatsCorrection | Rejected: ...
@overload
def decode(kind: str, raw: bytes | None, **o: Unpack[Options]) -> m.Message | Rejected: ...
def decode(kind: str, raw: bytes | None, **options: Unpack[Options]) -> m.Message | Rejected:
    """Decode one message of `kind` (see `stream.messages.KINDS`); see `Options`.

    Returns the message or a `Rejected`: bad input, a tombstone (None) included, never
    raises. An unknown `kind` is a programming error and raises `ValueError`.

    >>> decode("send", b'{"schema": "click.v1"}')
    Rejected(reason='schema_mismatch', detail="schema: must be 'send.v1', got 'click.v1'")
    """
    if kind not in _DECODERS:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {', '.join(m.KINDS)}")
    return _decode(kind, raw, options)


def dead_letter(
    raw: bytes | None,
    key: bytes | None,
    reason: Rejection,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    now: float,
    *,
    max_original_bytes: int = 524_288,
) -> bytes:
    """A `dead_letter.v1` record. The original is kept (base64) up to
    `max_original_bytes` so the record itself stays producible; `original_size` tells a
    replay whether it was cut."""
    original = b"" if raw is None else bytes(raw)
    kept = original[:max_original_bytes]
    text = detail[:MAX_TEXT_LENGTH]
    letter = m.DeadLetter(reason, text, topic, partition, offset, kept, len(original), key, now)
    return m.encode(letter)


_OK_SCHEMA = m.SCHEMAS["selection_response"]


def ok_response(request: m.SelectionRequest, decision: Decision, now: float) -> bytes:
    """A `selection_response.v1` with status "ok": the decision for `request`.

    The bytes of `m.encode(m.SelectionResponse.from_decision(request, decision, now))`
    (a test holds them equal), written directly: it runs once per answered request, and
    the generic encoder's dataclass walk cost several times more."""
    p = float(decision.propensity)
    return orjson.dumps(
        {
            "schema": _OK_SCHEMA,
            "status": "ok",
            "request_id": request.request_id,
            "account_id": request.account_id,
            "campaign_id": request.campaign_id,
            "creative_id": decision.creative_id,
            "arm": decision.arm,
            "method": decision.method,
            "pool": decision.pool,
            "reason": decision.reason,
            "propensity": p if 0.0 <= p <= 1.0 else None,
            "params_version": int(decision.stats_version),
            "decided_at": now,
        }
    )


def _valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None


def error_response(
    request_id: str | None, account_id: str | None, reason: Rejection, message: str, now: float
) -> bytes:
    """A `selection_response.v1` with status "error". Ids that are not valid ids are
    sent as null, so the response is valid whatever was wrong with the request."""
    text = message[:MAX_TEXT_LENGTH]
    error = m.SelectionError(_valid_id(request_id), _valid_id(account_id), reason, text, now)
    return m.encode(error)


def salvage_ids(raw: bytes, max_bytes: int = LIMITS.max_bytes) -> tuple[str | None, str | None]:
    """`(request_id, account_id)` of a rejected request where they can be read, so the
    sender still gets an error response it can correlate."""
    try:
        doc = orjson.loads(raw) if len(raw) <= max_bytes else None
    except (orjson.JSONDecodeError, TypeError):
        return None, None
    if type(doc) is not dict:
        return None, None
    return _valid_id(doc.get("request_id")), _valid_id(doc.get("account_id"))
