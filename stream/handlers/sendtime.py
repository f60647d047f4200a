"""Answering a batch of send-time requests: the work of the send-time agent, without
Kafka, so it can be tested by calling it.

Per batch: decode every request (an invalid one gets an error response with its reason,
a dead letter and a count), check its `reply_to` against the same allow-list as the
selection's (`stream.handlers.reply_to`; the default topic is `send-time-responses`),
read the slot counts of every contact in one store round trip, decide each account's
requests with one vectorized `SendTimeDecider.decide_batch`, remember the zones the send
times were decided in (the learner reads sends' local slots in them) and return the
responses. Every request gets exactly one response.

The account's send-time settings are `SendTimeSettings()` (12 two-hour slots, sending
hours 08:00-21:00 local time, 5% exploration, 10% control, UTC for contacts without a
usable zone) unless `settings_for` says otherwise (the worker: the account's catalog);
a campaign's own sending hours (`hours_for`, from the catalog's campaigns) override the
account's, and a request's `sending_hours`, `control_pct` and `control_delay_seconds`
override both. The prior is `prior_for(account, settings)`: uniform unless a fitted one
is given. A request with `select_creative` also gets its creative, decided by `select`
(`stream.handlers.sendtime_selection`) at its send time, all of a batch's in one call.
"""

from __future__ import annotations

import functools
import logging
import time as _time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from selector.sendtime import (
    QuietHours,
    SendTimeBatch,
    SendTimeDecider,
    SendTimeDecisions,
    SendTimeRequest,
    SendTimeSettings,
    SlotPrior,
    rejection,
    window_counts,
)
from stream.handlers.reply_to import ReplyPolicy, ReplyRouter, TopicDirectory
from stream.handlers.sendtime_answers import Answers, Item
from stream.handlers.sendtime_selection import SelectAt, Selected, missing
from stream.handlers.sendtime_store import SendTimeStore
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.messages import SelectionRequest
from stream.wire.sendtime_messages import SendTimeQuery

log = logging.getLogger(__name__)
ZONE_TTL_SECONDS = 400 * 86_400
DEFAULT_SETTINGS = SendTimeSettings()


@functools.cache
def uniform_prior(cells: int) -> SlotPrior:
    """One uniform prior per layout, so a decider built on it is kept."""
    return SlotPrior.uniform(cells)


def to_request(
    query: SendTimeQuery, settings: SendTimeSettings, campaign_hours: QuietHours | None = None
) -> SendTimeRequest | str:
    """The selector's request, or the detail of why it cannot be answered (`invalid_value`:
    rules of the account's settings that the wire cannot state). The request's sending
    hours come before the campaign's (`campaign_hours`), which come before the account's."""
    hours = campaign_hours
    if query.sending_hours is not None:
        try:
            hours = QuietHours.parse(query.sending_hours["start"], query.sending_hours["end"])
        except ValueError:
            return "sending_hours: need start before 24:00 and start != end"
    request = SendTimeRequest(
        query.contact_id, query.campaign_id, query.launch_time, query.window_seconds,
        query.zone, query.profile_zone, query.launch_id, hours, query.control_pct,
        query.control_delay_seconds,
    )  # fmt: skip
    why = rejection(request, settings)
    if why == "bad_window":
        longest = settings.max_window_seconds
        return f"window_seconds: must be <= {longest} (the account's longest delivery window)"
    if why is not None:
        return f"request: {why}"
    delay = request.control_delay_seconds
    if delay is not None and delay > settings.max_window_seconds:
        return f"control_delay_seconds: must be <= {settings.max_window_seconds}"
    return request


