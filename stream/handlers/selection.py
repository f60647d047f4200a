"""Answering a batch of selection requests: the work of the selection agent, without
Kafka, so it can be tested by calling it.

Per batch: decode every request (invalid ones get an error response and a dead letter),
read the cooldowns of every contact in one store round trip, decide each account's
requests with one vectorized `Selector.decide_batch` (a few one by one:
`stream.handlers.account_decisions`), record the new cooldowns in one
round trip, and return the responses to publish. Every request gets exactly one
response.

A request's `reply_to` is checked against the allow-list (`stream.handlers.reply_to`)
before anything is decided for it. A reply topic not checked recently is looked up while
the rest of the batch is decided: `answer_ready` returns the batch's other answers at
once, with the requests waiting for the check `Held`, and `answer_held` answers those
once the check is done (within `reply_check_seconds`), so a topic that does not exist
costs the batch's other requests nothing and the next batch at most that bound.
Custom-field values a request carries: `stream.handlers.custom_values`.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections import defaultdict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector import AccountStats
from selector.batch import DECIDER, BatchDecision
from selector.custom_fields import CustomField
from selector.ingest import Ledger
from selector.model.artifact import ContextualModel
from stream.handlers.account_decisions import Asked, decide_account
from stream.handlers.batching import Part, Source, group_of, pack
from stream.handlers.catalog import AccountCatalog
from stream.handlers.cooldowns import read_cooldowns
from stream.handlers.custom_values import (
    CustomWriter,
    Profiles,
    Update,
    beside,
    profile_reads,
    profile_records,
    taken,
)
from stream.handlers.reply_to import ReplyPolicy, ReplyRefusal, ReplyRouter, TopicDirectory
from stream.handlers.stores import CooldownStore
from stream.ops.exposure import DecisionMetrics
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.batches import open_requests, salvage_request_ids
from stream.wire.encoders import valid_id
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.messages import SelectionRequest
from stream.wire.reasons import Rejection

Item = tuple[Source, SelectionRequest]
ROUND = 2000  # requests per cooldown round trip
INNER = Incoming(b"", None, "", 0, -1)  # the source of `decide_inner`'s requests


@dataclass(frozen=True, slots=True)
class Held:
    """Requests waiting for the check of their reply topics (running in `check`)."""

    items: list[Item]
    check: asyncio.Future[dict[str, bool]]

    @property
    def messages(self) -> list[Incoming]:
        """The messages the held requests came from (each once)."""
        found = {id(m): m for source, _ in self.items for m in [_message(source)]}
        return list(found.values())


def _message(source: Source) -> Incoming:
    return source.message if isinstance(source, Part) else source


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
        custom: CustomWriter | None = None,
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
        self._custom = custom
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
            for source, decoded in self._open(message, now, out):
                route = self._replies.route(decoded.reply_to, now)
                if route == "answer":
                    ready.append((source, decoded))
                elif route == "check":
                    waiting.append((source, decoded))
                else:
                    out += self._refuse(source, decoded, route, now)
        held = None
        if waiting:
            names = {str(request.reply_to) for _, request in waiting}
            held = Held(waiting, asyncio.ensure_future(self._replies.look_up(names)))
        return pack(out + await self._decide_all(ready, now)), held

    async def decide_inner(self, requests: Sequence[SelectionRequest]) -> list[bytes]:
        """The response body of each of `requests`, decided at its `time`, for requests
        another message carries (a send-time request's `select_creative`): decided, counted
        and their cooldowns recorded as any, errors without a dead letter. In no order."""
        out = await self._decide_all([(INNER, r) for r in requests], self._clock())
        return [o.value for o in out if o.topic != self._dead_letters_topic]

    async def _decide_all(self, ready: list[Item], now: float) -> list[Outgoing]:
        """`_decide` in rounds of at most `ROUND` requests: a batch of batch messages can
        hold tens of thousands, and each store round trip must stay within its timeout."""
        out: list[Outgoing] = []
        for start in range(0, len(ready), ROUND):
            out += await self._decide(ready[start : start + ROUND], now)
        return out

    def _open(self, message: Incoming, now: float, out: list[Outgoing]) -> list[Item]:
        """The valid requests of a message (single or a batch); the answers to the
        invalid ones, and to a message refused whole, go to `out`."""
        opened = open_requests(message.value, max_bytes=self._max_bytes, key=message.key, now=now)
        if isinstance(opened, codec.Rejected):
            ids, acct, batched = salvage_request_ids(message.value)
            group = message.position if batched else None
            out += self._reject(message, ids[0], acct, opened.reason, opened.detail, now, group)
            for rid in ids[1:]:
                out.append(self._error(rid, acct, opened.reason, opened.detail, now, group))
            return []
        valid: list[Item] = []
        for item in opened.items:
            source: Source = Part(message, item) if opened.batched else message
            if not isinstance(item.value, codec.Rejected):
                valid.append((source, item.value))
                continue
            if item.source is not None:
                rid, acct = _item_ids(item.source, opened.account_id)
            else:
                rid, acct = codec.salvage_ids(message.value)
            out += self._reject(source, rid, acct, item.value.reason, item.value.detail, now)
        return valid

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
        return pack(out + await self._decide_all(ready, now))

    def _refuse(
        self, message: Source, request: SelectionRequest, cause: ReplyRefusal, now: float
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
        fields = self._fields if self._custom is not None else None
        reads, wanted = profile_reads(by_account, modelled, fields)
        read = await read_cooldowns(self._cooldowns, pairs, wanted) if pairs else None
        last_sent = read.last_sent if read is not None else []
        blobs = iter(read.profiles if read is not None else [])
        degraded = read is not None and read.degraded
        sent: list[tuple[str, str, str, float, float]] = []
        updates: list[Update] = []
        cursor = 0
        for account_id, items in by_account.items():
            history = last_sent[cursor : cursor + len(items)]
            cursor += len(items)
            profiles = Profiles(taken(blobs, reads[account_id]), account_id in modelled, updates)
            out += self._decide_account(account_id, items, history, now, sent, degraded, profiles)
        if degraded:
            self._metrics.degraded_decisions.inc(len(sent))
        write = self._cooldowns.record(sent) if sent else None
        await beside(write, self._custom, updates, degraded)
        return out

    def _fields(self, account_id: str) -> tuple[CustomField, ...]:
        built = self._catalog(account_id.encode())
        return built.account.settings.custom_fields if built and built.account else ()

    def _custom_outcome(self, outcome: str, count: int) -> None:
        self._metrics.model.custom_values.labels(outcome).inc(count)

    def _decide_account(
        self,
        account_id: str,
        items: list[Any],
        history: list[dict[str, float]],
        now: float,
        sent: list[tuple[str, str, str, float, float]],
        degraded: bool = False,
        profiles: Profiles | None = None,
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
        fields = selector.account.settings.custom_fields
        count = self._custom_outcome
        recs, dropped = profile_records(fields, account_id, reqs, known, profiles, count)
        ledger = self._stats(key)
        stats = ledger.stats if ledger is not None else AccountStats()
        modelled = profiles is not None and profiles.modelled
        asked = Asked(account_id, reqs, times, [history[i] for i in known], recs, modelled)
        model = self._models(key) if modelled else None
        rotation = self._rotation.get(account_id)
        decisions, batched = decide_account(
            selector, stats, asked, self._rng, rotation, model, self.decision_metrics
        )
        if batched is not None and batched.rotation:
            self._rotation[account_id] = dict(batched.rotation)
        if modelled and batched is not None:
            self._count_model(batched)
        cooldown = selector.account.settings.cooldown_seconds
        for row, req in enumerate(reqs):
            d, group = decisions[row], group_of(items[known[row]][0])
            if self._metrics is not None and req.time is not None:
                self._metrics.request_age.observe(max(0.0, now - req.time))
            sent.append((account_id, req.contact_id, d.creative_id, times[row], cooldown))
            body = codec.ok_response(req, d, now, degraded, dropped[row] if dropped else ())
            out.append(Outgoing(req.reply_to or self._responses_topic, key, body, group))
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
        out: list[Outgoing] = []
        for message, req in items:
            if req.campaign_id not in campaigns:
                detail = f"campaign {req.campaign_id!r} is not in account {account_id!r}"
                out += self._reject(
                    message, req.request_id, account_id, "unknown_campaign", detail, now
                )
        return out

    def internal_error(self, batch: Sequence[Incoming], exc: Exception) -> list[Outgoing]:
        """Answers for a batch that failed on our side: every request still gets a reply
        (each request of a batch message, when its ids can be read)."""
        now = self._clock()
        out: list[Outgoing] = []
        reason: Rejection = "internal_error"
        for message in batch:
            ids, acct, batched = salvage_request_ids(message.value)
            group = message.position if batched else None
            out += self._reject(message, ids[0], acct, reason, type(exc).__name__, now, group)
            out += [self._error(r, acct, reason, type(exc).__name__, now, group) for r in ids[1:]]
        return pack(out)

    def _error(
        self,
        request_id: str | None,
        account_id: str | None,
        reason: Rejection,
        detail: str,
        now: float,
        group: str | None = None,
    ) -> Outgoing:
        """An error response (without a dead letter: see `_reject`)."""
        self._metrics.selection_errors.labels(reason).inc()
        key = account_id.encode() if account_id else b""
        response = codec.error_response(request_id, account_id, reason, detail, now)
        return Outgoing(self._responses_topic, key, response, group)

    def _reject(
        self,
        message: Source,
        request_id: str | None,
        account_id: str | None,
        reason: Rejection,
        detail: str | None,
        now: float,
        group: str | None = None,
    ) -> list[Outgoing]:
        """An error response and a dead letter; `group`: that of the message's answers
        (default: the item's batch, for an item of one)."""
        if message is INNER:  # carried by a message that was used: no dead letter
            return [self._error(request_id, account_id, reason, detail or reason, now)]
        self._metrics.selection_errors.labels(reason).inc()
        self._metrics.dead_letters.labels(reason, message.topic).inc()
        key = account_id.encode() if account_id else (message.key or b"")
        detail = detail or reason
        if isinstance(message, Part):
            detail, group = message.where(detail), message.group
        response = codec.error_response(request_id, account_id, reason, detail, now)
        letter = codec.dead_letter(
            message.value, message.key, reason, detail, message.topic, message.partition,
            message.offset, now,
        )  # fmt: skip
        return [
            Outgoing(self._responses_topic, key, response, group),
            Outgoing(self._dead_letters_topic, key, letter),
        ]


def _item_ids(source: dict[str, Any], account_id: str | None) -> tuple[str | None, str | None]:
    """A rejected item's request id and the batch's account, where they can be read."""
    return valid_id(source.get("request_id")), account_id
