"""Why a message was not used: one bounded vocabulary for error responses, dead-letter
records and metric labels alike, so an alert, a dead letter and the reply the sender got
all name the same thing.

Input problems, in the order the codec checks them:

- ``oversized``: the raw message is larger than the configured limit (checked before
  parsing, so a huge message costs nothing).
- ``malformed_json``: not UTF-8 JSON (this includes ``NaN``/``Infinity`` and numbers
  that overflow a double, which JSON does not allow).
- ``not_an_object``: valid JSON, but not an object (an array, a string, ...).
- ``schema_mismatch``: ``schema`` is missing or names another message or version.
- ``missing_field``: a required field is absent.
- ``wrong_type``: a field has the wrong JSON type (a bool where a number belongs, a
  number where a string belongs, null for a required field).
- ``invalid_value``: right type, outside the contract: an empty or too-long id,
  negative revenue, a time beyond the hard bound, an unknown enum value, an unknown
  field where the object is closed, a catalog the domain rejects, a Kafka key that is
  not the message's account.
- ``implausible_value``: inside the contract but beyond a configurable ceiling (revenue
  above ``max_revenue``, a time too far in the future): probably an upstream bug.

Lookups done by the agents after decoding:

- ``unknown_account``, ``unknown_campaign``, ``unknown_creative``: the ids are well
  formed but not in the account's catalog.
- ``invalid_catalog``: the account's catalog parts are momentarily inconsistent (a
  creative naming an offer not seen yet), so no decision can be made.
- ``forbidden_reply_to``: the request's ``reply_to`` is not a topic the service answers
  on (an internal topic, or one outside the allowed reply topics; see
  ``stream.handlers.reply_to``); answered on the default responses topic instead.
- ``unknown_reply_to``: the ``reply_to`` topic is allowed but does not exist (or its
  existence could not be confirmed within the bounded check); answered on the default
  responses topic instead.
- ``duplicate``: not an error but a named outcome: the same ``event_id`` was already
  applied from another offset.
- ``internal_error``: a bug on our side; the message itself may be fine.
"""

from __future__ import annotations

from typing import Literal, get_args

Rejection = Literal[
    "oversized",
    "malformed_json",
    "not_an_object",
    "schema_mismatch",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "implausible_value",
    "unknown_account",
    "unknown_campaign",
    "unknown_creative",
    "invalid_catalog",
    "forbidden_reply_to",
    "unknown_reply_to",
    "duplicate",
    "internal_error",
]

REJECTIONS: tuple[Rejection, ...] = get_args(Rejection)

# Reasons the codec itself can return; the rest are decided by the agents.
DECODE_REJECTIONS: tuple[Rejection, ...] = REJECTIONS[:8]
