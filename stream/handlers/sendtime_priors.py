"""Fitted send-time priors on the wire and in a worker: `send_time_prior.v1` messages on
the compacted `send-time-priors` topic (key: the account id), which the daily job
publishes after its slot reconciliation and every worker follows from the beginning
(`stream.adapters.model_feed`, as the models), so a new prior is in use without a restart.

A message replaces the account's prior only if its version is higher than the one in use
(the topic's history read again on a restart is `older`); one that does not decode, whose
key is not its account, is `rejected` and the prior in use stays. A tombstone removes the
account's prior. A prior fitted for another slot layout than the account's settings now
have is not used (`for_account` gives None: the uniform prior).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from selector.sendtime import SendTimeSettings, SlotPrior

log = logging.getLogger(__name__)
PRIORS_TOPIC = "send-time-priors"  # before CS_TOPIC_PREFIX; schemas/topics.yaml
SCHEMA = "send_time_prior.v1"
PriorLoad = Literal["loaded", "older", "rejected"]
PRIOR_LOADS: tuple[PriorLoad, ...] = ("loaded", "older", "rejected")


@dataclass(frozen=True, slots=True, eq=False)
class PublishedPrior:
    """One account's fitted prior and the layout it was fitted for."""

    account_id: str
    version: int
    fitted_at: float
    slots: int
    split_weekends: bool
    prior: SlotPrior

    def fits(self, settings: SendTimeSettings) -> bool:
        return (self.slots, self.split_weekends) == (settings.slots, settings.split_weekends)


def encode_prior(published: PublishedPrior) -> bytes:
    """The message's bytes (schemas/send_time_prior.v1.schema.json)."""
    return orjson.dumps(
        {
            "schema": SCHEMA,
            "account_id": published.account_id,
            "version": published.version,
            "fitted_at": published.fitted_at,
            "slots": published.slots,
            "split_weekends": published.split_weekends,
            "prior": published.prior.to_dict(),
        }
    )


def decode_prior(raw: bytes) -> PublishedPrior | str:
    """The message, or why it cannot be used (a sentence naming the field, no values).

    >>> p = PublishedPrior("acme", 7, 1.0e9, 2, False, SlotPrior.uniform(2))
    >>> back = decode_prior(encode_prior(p))
    >>> (back.account_id, back.version, back.prior.cells)  # type: ignore[union-attr]
    ('acme', 7, 2)
    >>> decode_prior(encode_prior(p).replace(b'"slots":2', b'"slots":3'))
    'prior: has 2 cells; slots 3 and split_weekends false need 3'
    """
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "message: not JSON"
    if type(doc) is not dict or doc.get("schema") != SCHEMA:
        return f"schema: must be {SCHEMA}"
    fields: tuple[Any, ...] = tuple(
        doc.get(name) for name in ("account_id", "version", "fitted_at", "slots", "split_weekends")
    )
    account, version, at, slots, split = fields
    checks = (
        (type(account) is str and 0 < len(account) <= 200, "account_id: must be 1-200 chars"),
        (type(version) is int and version >= 1, "version: must be an integer >= 1"),
        (type(at) in (int, float) and math.isfinite(at) and at >= 0, "fitted_at: must be >= 0"),
        (type(slots) is int and 1 <= slots <= 24 and 24 % slots == 0, "slots: must divide 24"),
        (type(split) is bool, "split_weekends: must be a boolean"),
        (type(doc.get("prior")) is dict, "prior: must be an object"),
    )
    for ok, why in checks:
        if not ok:
            return why
    try:
        prior = SlotPrior.from_dict(doc["prior"])
    except ValueError as exc:
        return f"prior: {str(exc).split(':')[0]}"
    cells = slots * (2 if split else 1)
    if prior.cells != cells:
        layout = f"slots {slots} and split_weekends {str(split).lower()}"
        return f"prior: has {prior.cells} cells; {layout} need {cells}"
    return PublishedPrior(account, version, float(at), slots, split, prior)


class PriorBook:
    """Account key (the account id's bytes) -> its newest published prior."""

    def __init__(self, on_load: Any = None) -> None:
        self._priors: dict[bytes, PublishedPrior] = {}
        self._on_load = on_load

    def __len__(self) -> int:
        return len(self._priors)

    def apply(self, key: bytes | None, value: bytes | None) -> PriorLoad:
        """Take one message of the priors topic."""
        outcome = self._apply(key, value)
        if self._on_load is not None:
            self._on_load(outcome)
        return outcome

    def _apply(self, key: bytes | None, value: bytes | None) -> PriorLoad:
        if key is None:
            return "rejected"
        if value is None:
            self._priors.pop(key, None)
            return "loaded"
        found = decode_prior(value)
        if isinstance(found, str) or found.account_id.encode() != key:
            log.warning(
                "a send-time prior was rejected: %s",
                found if isinstance(found, str) else "its key is not its account",
            )
            return "rejected"
        current = self._priors.get(key)
        if current is not None and found.version <= current.version:
            return "older"
        self._priors[key] = found
        return "loaded"

    def for_account(self, account_id: str, settings: SendTimeSettings) -> SlotPrior | None:
        """The account's prior if it was fitted for its settings' layout."""
        found = self._priors.get(account_id.encode())
        return found.prior if found is not None and found.fits(settings) else None
