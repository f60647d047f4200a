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

from typing import Any, Literal, TypedDict, Unpack, overload

import orjson

from stream.wire import messages as m
from stream.wire.checks import LIMITS, Bad, Limits, Rejected, wrong
from stream.wire.encoders import dead_letter, error_response, ok_response, salvage_ids
from stream.wire.messages import MAX_TEXT_LENGTH
from stream.wire.shapes import DECODERS


class Options(TypedDict, total=False):
    """Keyword options of `decode`."""

    key: bytes | None  # the Kafka key; must be the message's account id when given
    max_bytes: int | None  # default: limits.max_bytes_for(kind)
    limits: Limits
    now: float | None  # epoch seconds; enables the too-far-in-the-future check


def _plausible(message: Any, limits: Limits, now: float | None) -> None:
    if isinstance(message, m.ConversionEvent) and message.revenue > limits.max_revenue:
        raise Bad("implausible_value", f"revenue: above the ceiling of {limits.max_revenue:g}")
    time = getattr(message, "time", None)
    if now is None or time is None or isinstance(message, m.DeadLetter):
        return
    if time > now + limits.max_future_seconds:
        raise Bad("implausible_value", f"time: {time - now:.0f} s in the future")


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
        return Rejected("not_an_object", wrong("message", "an object", doc).detail)
    schema = doc.pop("schema", None)
    if schema != m.SCHEMAS[kind]:
        known = schema is None or (isinstance(schema, str) and schema in m.KIND_OF_SCHEMA)
        got = repr(schema) if known else "another value"
        return Rejected("schema_mismatch", f"schema: must be {m.SCHEMAS[kind]!r}, got {got}")
    try:
        message = DECODERS[kind](doc, "")
        _plausible(message, limits, options.get("now"))
    except Bad as bad:
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
def decode(
    kind: Literal["send_time_request"], raw: bytes | None, **o: Unpack[Options]
) -> m.SendTimeQuery | Rejected: ...
@overload
def decode(
    kind: Literal["send_time_response"], raw: bytes | None, **o: Unpack[Options]
) -> m.SendTimeAnswer | m.SendTimeError | Rejected: ...
@overload
def decode(kind: str, raw: bytes | None, **o: Unpack[Options]) -> m.Message | Rejected: ...
def decode(kind: str, raw: bytes | None, **options: Unpack[Options]) -> m.Message | Rejected:
    """Decode one message of `kind` (see `stream.wire.messages.KINDS`); see `Options`.

    Returns the message or a `Rejected`: bad input, a tombstone (None) included, never
    raises. An unknown `kind` is a programming error and raises `ValueError`.

    >>> decode("send", b'{"schema": "click.v1"}')
    Rejected(reason='schema_mismatch', detail="schema: must be 'send.v1', got 'click.v1'")
    """
    if kind not in DECODERS:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {', '.join(m.KINDS)}")
    return _decode(kind, raw, options)


__all__ = [
    "LIMITS",
    "Limits",
    "Options",
    "Rejected",
    "dead_letter",
    "decode",
    "error_response",
    "ok_response",
    "salvage_ids",
]