class SendTimeService:
    """Answers batches of send-time requests (see the module docstring)."""

    def __init__(
        self,
        *,
        store: SendTimeStore,
        metrics: Metrics,
        responses_topic: str,
        dead_letters_topic: str,
        max_message_bytes: int = 65536,
        settings_for: Callable[[str], SendTimeSettings] | None = None,
        hours_for: Callable[[str, str], QuietHours | None] | None = None,
        prior_for: Callable[[str, SendTimeSettings], SlotPrior] | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = _time.time,
        reply_policy: ReplyPolicy | None = None,
        reply_topics: TopicDirectory | None = None,
        reply_check_seconds: float = 1.0,
        reply_cache_seconds: float = 60.0,
        select: SelectAt | None = None,
    ) -> None:
        self._store = store
        self._select = select
        self._metrics = metrics
        self._max_bytes = max_message_bytes
        self._settings_for = settings_for or (lambda account: DEFAULT_SETTINGS)
        self._hours_for = hours_for or (lambda account, campaign: None)
        self._prior_for = prior_for or (lambda account, s: uniform_prior(s.cells))
        self._rng = np.random.default_rng(seed)
        self._clock = clock
        self._deciders: dict[str, SendTimeDecider] = {}
        self._replies = ReplyRouter(
            reply_policy or ReplyPolicy(responses_topic, "", reply_prefix=""),
            reply_topics,
            metrics,
            check_seconds=reply_check_seconds,
            cache_seconds=reply_cache_seconds,
            clock=clock,
        )
        self.answers = Answers(metrics, responses_topic, dead_letters_topic)

    def decider(self, account_id: str) -> SendTimeDecider:
        """The account's decider (its zone clocks are cached with it), built again when
        the account's settings or prior change (`settings_for` and `prior_for` return the
        same objects while they do not)."""
        settings = self._settings_for(account_id)
        prior = self._prior_for(account_id, settings)
        found = self._deciders.get(account_id)
        if found is None or found.settings is not settings or found.prior is not prior:
            found = SendTimeDecider(settings, prior)
            self._deciders[account_id] = found
        return found

    async def answer(self, batch: Sequence[Incoming]) -> list[Outgoing]:
        """Every request's answer; requests whose reply topic must be checked wait for the
        check (bounded by `reply_check_seconds`)."""
        now = self._clock()
        out: list[Outgoing] = []
        ready: list[Item] = []
        waiting: list[tuple[Incoming, SendTimeQuery]] = []
        for message in batch:
            decoded = codec.decode(
                "send_time_request", message.value, max_bytes=self._max_bytes, key=message.key
            )
            if isinstance(decoded, codec.Rejected):
                rid, acct = codec.salvage_ids(message.value)
                out += self.answers.reject(message, rid, acct, decoded.reason, decoded.detail, now)
                continue
            route = self._replies.route(decoded.reply_to, now)
            if route == "check":
                waiting.append((message, decoded))
            elif route == "answer":
                out += self._checked(message, decoded, ready, now)
            else:
                out += self._refuse(message, decoded, route, now)
        if waiting:
            exists = await self._replies.look_up({str(q.reply_to) for _, q in waiting})
            for message, query in waiting:
                if exists[str(query.reply_to)]:
                    out += self._checked(message, query, ready, now)
                else:
                    out += self._refuse(message, query, "missing_topic", now)
        return out + await self._decide(ready, now)

    def _checked(
        self, message: Incoming, query: SendTimeQuery, ready: list[Item], now: float
    ) -> list[Outgoing]:
        hours = self._hours_for(query.account_id, query.campaign_id)
        request = to_request(query, self.decider(query.account_id).settings, hours)
        if isinstance(request, str):
            return self.answers.reject(
                message, query.request_id, query.account_id, "invalid_value", request, now
            )
        ready.append((message, query, request))
        return []

    def _refuse(
        self, message: Incoming, query: SendTimeQuery, cause: str, now: float
    ) -> list[Outgoing]:
        reason, detail = self._replies.refused(cause, str(query.reply_to))  # type: ignore[arg-type]
        return self.answers.reject(message, query.request_id, query.account_id, reason, detail, now)

    async def _decide(self, items: list[Item], now: float) -> list[Outgoing]:
        """One store read for every contact of the batch, one decision call per account."""
        if not items:
            return []
        try:
            blobs = await self._store.slots([(q.account_id, q.contact_id) for _, q, _ in items])
        except Exception:  # no history rather than no answer: decided as new contacts
            self._metrics.sendtime.state_issues.labels("store_unavailable").inc(len(items))
            blobs = [None] * len(items)
        rows: dict[str, list[int]] = defaultdict(list)
        for i, (_, query, _) in enumerate(items):
            rows[query.account_id].append(i)
        decided: list[tuple[list[Item], SendTimeDecisions, SendTimeDecider]] = []
        zones: list[tuple[str, str, str]] = []
        for account_id, index in rows.items():
            decider = self.decider(account_id)
            requests = [items[i][2] for i in index]
            batch = SendTimeBatch.from_requests(requests, decider.settings)
            s = decider.settings
            counts = window_counts(
                [blobs[i] for i in index], decider.local_days(batch), s.slots,
                s.split_weekends, s.history,
            )  # fmt: skip
            self.answers.count_unusable(counts.status)
            batch = replace(batch, sends=counts.sends, responses=counts.responses)
            decisions = decider.decide_batch(batch, self._rng)
            decided.append(([items[i] for i in index], decisions, decider))
            named = zip(requests, batch.zones, strict=True)
            zones += [(account_id, r.contact_id, zone) for r, zone in named]
        out: list[Outgoing] = []
        picked = await self._selections(decided)
        for (part, decisions, decider), chosen in zip(decided, picked, strict=True):
            out += self.answers.decided(part, decisions, decider, now, chosen)
        try:
            await self._store.remember_zones(zones, ZONE_TTL_SECONDS)
        except Exception:  # the learner then reads those sends in the account's zone
            self._metrics.sendtime.state_issues.labels("store_unavailable").inc(len(zones))
        return out

    async def _selections(
        self, decided: list[tuple[list[Item], SendTimeDecisions, SendTimeDecider]]
    ) -> list[list[Selected | None]]:
        """The creatives of the requests with `select_creative`, each decided at its send
        time, in one `select` call; if it fails each gets an `internal_error` object."""
        picked: list[list[Selected | None]] = [[None] * len(part) for part, _, _ in decided]
        wanted = [
            (g, i, SelectionRequest(q.request_id, q.account_id, q.campaign_id, q.contact_id))
            for g, (part, _, _) in enumerate(decided)
            for i, (_, q, _) in enumerate(part)
            if q.select_creative
        ]
        if not wanted:
            return picked
        pairs = [(r, float(decided[g][1].send_at[i])) for g, i, r in wanted]
        try:
            if self._select is None:
                raise LookupError("creative selection is not available")
            found = await self._select(pairs)
        except Exception as exc:  # the send times stand without their creatives
            log.exception("selecting the creatives of send-time requests failed")
            found = [missing(r, f"selection failed: {type(exc).__name__}") for r, _ in pairs]
            self._metrics.selection_errors.labels("internal_error").inc(len(found))
        for (g, i, _), chosen in zip(wanted, found, strict=True):
            picked[g][i] = chosen
        return picked

    def internal_error(self, batch: Sequence[Incoming], exc: Exception) -> list[Outgoing]:
        """Answers for a batch that failed on our side: every request still gets a reply."""
        now = self._clock()
        out: list[Outgoing] = []
        for message in batch:
            rid, acct = codec.salvage_ids(message.value)
            detail = type(exc).__name__
            out += self.answers.reject(message, rid, acct, "internal_error", detail, now)
        return out
