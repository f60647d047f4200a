"""The shape of every message kind, built from the field checks: `DECODERS[kind]` turns
a parsed JSON object into the message's typed value or raises `Bad`."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, get_args

from selector import domain as d
from selector.batch import ARMS, DECIDED_BY, POOLS, REASONS
from selector.custom_fields import FIELD_REASONS, MAX_NAME
from selector.sendtime import batch as st
from selector.sendtime.clock import MAX_ZONE_NAME, ZONE_SOURCES
from selector.sendtime.settings import RESPONSE_KINDS, account_send_time, hours_from_dict
from selector.timing import DELAY_EDGES
from stream.wire import messages as m
from stream.wire import sendtime_messages as stm
from stream.wire.checks import (
    COMMON,
    Bad,
    Check,
    Shape,
    array,
    boolean,
    custom_fields,
    custom_values,
    enum,
    id,
    map,
    nullable,
    number,
    pattern,
    string,
)
from stream.wire.messages import MAX_INTEGER
from stream.wire.reasons import REJECTIONS
from stream.wire.sendtime_messages import MAX_WINDOW_SECONDS


def send_time_response(v: Any, path: str) -> stm.SendTimeAnswer | stm.SendTimeError:
    error = type(v) is dict and v.get("status") == "error"
    result: stm.SendTimeAnswer | stm.SendTimeError = (ST_ERROR if error else ST_OK)(v, path)
    return result


def selection_response(v: Any, path: str) -> m.SelectionResponse | m.SelectionError:
    error = type(v) is dict and v.get("status") == "error"
    result: m.SelectionResponse | m.SelectionError = (ERROR if error else OK)(v, path)
    return result


opt = nullable(id)
CATALOG_ENUMS = {
    "goal": d.Goal,
    "payout_type": d.PayoutType,
    "type": d.CreativeType,
    "status": d.CreativeStatus,
    "mode": d.CampaignMode,
    "rotation": d.Rotation,
    "learning_mode": d.LearningMode,
}
catalog = {name: enum(get_args(values)) for name, values in CATALOG_ENUMS.items()}
PARAMS = "sends clicks conversions revenue ctr_alpha ctr_beta cvr_alpha cvr_beta"
OK = Shape(
    "request_id account_id status campaign_id creative_id arm method pool reason propensity"
    " params_version decided_at cooldowns? model_version? custom_dropped?",
    lambda status, **kw: m.SelectionResponse(**kw),
    status=enum(("ok",)),
    arm=enum(ARMS),
    method=enum(DECIDED_BY),
    pool=enum(POOLS),
    reason=enum(REASONS),
    propensity=nullable(number(0, 1)),
    cooldowns=enum(m.COOLDOWN_STATES),
    custom_dropped=array(
        Shape("field reason", dict, field=string(1, MAX_NAME), reason=enum(FIELD_REASONS)),
        min_items=1,
    ),
)
ERROR = Shape(
    "request_id account_id status error decided_at",
    lambda status, error, **kw: m.SelectionError(**kw, **error),
    request_id=opt,
    account_id=opt,
    status=enum(("error",)),
    error=Shape("reason message", dict, reason=enum(REJECTIONS)),
)
TOPIC = pattern("[A-Za-z0-9._-]{1,249}", "a Kafka topic name")
ZONE = nullable(string(1, MAX_ZONE_NAME))
CLOCK = pattern("(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00", "a local time HH:MM (00:00 to 24:00)")
ST_OK = Shape(
    "request_id account_id status campaign_id send_at slot weekend arm reason propensity zone"
    " zone_source deferred launch_time outcomes_from decided_at selection?",
    lambda status, **kw: stm.SendTimeAnswer(**kw),
    status=enum(("ok",)),
    send_at=number(0, 2 * m.MAX_TIME),
    slot=number(0, 23, integer=True),
    weekend=boolean,
    arm=enum(st.ARMS),
    reason=enum(st.REASONS),
    propensity=number(0, 1),
    zone=string(1, MAX_ZONE_NAME),
    zone_source=enum(ZONE_SOURCES),
    deferred=boolean,
    launch_time=COMMON["time"],
    outcomes_from=number(0, 2 * m.MAX_TIME),
    selection=selection_response,
)
ST_ERROR = Shape(
    "request_id account_id status error decided_at",
    lambda status, error, **kw: stm.SendTimeError(**kw, **error),
    request_id=opt,
    account_id=opt,
    status=enum(("error",)),
    error=Shape("reason message", dict, reason=enum(REJECTIONS)),
)
SETTINGS = Shape(
    "goal? cooldown_seconds? methods? learning_threshold? learning_pct? learning_mode?"
    " payout_floor? prior? half_life_seconds? exploration_floor_pct?"
    " model_training_interval_seconds? custom_fields?",
    d.SelectionSettings,
    goal=catalog["goal"],
    learning_mode=catalog["learning_mode"],
    methods=array(Shape("method traffic_pct", d.MethodShare, method=enum(d.METHODS)), min_items=1),
    prior=Shape("alpha? beta?", d.BetaPrior),
    custom_fields=custom_fields,
)
HOURS = Shape("start end", dict, start=CLOCK, end=CLOCK)
SEND_TIME = Shape(
    "slots? split_weekends? hours? exploration_pct? control_pct? control_delay_seconds?"
    " response? zone? history_days? bucket_days?",
    dict,
    slots=number(1, 24, integer=True),
    split_weekends=boolean,
    hours=HOURS,
    exploration_pct=number(0, 100),
    control_pct=number(0, 100),
    control_delay_seconds=number(0, MAX_WINDOW_SECONDS, integer=True),
    response=enum(RESPONSE_KINDS),
    zone=string(1, MAX_ZONE_NAME),
    history_days=number(1, 3660, integer=True),
    bucket_days=number(1, 3660, integer=True),
)


def send_time_block(v: Any, path: str) -> MappingProxyType[str, Any]:
    """The account's `send_time` block, checked by the settings' own rules and kept as
    given (`selector.sendtime.account_send_time` reads it)."""
    block = SEND_TIME(v, path)
    try:
        account_send_time(block, {})
    except d.ConfigError as exc:
        raise Bad("invalid_value", str(exc)) from None
    return MappingProxyType(block)


@dataclass(frozen=True, slots=True)
class CampaignItem:
    """A campaign of the campaigns message and its own sending hours, if any."""

    campaign: d.Campaign
    hours: dict[str, str] | None

    @property
    def campaign_id(self) -> str:
        return self.campaign.campaign_id


def campaign_item(sending_hours: dict[str, str] | None = None, **fields: Any) -> CampaignItem:
    campaign = d.Campaign(**fields)
    if sending_hours is not None:  # a ConfigError names the campaign's field
        hours_from_dict(sending_hours, f"campaign {campaign.campaign_id}.sending_hours")
    return CampaignItem(campaign, sending_hours)


def campaigns_snapshot(account_id: str, campaigns: tuple[CampaignItem, ...]) -> m.CampaignsSnapshot:
    hours = {c.campaign_id: MappingProxyType(c.hours) for c in campaigns if c.hours is not None}
    return m.CampaignsSnapshot(
        account_id, tuple(c.campaign for c in campaigns), MappingProxyType(hours)
    )


signed_count = number(-MAX_INTEGER, MAX_INTEGER, integer=True)
signed_amount = number(-MAX_INTEGER, MAX_INTEGER)


def exactly(n: int, item: Check) -> Check:
    """An array of exactly n items."""
    inner = array(item, min_items=n)

    def check(v: Any, path: str) -> tuple[Any, ...]:
        items: tuple[Any, ...] = inner(v, path)
        if len(items) != n:
            raise Bad("invalid_value", f"{path}: must have exactly {n} items")
        return items

    return check


TIMING = Shape(
    "latest sends clicks click_delays conversion_delays",
    dict,
    latest=nullable(COMMON["time"]),
    sends=map(array(exactly(3, signed_count))),
    clicks=map(array(exactly(3, signed_count))),
    click_delays=exactly(len(DELAY_EDGES), signed_count),
    conversion_delays=exactly(len(DELAY_EDGES), signed_count),
)
DECODERS: dict[m.Kind, Check] = {
    "send": Shape(
        "event_id account_id campaign_id contact_id creative_id time request_id? ...",
        m.SendEvent,
        request_id=opt,
    ),
    "click": Shape(
        "event_id account_id contact_id creative_id time send_event_id? campaign_id?"
        " send_time? ...",
        m.ClickEvent,
        send_event_id=opt,
        campaign_id=opt,
        send_time=nullable(COMMON["time"]),
    ),
    "conversion": Shape(
        "event_id account_id contact_id creative_id time revenue send_event_id? campaign_id?"
        " currency? click_time? ...",
        m.ConversionEvent,
        send_event_id=opt,
        campaign_id=opt,
        currency=nullable(pattern("[A-Z]{3}", "an ISO 4217 code (three capital letters)")),
        click_time=nullable(COMMON["time"]),
    ),
    "selection_request": Shape(
        "request_id account_id campaign_id contact_id time? reply_to? custom? ...",
        m.SelectionRequest,
        time=nullable(COMMON["time"]),
        reply_to=nullable(TOPIC),
        custom=nullable(custom_values),
    ),
    "send_time_request": Shape(
        "request_id account_id campaign_id contact_id launch_time window_seconds zone?"
        " profile_zone? launch_id? sending_hours? control_pct? control_delay_seconds?"
        " reply_to? select_creative? ...",
        stm.SendTimeQuery,
        launch_time=COMMON["time"],
        window_seconds=number(0, MAX_WINDOW_SECONDS),
        zone=ZONE,
        profile_zone=ZONE,
        launch_id=opt,
        sending_hours=nullable(Shape("start end", dict, start=CLOCK, end=CLOCK)),
        control_pct=nullable(number(0, 100)),
        control_delay_seconds=nullable(number(0, MAX_WINDOW_SECONDS, integer=True)),
        reply_to=nullable(TOPIC),
        select_creative=nullable(boolean),
    ),
    "send_time_response": send_time_response,
    "selection_response": selection_response,
    "dead_letter": Shape(
        "reason detail source original original_size key time",
        lambda source, **kw: m.DeadLetter(**source, **kw),
        reason=enum(REJECTIONS),
        source=Shape("topic partition offset", dict, topic=string(1, 255)),
    ),
    "account_settings": Shape(
        "account_id settings send_time?",
        m.AccountSettingsSnapshot,
        settings=SETTINGS,
        send_time=send_time_block,
    ),
    "campaigns": Shape(
        "account_id campaigns",
        campaigns_snapshot,
        campaigns=array(
            Shape(
                "campaign_id default_creative_id mode? automated_percent? manual_creative_ids?"
                " rotation? sending_hours?",
                campaign_item,
                manual_creative_ids=array(id),
                sending_hours=nullable(HOURS),
                **catalog,
            ),
            unique_by="campaign_id",
        ),
    ),
    "creatives": Shape(
        "account_id creatives",
        m.CreativesSnapshot,
        creatives=array(
            Shape("creative_id offer_id type? status?", d.Creative, **catalog),
            unique_by="creative_id",
        ),
    ),
    "offers": Shape(
        "account_id offers",
        m.OffersSnapshot,
        offers=array(
            Shape("offer_id payout payout_type?", d.Offer, **catalog), unique_by="offer_id"
        ),
    ),
    "params_snapshot": Shape(
        "account_id version computed_at prior creatives offers",
        m.ParamsSnapshot,
        prior=Shape("alpha beta", d.BetaPrior),
        creatives=map(Shape(f"offer_id {PARAMS}", m.CreativeParams)),
        offers=map(Shape(PARAMS, m.OfferParams)),
    ),
    "stats_correction": Shape(
        "account_id run_id computed_at creatives timing?",
        m.StatsCorrection,
        timing=nullable(TIMING),
        creatives=map(
            Shape(
                "sends clicks conversions revenue_micros decayed",
                m.CreativeCorrection,
                **dict.fromkeys(("sends", "clicks", "conversions", "revenue_micros"), signed_count),
                decayed=nullable(
                    Shape(
                        "sends clicks conversions revenue ref_time",
                        m.DecayedDelta,
                        **dict.fromkeys(
                            ("sends", "clicks", "conversions", "revenue"), signed_amount
                        ),
                        ref_time=COMMON["time"],
                    )
                ),
            )
        ),
    ),
}
