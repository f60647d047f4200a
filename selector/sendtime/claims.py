"""At most one response per send: the record kept per send and the claim a response
makes on it (`selector.sendtime.counts` re-exports both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Claim = Literal["first", "redelivery", "repeat", "unknown_send"]
CLAIMS: tuple[Claim, ...] = get_args(Claim)


@dataclass(frozen=True, slots=True)
class SendRecord:
    """Kept per send (by its event id, with a TTL as long as responses are attributed):
    the cell and local day it went out in, and which response claimed it, if any."""

    cell: int
    day: int
    claimed_by: tuple[int, int, int] | None = None  # (source, partition, offset)


def claim_response(
    record: SendRecord | None, source: int, partition: int, offset: int
) -> tuple[SendRecord | None, Claim]:
    """Count at most one response per send. `first`: count it (store the returned
    record); `redelivery`: the same message again after a crash, count it if the
    contact's offsets say it is not applied yet; `repeat`: another response to a send
    already answered (a second open), skip; `unknown_send`: no record (expired or never
    seen), skip.
    """
    if record is None:
        return None, "unknown_send"
    me = (source, partition, offset)
    if record.claimed_by is None:
        return SendRecord(record.cell, record.day, me), "first"
    return record, "redelivery" if record.claimed_by == me else "repeat"
