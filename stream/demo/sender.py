"""The demo's simulated sender: the scenario as a catalog and its truth, and the rounds
that ask the service for creatives and publish the outcomes that follow."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector.domain import DAY_SECONDS
from selector.scenario import Phase, Scenario
from stream.client import SelectionClient
from stream.local.harness import Worker
from stream.settings import Settings
from stream.wire.messages import (
    ClickEvent,
    ConversionEvent,
    SelectionError,
    SelectionResponse,
    SendEvent,
)

Array = np.ndarray[Any, Any]
EVENTS_METRIC = "creative_selection_events_total"


def account_document(scenario: Scenario) -> dict[str, Any]:
    """The scenario's account as a catalog document (`account_from_dict`'s shape): its
    settings, offers, creatives and campaign, without the true rates only a simulation has.
    """
    account = scenario.account
    settings = dataclasses.asdict(account.settings)
    settings["methods"] = {m["method"]: m["traffic_pct"] for m in settings["methods"]}
    settings = {k: v for k, v in settings.items() if v is not None}
    return {
        "account_id": account.account_id,
        "settings": settings,
        "offers": [dataclasses.asdict(o) for o in account.offers],
        "creatives": [dataclasses.asdict(c) for c in account.creatives],
        "campaigns": [_plain(dataclasses.asdict(c)) for c in account.campaigns],
    }


def _plain(value: Any) -> Any:
    """Tuples to lists and None fields dropped, so the document reads like a file."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Truth:
    """One phase of the scenario's truth, indexed by segment x creative."""

    phase: Phase
    click: Array
    conversion: Array
    value: Array  # revenue per send, or click rate for the clicks goal
    pays_per_click: Array  # payout of a click (cto offers), else 0
    pays_per_conversion: Array  # payout of a conversion (cpa offers), else 0
    candidate: Array


def truths(scenario: Scenario) -> list[Truth]:
    out = []
    for phase in scenario.phases():
        account = phase.account
        payout = {o.offer_id: o.payout for o in account.offers}
        cto_offer = {o.offer_id: o.payout_type == "cto" for o in account.offers}
        pays = np.array([payout[c.offer_id] for c in account.creatives])
        cto = np.array([cto_offer[c.offer_id] for c in account.creatives], dtype=bool)
        click, conv = phase.click_rate, phase.conversion_rate
        rps = click * np.where(cto, 1.0, conv) * pays
        value = click if account.settings.goal == "clicks" else rps
        candidate = np.array([c.is_candidate for c in account.creatives], dtype=bool)
        out.append(
            Truth(
                phase,
                click,
                conv,
                value,
                np.where(cto, pays, 0.0),
                np.where(cto, 0.0, pays),
                candidate,
            )
        )
    return out


def truth_at(table: Sequence[Truth], offset: float) -> Truth:
    return [t for t in table if t.phase.start_seconds <= offset][-1]


@dataclass(frozen=True, slots=True)
class SenderStats:
    requests: int
    responses: int
    errors: int
    unanswered: int
    events_published: int
    wall_seconds: float


