"""The messages on every topic, as frozen values, and their JSON wire form.

`schemas/<kind>.v1.schema.json` is the documented contract; `stream.wire.codec` decodes into
these classes and its tests prove that the codec and the schemas agree. Catalog messages
carry `selector.domain` objects, so what the wire accepts and what a decision can use
cannot drift apart.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, get_args

import orjson

from selector.batch import Arm, DecidedBy, Decision, Pool, Reason
from selector.domain import BetaPrior, Creative, Offer
from stream.wire.catalog_messages import AccountSettingsSnapshot as AccountSettingsSnapshot
from stream.wire.catalog_messages import CampaignsSnapshot as CampaignsSnapshot
from stream.wire.catalog_messages import catalog_body
from stream.wire.reasons import Rejection
from stream.wire.sendtime_messages import SendTimeAnswer as SendTimeAnswer
from stream.wire.sendtime_messages import SendTimeError as SendTimeError
from stream.wire.sendtime_messages import SendTimeQuery as SendTimeQuery
from stream.wire.settings_form import settings_form

Kind = Literal[
    "send",
    "click",
    "conversion",
    "selection_request",
    "selection_response",
    "dead_letter",
    "account_settings",
    "campaigns",
    "creatives",
    "offers",
    "params_snapshot",
    "stats_correction",
    "send_time_request",
    "send_time_response",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
SCHEMAS: dict[Kind, str] = {kind: f"{kind}.v1" for kind in KINDS}
KIND_OF_SCHEMA: dict[str, Kind] = {name: kind for kind, name in SCHEMAS.items()}
# Topic names before `Settings.topic_prefix`; see schemas/topics.yaml.
TOPICS: dict[Kind, str] = {
    "send": "sends",
    "click": "clicks",
    "conversion": "conversions",
    "selection_request": "selection-requests",
    "selection_response": "selection-responses",
    "dead_letter": "dead-letters",
    "account_settings": "catalog-account-settings",
    "campaigns": "catalog-campaigns",
    "creatives": "catalog-creatives",
    "offers": "catalog-offers",
    "params_snapshot": "thompson-params",
    "stats_correction": "stats-corrections",
    "send_time_request": "send-time-requests",
    "send_time_response": "send-time-responses",
}

CooldownState = Literal["exact", "degraded"]
COOLDOWN_STATES: tuple[CooldownState, ...] = get_args(CooldownState)

MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000
# Epoch seconds; 1e10 is the year 2286, and a millisecond timestamp lands far beyond it.
MAX_TIME = 10_000_000_000.0
# revenue * 1e6 stays below 2**53, so converting to integer micros is exact.
MAX_REVENUE = 1_000_000_000.0
MAX_INTEGER = 2**53 - 1
MICROS = 1_000_000


def revenue_to_micros(revenue: float) -> int:
    """Integer micros of a revenue in currency units; exact for any value with at most
    six decimals below `MAX_REVENUE` (the float error stays under half a micro)."""
    return round(revenue * MICROS)


@dataclass(frozen=True, slots=True)
class SendEvent:
    kind: ClassVar[Kind] = "send"
    event_id: str
    account_id: str
    campaign_id: str
    contact_id: str
    creative_id: str
    time: float
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClickEvent:
    kind: ClassVar[Kind] = "click"
    event_id: str
    account_id: str
    contact_id: str
    creative_id: str
    time: float
    send_event_id: str | None = None
    campaign_id: str | None = None
    send_time: float | None = None  # when its send happened, if the sender knows


@dataclass(frozen=True, slots=True)
class ConversionEvent:
    kind: ClassVar[Kind] = "conversion"
    event_id: str
    account_id: str
    contact_id: str
    creative_id: str
    time: float
    revenue: float
    send_event_id: str | None = None
    campaign_id: str | None = None
    currency: str | None = None
    click_time: float | None = None  # when its click happened, if known

    @property
    def revenue_micros(self) -> int:
        return revenue_to_micros(self.revenue)


@dataclass(frozen=True, slots=True)
class SelectionRequest:
    """`time` None: decide at the worker's clock; `reply_to` None: the default topic."""

    kind: ClassVar[Kind] = "selection_request"
    request_id: str
    account_id: str
    campaign_id: str
    contact_id: str
    time: float | None = None
    reply_to: str | None = None
    custom: Mapping[str, str | float | None] | None = None  # stream.handlers.custom_values


