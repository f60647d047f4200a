"""Send-time requests and decisions as columns, and one decision as a row.

A batch belongs to one account (one `SendTimeSettings` and one prior). It holds, per
request, the resolved zone, the window, the sending hours in force and the contact's
window counts per cell, so deciding is a handful of vectorized steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.clock import ZONE_ISSUES, ZONE_SOURCES, ZoneIssue, ZoneSource, resolve_zone
from selector.sendtime.settings import SendTimeRequest, SendTimeSettings

Reason = Literal["sampled", "explored", "only_slot", "control", "no_allowed_time"]
Arm = Literal["optimized", "control"]
REASONS: tuple[Reason, ...] = get_args(Reason)
ARMS: tuple[Arm, ...] = get_args(Arm)
REASON = {name: np.uint8(i) for i, name in enumerate(REASONS)}
Int64Array = NDArray[np.int64]
FloatArray = NDArray[np.float64]
Codes = NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class SendTimeBatch:
    """N requests of one account. `hours` holds each request's two allowed intervals of
    the local day in seconds (a0, b0, a1, b1); `sends`/`responses` are (N, cells)."""

    contact_ids: tuple[str, ...]
    launch_keys: tuple[str, ...]
    launch: FloatArray
    window: FloatArray
    zones: tuple[str, ...]
    zone_source: Codes
    zone_issue: Codes
    hours: Int64Array
    control_pct: FloatArray
    control_delay: Int64Array
    sends: Int64Array
    responses: Int64Array

    def __len__(self) -> int:
        return len(self.contact_ids)

    @classmethod
    def from_requests(
        cls,
        requests: Sequence[SendTimeRequest],
        settings: SendTimeSettings,
        sends: Int64Array | None = None,
        responses: Int64Array | None = None,
    ) -> SendTimeBatch:
        """Columns from request objects (check each with `settings.rejection` first);
        counts default to none (new contacts)."""
        n = len(requests)
        resolved = [resolve_zone(r.zone, r.profile_zone, settings.zone) for r in requests]
        hours = [(r.hours or settings.hours).intervals() for r in requests]
        empty = np.zeros((n, settings.cells), dtype=np.int64)
        return cls(
            contact_ids=tuple(r.contact_id for r in requests),
            launch_keys=tuple(r.launch_key for r in requests),
            launch=np.array([r.launch_time for r in requests], dtype=np.float64),
            window=np.array([r.window_seconds for r in requests], dtype=np.float64),
            zones=tuple(z.name for z in resolved),
            zone_source=_codes([z.source for z in resolved], ZONE_SOURCES),
            zone_issue=_codes([z.issue for z in resolved], ZONE_ISSUES),
            hours=np.array([(*h[0], *h[1]) for h in hours], dtype=np.int64).reshape(n, 4),
            control_pct=np.array(
                [settings.control_pct if r.control_pct is None else r.control_pct for r in requests]
            ),
            control_delay=np.array(
                [
                    settings.control_delay_seconds
                    if r.control_delay_seconds is None
                    else r.control_delay_seconds
                    for r in requests
                ],
                dtype=np.int64,
            ),
            sends=empty if sends is None else np.asarray(sends, dtype=np.int64),
            responses=empty.copy() if responses is None else np.asarray(responses, dtype=np.int64),
        )


def _codes(values: Sequence[str], names: Sequence[str]) -> Codes:
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class SendTimeDecision:
    """One answer: send at `send_at` (Unix seconds, inside [launch, launch + window]),
    in local `slot` (0 = the slot starting at midnight) on a weekend day or not;
    `propensity` is the probability of that slot under the policy (1 for the control
    and for forced choices); `deferred` says the launch instant itself was quiet."""

    contact_id: str
    send_at: float
    slot: int
    weekend: bool
    propensity: float
    reason: Reason
    arm: Arm
    zone: str
    zone_source: ZoneSource
    zone_issue: ZoneIssue
    deferred: bool


@dataclass(frozen=True, slots=True, eq=False)
class SendTimeDecisions:
    """Decisions of a batch as columns; `cell` is the posterior cell the send counts in
    (slot, plus slots for a weekend day when weekdays and weekends are kept apart)."""

    contact_ids: tuple[str, ...]
    send_at: FloatArray
    slot: Int64Array
    cell: Int64Array
    weekend: NDArray[np.bool_]
    local_day: Int64Array
    propensity: FloatArray
    reason: Codes
    arm: Codes
    deferred: NDArray[np.bool_]
    zones: tuple[str, ...]
    zone_source: Codes
    zone_issue: Codes

    def __len__(self) -> int:
        return len(self.contact_ids)

    def row(self, i: int) -> SendTimeDecision:
        return SendTimeDecision(
            contact_id=self.contact_ids[i],
            send_at=float(self.send_at[i]),
            slot=int(self.slot[i]),
            weekend=bool(self.weekend[i]),
            propensity=float(self.propensity[i]),
            reason=REASONS[self.reason[i]],
            arm=ARMS[self.arm[i]],
            zone=self.zones[i],
            zone_source=ZONE_SOURCES[self.zone_source[i]],
            zone_issue=ZONE_ISSUES[self.zone_issue[i]],
            deferred=bool(self.deferred[i]),
        )

    def rows(self) -> list[SendTimeDecision]:
        return [self.row(i) for i in range(len(self))]
