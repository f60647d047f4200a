"""The send-time messages: a request "when should this contact get this launch?", and its
answer (`send_time_request.v1`, `send_time_response.v1`; see `stream.wire.messages` for
the other kinds and the shared encoding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from selector.sendtime.batch import Arm, Reason
from selector.sendtime.clock import ZoneSource
from stream.wire.reasons import Rejection

# The longest delivery window the wire accepts (an account's own limit may be lower).
MAX_WINDOW_SECONDS = 31 * 86_400


@dataclass(frozen=True, slots=True)
class SendTimeQuery:
    """When should `contact_id` get `campaign_id`, launched at `launch_time`, to be
    delivered within `window_seconds`? `zone` is the contact's zone as the sender knows
    it, `profile_zone` the profile's; `sending_hours` ({"start", "end"}, "HH:MM" local
    time) and `control_pct` / `control_delay_seconds` override the account's settings for
    this campaign; `launch_id` tells launches of one campaign apart (default: the launch
    time). `reply_to` None: the default responses topic. `select_creative` True: the
    answer also carries the creative, selected as at the answered `send_at`."""

    kind: ClassVar[Literal["send_time_request"]] = "send_time_request"
    request_id: str
    account_id: str
    campaign_id: str
    contact_id: str
    launch_time: float
    window_seconds: float
    zone: str | None = None
    profile_zone: str | None = None
    launch_id: str | None = None
    sending_hours: dict[str, str] | None = None
    control_pct: float | None = None
    control_delay_seconds: int | None = None
    reply_to: str | None = None
    select_creative: bool | None = None  # None: false


@dataclass(frozen=True, slots=True)
class SendTimeAnswer:
    """A send time (status "ok"); no contact id leaves the service on this topic.
    `slot` is the local slot of `send_at` (0 starts at local midnight), `deferred` says
    the launch instant itself was quiet. `launch_time` is the request's; `outcomes_from`
    is the launch of the contact's group (the control's is delayed by the control delay),
    from which a fixed outcome window counts responses for measurement. `selection`: the
    creative (a selection response without its `schema`) when the request asked for it."""

    kind: ClassVar[Literal["send_time_response"]] = "send_time_response"
    request_id: str
    account_id: str
    campaign_id: str
    send_at: float
    slot: int
    weekend: bool
    arm: Arm
    reason: Reason
    propensity: float
    zone: str
    zone_source: ZoneSource
    deferred: bool
    launch_time: float
    outcomes_from: float
    decided_at: float
    # a SelectionResponse or SelectionError (stream.wire.messages, which imports this module)
    selection: Any = None


@dataclass(frozen=True, slots=True)
class SendTimeError:
    """A request that got no send time (status "error"), with a bounded reason."""

    kind: ClassVar[Literal["send_time_response"]] = "send_time_response"
    request_id: str | None
    account_id: str | None
    reason: Rejection
    message: str
    decided_at: float