@dataclass(frozen=True, slots=True)
class SelectionResponse:
    """A decision (status "ok"); no contact id leaves the service on this topic."""

    kind: ClassVar[Kind] = "selection_response"
    request_id: str
    account_id: str
    campaign_id: str
    creative_id: str
    arm: Arm
    method: DecidedBy
    pool: Pool
    reason: Reason
    propensity: float | None
    params_version: int
    decided_at: float
    # "degraded": the cooldown store did not answer and this worker's own record of its
    # recent decisions stood in (stream.handlers.cooldowns); absent when exact
    cooldowns: CooldownState | None = None
    # the contextual model's version, for decisions the `model` method made with one
    model_version: int | None = None
    custom_dropped: tuple[Mapping[str, str], ...] | None = None  # {field, reason} each

    @classmethod
    def from_decision(
        cls,
        request: SelectionRequest,
        decision: Decision,
        decided_at: float,
        cooldowns: CooldownState | None = None,
    ) -> SelectionResponse:
        """The answer to `request`; a propensity that is not a probability is sent as null."""
        p = float(decision.propensity)
        return cls(
            request.request_id,
            request.account_id,
            request.campaign_id,
            decision.creative_id,
            decision.arm,
            decision.method,
            decision.pool,
            decision.reason,
            p if 0.0 <= p <= 1.0 else None,
            int(decision.stats_version),
            decided_at,
            cooldowns,
            decision.model_version,
        )


@dataclass(frozen=True, slots=True)
class SelectionError:
    """A request that got no decision (status "error"); the ids are None when the
    request was too broken to read them."""

    kind: ClassVar[Kind] = "selection_response"
    request_id: str | None
    account_id: str | None
    reason: Rejection
    message: str
    decided_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be used, with where it came from. `original` holds at
    most a configured number of bytes; `original_size` says how many there were."""

    kind: ClassVar[Kind] = "dead_letter"
    reason: Rejection
    detail: str
    topic: str
    partition: int
    offset: int
    original: bytes
    original_size: int
    key: bytes | None
    time: float


@dataclass(frozen=True, slots=True)
class CreativesSnapshot:
    kind: ClassVar[Kind] = "creatives"
    account_id: str
    creatives: tuple[Creative, ...]


@dataclass(frozen=True, slots=True)
class OffersSnapshot:
    kind: ClassVar[Kind] = "offers"
    account_id: str
    offers: tuple[Offer, ...]


@dataclass(frozen=True, slots=True)
class OfferParams:
    """Posterior parameters of one offer (offer-level counts, for two-step selection)."""

    sends: int
    clicks: int
    conversions: int
    revenue: float
    ctr_alpha: float
    ctr_beta: float
    cvr_alpha: float
    cvr_beta: float


@dataclass(frozen=True, slots=True)
class CreativeParams:
    offer_id: str
    sends: int
    clicks: int
    conversions: int
    revenue: float
    ctr_alpha: float
    ctr_beta: float
    cvr_alpha: float
    cvr_beta: float


@dataclass(frozen=True, slots=True)
class ParamsSnapshot:
    """The daily job's per-account Beta parameters, for readers without Kafka."""

    kind: ClassVar[Kind] = "params_snapshot"
    account_id: str
    version: int
    computed_at: float
    prior: BetaPrior
    creatives: Mapping[str, CreativeParams]
    offers: Mapping[str, OfferParams]


@dataclass(frozen=True, slots=True)
class DecayedDelta:
    """A difference of time-decayed counts, expressed at `ref_time`."""

    sends: float
    clicks: float
    conversions: float
    revenue: float
    ref_time: float


