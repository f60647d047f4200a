"""Encoders of what the service writes itself: dead letters and selection responses, and
the ids salvaged from a rejected request so its error response can be correlated."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from selector.batch import Decision
from stream.wire import messages as m
from stream.wire.checks import LIMITS
from stream.wire.messages import MAX_ID_LENGTH, MAX_TEXT_LENGTH
from stream.wire.reasons import Rejection


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


OK_SCHEMA = m.SCHEMAS["selection_response"]


def ok_response(
    request: m.SelectionRequest,
    decision: Decision,
    now: float,
    degraded: bool = False,
    custom_dropped: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A `selection_response.v1` with status "ok": the decision for `request`, with
    `"cooldowns": "degraded"` when the cooldown store did not answer, and the custom-field
    values not used, (field, reason) each.

    The bytes of `m.encode(m.SelectionResponse.from_decision(request, decision, now,
    cooldowns))` (with `custom_dropped` set; a test holds them equal), written directly: it
    runs once per answered request, and the generic encoder's dataclass walk cost several
    times more."""
    p = float(decision.propensity)
    body: dict[str, object] = {
        "schema": OK_SCHEMA,
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
    if degraded:
        body["cooldowns"] = "degraded"
    if decision.model_version is not None:
        body["model_version"] = int(decision.model_version)
    if custom_dropped:
        body["custom_dropped"] = [{"field": f, "reason": r} for f, r in custom_dropped]
    return orjson.dumps(body)


def valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None


def error_response(
    request_id: str | None, account_id: str | None, reason: Rejection, message: str, now: float
) -> bytes:
    """A `selection_response.v1` with status "error". Ids that are not valid ids are
    sent as null, so the response is valid whatever was wrong with the request."""
    text = message[:MAX_TEXT_LENGTH]
    error = m.SelectionError(valid_id(request_id), valid_id(account_id), reason, text, now)
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
    return valid_id(doc.get("request_id")), valid_id(doc.get("account_id"))
