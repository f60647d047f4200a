"""Send-time optimization: per-contact Thompson sampling over local-time slots.

Each contact has a Beta posterior per local-time slot (12 two-hour slots by default,
optionally apart for weekdays and weekends): the account's prior, a mixture over daily
routines fitted by empirical Bayes, plus the contact's last year of sends and responses.
A decision picks, inside the campaign's delivery window and the recipient's sending
hours, the slot with the highest posterior draw, and a second within it. Measurement
keeps a randomized control group per launch and estimates lift in ways that survive
weekday effects. Imports only the standard library (with `zoneinfo`) and numpy.

The stream calls: `resolve_zone` and `SendTimeDecider` (decisions), `window_counts`
(stored bytes to counts), `apply_slot_events` / `claim_response` / `encode_slots`
(ingestion), `slot_delta` / `apply_slot_correction` and `fit_prior` (the daily job).
"""

from selector.sendtime.batch import (
    ARMS,
    REASONS,
    SendTimeBatch,
    SendTimeDecision,
    SendTimeDecisions,
)
from selector.sendtime.clock import ResolvedZone, load_zone, resolve_zone
from selector.sendtime.codec import (
    CodecError,
    decode_record,
    decode_slots,
    encode_record,
    encode_slots,
    window_counts,
)
from selector.sendtime.counts import (
    ContactSlots,
    History,
    SendRecord,
    SlotEvent,
    apply_slot_correction,
    apply_slot_events,
    claim_response,
    slot_delta,
)
from selector.sendtime.decide import SendTimeDecider
from selector.sendtime.hours import QuietHours
from selector.sendtime.measure import (
    Estimate,
    Outcomes,
    launch_alignment,
    naive,
    per_launch,
    same_weekday,
    weekly,
)
from selector.sendtime.prior import PriorFit, SlotPrior, fit_prior
from selector.sendtime.settings import (
    AccountSendTime,
    SendTimeRequest,
    SendTimeSettings,
    account_send_time,
    rejection,
    sendtime_settings_from_dict,
)

__all__ = [
    "ARMS",
    "REASONS",
    "AccountSendTime",
    "CodecError",
    "ContactSlots",
    "Estimate",
    "History",
    "Outcomes",
    "PriorFit",
    "QuietHours",
    "ResolvedZone",
    "SendRecord",
    "SendTimeBatch",
    "SendTimeDecider",
    "SendTimeDecision",
    "SendTimeDecisions",
    "SendTimeRequest",
    "SendTimeSettings",
    "SlotEvent",
    "SlotPrior",
    "account_send_time",
    "apply_slot_correction",
    "apply_slot_events",
    "claim_response",
    "decode_record",
    "decode_slots",
    "encode_record",
    "encode_slots",
    "fit_prior",
    "launch_alignment",
    "load_zone",
    "naive",
    "per_launch",
    "rejection",
    "resolve_zone",
    "same_weekday",
    "sendtime_settings_from_dict",
    "slot_delta",
    "weekly",
    "window_counts",
]