class Sender:
    """Plays the scenario's sender against the service, round by round."""

    def __init__(
        self,
        scenario: Scenario,
        settings: Settings,
        worker: Worker,
        sends: int,
        seed: int,
        start_time: float,
        batch_size: int,
    ) -> None:
        self.scenario = scenario
        self.settings = settings
        self.worker = worker
        self.sends = sends
        self.start_time = start_time
        self.batch_size = batch_size
        self.truths = truths(scenario)
        contact_rng, self.outcome_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
        )
        self.contact_rng = contact_rng
        shares = scenario.segment_shares()
        self.segment_of = contact_rng.choice(shares.size, size=scenario.contacts, p=shares)
        self.account_id = scenario.account.account_id
        self.campaign_id = scenario.account.campaigns[0].campaign_id
        self.creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
        self.index = {cid: k for k, cid in enumerate(self.creative_ids)}
        self.best = int(np.argmax(self.truths[0].value[0]))
        self.pending: deque[tuple[float, list[ClickEvent | ConversionEvent]]] = deque()
        self.published = 0
        self.requests = self.responses = self.errors = self.unanswered = 0
        self.best_share = math.nan

    @property
    def seconds_per_send(self) -> float:
        return DAY_SECONDS / self.scenario.sends_per_day

    async def run(
        self,
        progress: Callable[[int, float], None] | None = None,
        before_round: Callable[[float], Awaitable[None]] | None = None,
    ) -> SenderStats:
        """Play every round; `before_round(offset)` runs before each (the demo's training)."""
        started = time.monotonic()
        async with SelectionClient(self.settings, timeout=120.0) as client:
            for first in range(0, self.sends, self.batch_size):
                size = min(self.batch_size, self.sends - first)
                offset = first * self.seconds_per_send
                await self._deliver_feedback(client, offset)
                if before_round is not None:
                    await before_round(offset)
                await self._round(client, offset, size)
                await self._wait_applied()
                if progress is not None:
                    progress(first + size, self.best_share)
            await self._deliver_feedback(client, math.inf)
            await self._wait_applied(timeout=300.0)
        return SenderStats(
            self.requests,
            self.responses,
            self.errors,
            self.unanswered,
            self.published,
            time.monotonic() - started,
        )

    async def _round(self, client: SelectionClient, offset: float, size: int) -> None:
        now = self.start_time + offset
        contacts = self.contact_rng.choice(self.scenario.contacts, size=size, replace=False)
        requests = [(self.account_id, self.campaign_id, f"contact-{c}", now) for c in contacts]
        answers = await client.select_many(requests, return_exceptions=True)
        self.requests += size
        truth = truth_at(self.truths, offset)
        due = offset + self.scenario.feedback_delay_seconds
        sends: list[SendEvent] = []
        feedback: list[ClickEvent | ConversionEvent] = []
        automated = best = 0
        rand = self.outcome_rng.random((size, 2))
        for i, (contact, answer) in enumerate(zip(contacts.tolist(), answers, strict=True)):
            if isinstance(answer, SelectionError):
                self.errors += 1
                continue
            if not isinstance(answer, SelectionResponse):
                self.unanswered += 1
                continue
            self.responses += 1
            k = self.index[answer.creative_id]
            if answer.arm == "automated":
                automated += 1
                best += k == self.best
            contact_id, segment = f"contact-{contact}", int(self.segment_of[contact])
            send_id = f"send-{answer.request_id}"
            sends.append(
                SendEvent(
                    send_id,
                    self.account_id,
                    self.campaign_id,
                    contact_id,
                    answer.creative_id,
                    now,
                    request_id=answer.request_id,
                )
            )
            if rand[i, 0] >= truth.click[segment, k]:
                continue
            at = self.start_time + due
            common = (self.account_id, contact_id, answer.creative_id, at)
            feedback.append(  # with its send's time, so the worker observes the delay
                ClickEvent(f"click-{answer.request_id}", *common, send_id, self.campaign_id, now)
            )
            if rand[i, 1] < truth.conversion[segment, k]:
                revenue = float(truth.pays_per_conversion[k])
                feedback.append(
                    ConversionEvent(
                        f"conv-{answer.request_id}",
                        *common,
                        revenue,
                        send_id,
                        self.campaign_id,
                        click_time=at,
                    )
                )
        if automated:
            self.best_share = best / automated
        self.published += await client.publish_events(sends)
        self.pending.append((due, feedback))

    async def _deliver_feedback(self, client: SelectionClient, offset: float) -> None:
        while self.pending and self.pending[0][0] <= offset:
            _, events = self.pending.popleft()
            self.published += await client.publish_events(events)

    async def _wait_applied(self, timeout: float = 120.0) -> None:
        """Until the worker has taken in every event published so far (applied or not), so
        each round decides on the stats its simulated time would have."""
        await self.worker.wait_for(EVENTS_METRIC, self.published, timeout=timeout)