@dataclass(frozen=True, slots=True)
class CreativeCorrection:
    """Count differences of one creative (signed); revenue in integer micros, exact."""

    sends: int
    clicks: int
    conversions: int
    revenue_micros: int
    decayed: DecayedDelta | None


@dataclass(frozen=True, slots=True)
class StatsCorrection:
    """The daily job's correction of one account's streamed stats: what the stats agent
    adds so that they equal the recomputation from the event topics."""

    kind: ClassVar[Kind] = "stats_correction"
    account_id: str
    run_id: str
    computed_at: float
    creatives: Mapping[str, CreativeCorrection]
    # the feedback timing's difference in `selector.timing.Timing.to_plain` form, or None
    timing: Mapping[str, Any] | None = None


Message = (
    SendEvent
    | ClickEvent
    | ConversionEvent
    | SelectionRequest
    | SelectionResponse
    | SelectionError
    | DeadLetter
    | AccountSettingsSnapshot
    | CampaignsSnapshot
    | CreativesSnapshot
    | OffersSnapshot
    | ParamsSnapshot
    | StatsCorrection
    | SendTimeQuery
    | SendTimeAnswer
    | SendTimeError
)

# Field names without the `kind` class variable.
_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in get_args(Message)}
_EVENTS = (SendEvent, ClickEvent, ConversionEvent, SelectionRequest, SendTimeQuery)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _default(value: object) -> object:
    if isinstance(value, Mapping):  # read-only maps (a ParamsSnapshot, sending hours)
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _body(message: Message) -> dict[str, Any]:
    """Top-level fields; nested domain values are dataclasses that orjson writes as is."""
    names = _NAMES[type(message)]
    if isinstance(message, _EVENTS):  # optional fields are left out rather than null
        values = ((name, getattr(message, name)) for name in names)
        return {name: value for name, value in values if value is not None}
    if isinstance(message, SelectionError | SendTimeError):
        error = {"reason": message.reason, "message": message.message}
        ids = {"request_id": message.request_id, "account_id": message.account_id}
        return {**ids, "status": "error", "error": error, "decided_at": message.decided_at}
    body = {name: getattr(message, name) for name in names}
    if isinstance(message, SelectionResponse | SendTimeAnswer):
        for name in ("cooldowns", "model_version", "custom_dropped", "selection"):
            if name in body and body[name] is None:  # left out when None
                del body[name]
        if isinstance(message, SendTimeAnswer) and message.selection is not None:
            body["selection"] = _body(message.selection)
        return {"status": "ok", **body}
    if isinstance(message, AccountSettingsSnapshot):
        body["settings"] = settings_form(message.settings)
    if isinstance(message, AccountSettingsSnapshot | CampaignsSnapshot):
        return catalog_body(message, body)
    if isinstance(message, StatsCorrection) and message.timing is None:
        del body["timing"]  # readers from before the field was added accept the message
    if isinstance(message, DeadLetter):
        body["source"] = {name: body.pop(name) for name in ("topic", "partition", "offset")}
        body["original"] = _b64(message.original)
        body["key"] = None if message.key is None else _b64(message.key)
    return body


def encode(message: Message) -> bytes:
    """The message as UTF-8 JSON bytes, `schema` first, ready to produce."""
    return orjson.dumps({"schema": SCHEMAS[message.kind], **_body(message)}, default=_default)


def to_dict(message: Message) -> dict[str, Any]:
    """The JSON-shaped wire form (plain dicts and lists), e.g. a catalog part's body."""
    result: dict[str, Any] = orjson.loads(encode(message))
    return result


def key_of(message: Message) -> bytes | None:
    """The Kafka key: the account id as UTF-8 (None for a dead letter, which keeps the
    original message's key, and for an error about an unreadable request)."""
    account_id = getattr(message, "account_id", None)
    return None if account_id is None else account_id.encode()
