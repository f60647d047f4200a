"""Answering a batch of selection requests: the work of the selection agent, without
Kafka, so it can be tested by calling it.

Per batch: decode every request (invalid ones get an error response and a dead letter),
read the cooldowns of every contact in one store round trip, decide each account's
requests with one vectorized `Selector.decide_batch`, record the new cooldowns in one
round trip, and return the responses to publish. Every request gets exactly one
response.

A request's `reply_to` is checked against the allow-list (`stream.handlers.reply_to`)
before anything is decided for it. A reply topic not checked recently is looked up while
the rest of the batch is decided: `answer_ready` returns the batch's other answers at
once, with the requests waiting for the check `Held`, and `answer_held` answers those
once the check is done (within `reply_check_seconds`), so a topic that does not exist
costs the batch's other requests nothing and the next batch at most that bound.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections import defaultdict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector import AccountStats, RequestBatch
from selector.batch import DECIDER, BatchDecision
from selector.ingest import Ledger
from selector.model.artifact import ContextualModel
from selector.model.record import records
from stream.handlers.catalog import AccountCatalog
from stream.handlers.cooldowns import read_cooldowns
from stream.handlers.reply_to import ReplyPolicy, ReplyRefusal, ReplyRouter, TopicDirectory
from stream.handlers.stores import CooldownStore
from stream.ops.exposure import DecisionMetrics
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.messages import SelectionRequest
from stream.wire.reasons import Rejection

Item = tuple[Incoming, SelectionRequest]


@dataclass(frozen=True, slots=True)
class Held:
    """Requests waiting for the check of their reply topics (running in `check`)."""

    items: list[Item]
    check: asyncio.Future[dict[str, bool]]

    @property
    def messages(self) -> list[Incoming]:
        return [message for message, _ in self.items]


class SelectionService:
    """Answers batches of selection requests.

    `reply_policy` says which `reply_to` topics are allowed (default: the responses topic
    only); `reply_topics` tells which exist (None: not checked, for tests without Kafka).
    """

    def __init__(
        self,
        *,
        catalog: Callable[[bytes], AccountCatalog | None],
        stats: Callable[[bytes], Ledger | None],
        cooldowns: CooldownStore,
        metrics: Metrics,
        responses_topic: str,
        dead_letters_topic: str,
        max_message_bytes: int = 65536,
        seed: int | None = None,
        clock: Callable[[], float] = _time.time,
        reply_policy: ReplyPolicy | None = None,
        reply_topics: TopicDirectory | None = None,
        reply_check_seconds: float = 1.0,
        reply_cache_seconds: float = 60.0,
        models: Callable[[bytes], ContextualModel | None] | None = None,
    ) -> None:
        self._catalog = catalog
        self._stats = stats
        self._cooldowns = cooldowns
        self._metrics = metrics
        self._responses_topic = responses_topic
        self._dead_letters_topic = dead_letters_topic
        self._max_bytes = max_message_bytes
        self._rng = np.random.default_rng(seed)
        self._clock = clock
        self._rotation: dict[str, dict[str, int]] = {}
        self._models = models or (lambda key: None)
        self.decision_metrics = DecisionMetrics(metrics)
        self._replies = ReplyRouter(
            reply_policy or ReplyPolicy(responses_topic, "", reply_prefix=""),
            reply_topics,
            metrics,
            check_seconds=reply_check_seconds,
            cache_seconds=reply_cache_seconds,
            clock=clock,
        )

    async def answer(self, batch: Sequence[Incoming]) -> list[Outgoing]:
        """Every request's answer, those whose reply topic had to be checked last."""
        out, held = await self.answer_ready(batch)
        return out + (await self.answer_held(held) if held is not None else [])

    async def answer_ready(self, batch: Sequence[Incoming]) -> tuple[list[Outgoing], Held | None]:
        """The answers that need nothing more, and the requests whose reply topic is being
        checked meanwhile (None when there are none); give those to `answer_held`."""
        now = self._clock()
        out: list[Outgoing] = []
        ready: list[Item] = []
        waiting: list[Item] = []
        for message in batch:
            decoded = codec.decode(
                "selection_request",
                message.value,
                max_bytes=self._max_bytes,
                key=message.key,
                now=now,
            )
            if isinstance(decoded, codec.Rejected):
                rid, acct = codec.salvage_ids(message.value)
                out += self._reject(message, rid, acct, decoded.reason, decoded.detail, now)
                continue
            route = self._replies.route(decoded.reply_to, now)
            if route == "answer":
                ready.append((message, decoded))
            elif route == "check":
                waiting.append((message, decoded))
            else:
                out += self._refuse(message, decoded, route, now)
        held = None
        if waiting:
            names = {str(request.reply_to) for _, request in waiting}
            held = Held(waiting, asyncio.ensure_future(self._replies.look_up(names)))
        return out + await self._decide(ready, now), held

    async def answer_held(self, held: Held) -> list[Outgoing]:
        """Answers to the held requests, once their reply topics are checked."""
        exists = await held.check
        now = self._clock()
        out: list[Outgoing] = []
        ready: list[Item] = []
        for message, request in held.items:
            if exists[str(request.reply_to)]:
                ready.append((message, request))
            else:
                out += self._refuse(message, request, "missing_topic", now)
        return out + await self._decide(ready, now)

    def _refuse(
        self, message: Incoming, request: SelectionRequest, cause: ReplyRefusal, now: float
    ) -> list[Outgoing]:
        reason, detail = self._replies.refused(cause, str(request.reply_to))
        return self._reject(message, request.request_id, request.account_id, reason, detail, now)

    async def _decide(self, decoded: list[Item], now: float) -> list[Outgoing]:
        """Decisions for decoded requests: one cooldown read and one write for them all."""
        out: list[Outgoing] = []
        by_account: dict[str, list[Any]] = defaultdict(list)
        for message, request in decoded:
            by_account[request.account_id].append((message, request))
        pairs = [(a, r.contact_id) for a, items in by_account.items() for _, r in items]
        modelled = {a for a in by_account if self._uses_model(a)}
        wanted = [p for p in pairs if p[0] in modelled]
        read = await read_cooldowns(self._cooldowns, pairs, wanted) if pairs else None
        last_sent = read.last_sent if read is not None else []
        blobs = iter(read.profiles if read is not None else [])
        degraded = read is not None and read.degraded
        sent: list[tuple[str, str, str, float, float]] = []
        cursor = 0
        for account_id, items in by_account.items():
            history = last_sent[cursor : cursor + len(items)]
            cursor += len(items)
            profiles = [next(blobs) for _ in items] if account_id in modelled else None
            out += self._decide_account(account_id, items, history, now, sent, degraded, profiles)
        if degraded:
            self._metrics.degraded_decisions.inc(len(sent))
        if sent:
            await self._cooldowns.record(sent)
        return out

    def _decide_account(
        self,
        account_id: str,
        items: list[Any],
        history: list[dict[str, float]],
        now: float,
        sent: list[tuple[str, str, str, float, float]],
        degraded: bool = False,
        profiles: list[bytes | None] | None = None,
    ) -> list[Outgoing]:
        key = account_id.encode()
        built = self._catalog(key)
        if built is None or built.selector is None:
            reason: Rejection = "unknown_account" if built is None else "invalid_catalog"
            detail = f"account {account_id!r} has no catalog" if built is None else built.error
            return [
                out
                for message, req in items
                for out in self._reject(message, req.request_id, account_id, reason, detail, now)
            ]
        selector = built.selector
        campaigns = selector.view.campaign_index
        known = [i for i, (_, r) in enumerate(items) if r.campaign_id in campaigns]
        out = self._unknown_campaigns(account_id, items, campaigns, now)
        if not known:
            return out
        reqs = [items[i][1] for i in known]
        times = [r.time if r.time is not None else now for r in reqs]
        batch = RequestBatch.from_columns(
            [r.campaign_id for r in reqs],
            [r.contact_id for r in reqs],
            times,
            [history[i] for i in known],
            records([profiles[i] for i in known])[0] if profiles is not None else None,
        )
        ledger = self._stats(key)
        stats = ledger.stats if ledger is not None else AccountStats()
        model = self._models(key) if profiles is not None else None
        rotation = self._rotation.get(account_id)
        decision = selector.decide_batch(stats, batch, self._rng, rotation, model)
        if decision.rotation:
            self._rotation[account_id] = dict(decision.rotation)
        if profiles is not None:
            self._count_model(decision)
        self.decision_metrics.observe(account_id, selector.view, batch, decision)
        cooldown = selector.account.settings.cooldown_seconds
        for row, req in enumerate(reqs):
            d = decision[row]
            if self._metrics is not None and req.time is not None:
                self._metrics.request_age.observe(max(0.0, now - req.time))
            sent.append((account_id, req.contact_id, d.creative_id, times[row], cooldown))
            body = codec.ok_response(req, d, now, degraded)
            out.append(Outgoing(req.reply_to or self._responses_topic, key, body))
        return out

    def _count_model(self, decision: BatchDecision) -> None:
        """The `model` method's decisions: by a promoted model, or by its fallback."""
        routed = int((decision.method == DECIDER["model"]).sum())
        scored = int(decision.modelled().sum())
        requests = self._metrics.model.model_requests
        requests.labels("model").inc(scored)
        requests.labels("fallback").inc(routed - scored)

    def _uses_model(self, account_id: str) -> bool:
        """Whether the account routes any traffic to the `model` method."""
        built = self._catalog(account_id.encode())
        return (
            built is not None
            and built.selector is not None
            and ("model" in built.selector.view.methods)
        )

    def _unknown_campaigns(
        self, account_id: str, items: list[Any], campaigns: Container[str], now: float
    ) -> list[Outgoing]:
        """Error answers to the requests for campaigns the account does not have."""
        return [
            o
            for message, req in items
            if req.campaign_id not in campaigns
            for o in self._reject(
                message,
                req.request_id,
                account_id,
                "unknown_campaign",
                f"campaign {req.campaign_id!r} is not in account {account_id!r}",
                now,
            )
        ]

    def internal_error(self, batch: Sequence[Incoming], exc: Exception) -> list[Outgoing]:
        """Answers for a batch that failed on our side: every request still gets a reply."""
        now = self._clock()
        out: list[Outgoing] = []
        for message in batch:
            rid, acct = codec.salvage_ids(message.value)
            out += self._reject(message, rid, acct, "internal_error", type(exc).__name__, now)
        return out

    def _reject(
        self,
        message: Incoming,
        request_id: str | None,
        account_id: str | None,
        reason: Rejection,
        detail: str | None,
        now: float,
    ) -> list[Outgoing]:
        self._metrics.selection_errors.labels(reason).inc()
        self._metrics.dead_letters.labels(reason, message.topic).inc()
        key = account_id.encode() if account_id else (message.key or b"")
        response = codec.error_response(request_id, account_id, reason, detail or reason, now)
        letter = codec.dead_letter(
            message.value,
            message.key,
            reason,
            detail or reason,
            message.topic,
            message.partition,
            message.offset,
            now,
        )
        return [
            Outgoing(self._responses_topic, key, response),
            Outgoing(self._dead_letters_topic, key, letter),
        ]
