"""Applying a batch of sends, clicks and conversions to the per-account stats: the work of
the stats agent, without Kafka.

Per batch: decode every event (invalid ones become dead letters with their reason),
check the account and creative against the catalog, ask the dedup store in one round
trip which events are upstream duplicates (waiting for it while it cannot answer:
`stream.handlers.dedup`), and fold each account's events into its
ledger with `selector.ingest.apply_events`, which skips re-deliveries by offset.

What counts, and what does not:
- A click or conversion whose send was never seen still counts: counts are additive and
  events may arrive in any order (a click can overtake its send). The posterior clamps
  clicks above sends, and the daily job reconciles.
- An event for an account without a catalog, or a creative the account does not have,
  is dead-lettered (`unknown_account`, `unknown_creative`): nothing can be attributed.
- A click's `send_time` and a conversion's `click_time`, when the event carries them,
  become the event's origin time (`SourcedEvent.origin_time`): the stats then observe the
  feedback delay, which the posterior needs to discount pending sends and clicks
  (`selector.timing`). An event without one still counts; its delay is not observed.
  Only the event's own field is used: the stats agent does not look up the attributed
  send (`send_event_id`), whose time it does not keep.
- Negative revenue is `invalid_value`; revenue above `max_revenue` or a time more than
  `max_future_seconds` ahead is `implausible_value`. Both are dead-lettered, not counted.

The daily job's corrections (`stats_correction.v1`) arrive on the same stream, from a
topic keyed and partitioned like the events: each is added to its account's ledger once,
guarded by the same applied-offset mechanism (`selector.ingest.apply_correction`).
"""

from __future__ import annotations

import logging
import time as _time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from selector.ingest import Ledger, SourcedEvent, apply_correction, apply_events
from selector.stats import AccountStats
from stream.handlers.attribution import ArmOutcomes, ViewCache
from stream.handlers.catalog import AccountCatalog
from stream.handlers.dedup import GuardedDedup
from stream.handlers.profiles import ProfileFolder
from stream.handlers.stores import DedupStore
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.corrections import to_delta
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.reasons import Rejection

log = logging.getLogger(__name__)
CORRECTION = "stats_correction"  # the kind of the corrections topic in `kinds`
ORIGIN = {"click": "send_time", "conversion": "click_time"}  # the field of the cause's time


class IngestionService:
    def __init__(
        self,
        *,
        kinds: Mapping[str, str],
        catalog: Callable[[bytes], AccountCatalog | None],
        stats: Callable[[bytes], Ledger | None],
        dedup: DedupStore,
        metrics: Metrics,
        dead_letters_topic: str,
        max_message_bytes: int = 65536,
        max_revenue: float = 1_000_000.0,
        max_future_seconds: float = 86400.0,
        clock: Callable[[], float] = _time.time,
        profiles: ProfileFolder | None = None,
    ) -> None:
        self._kinds = kinds
        self._catalog = catalog
        self._stats = stats
        # never a batch counted without its dedup answers: the guard waits for them
        self._dedup = dedup if isinstance(dedup, GuardedDedup) else GuardedDedup(dedup, metrics)
        self._metrics = metrics
        self._dead_letters_topic = dead_letters_topic
        self._limits = codec.Limits(
            max_message_bytes, max_revenue=max_revenue, max_future_seconds=max_future_seconds
        )
        self._clock = clock
        self._profiles = profiles  # contact profiles fold the same counted events
        self._arms = ArmOutcomes(metrics, ViewCache(catalog))

    async def ingest(self, batch: Sequence[Incoming]) -> tuple[dict[bytes, Ledger], list[Outgoing]]:
        """New ledgers for the accounts that changed, and dead letters to publish."""
        now = self._clock()
        letters: list[Outgoing] = []
        valid: list[tuple[Incoming, Any, str]] = []
        corrections: list[Incoming] = []
        for message in batch:
            kind = self._kinds[message.topic]
            if kind == CORRECTION:
                corrections.append(message)
                continue
            event = self._decode(kind, message, now)
            if isinstance(event, codec.Rejected):
                self._metrics.events.labels(kind, "rejected").inc()
                letters.append(self._letter(message, event.reason, event.detail, now))
            else:
                valid.append((message, event, kind))
        flags = await self._duplicates(valid)
        updates = self._fold(valid, flags)
        if self._profiles is not None and valid:
            await self._profiles.fold(valid, flags)
        for message in corrections:
            letter = self._correct(message, updates, now)
            if letter is not None:
                letters.append(letter)
        return updates, letters

    def _fold(
        self, valid: list[tuple[Incoming, Any, str]], flags: list[bool]
    ) -> dict[bytes, Ledger]:
        """Each account's events applied to its ledger; only the ledgers that changed."""
        grouped: dict[bytes, list[SourcedEvent]] = defaultdict(list)
        decoded: dict[bytes, list[Any]] = defaultdict(list)
        for (message, event, kind), duplicate in zip(valid, flags, strict=True):
            decoded[event.account_id.encode()].append(event)
            grouped[event.account_id.encode()].append(
                SourcedEvent(
                    kind,  # type: ignore[arg-type]
                    event.creative_id,
                    event.time,
                    getattr(event, "revenue_micros", 0),
                    message.topic,
                    message.partition,
                    message.offset,
                    duplicate,
                    getattr(event, ORIGIN.get(kind, ""), None),
                )
            )
        updates: dict[bytes, Ledger] = {}
        for key, events in grouped.items():
            ledger = self._stats(key) or Ledger(
                AccountStats(half_life_seconds=self._half_life(key))
            )
            new, outcome = apply_events(ledger, events)
            self._arms.count(key, ledger, events, decoded[key])
            for (kind, name), count in outcome.items():
                self._metrics.events.labels(kind, name).inc(count)
            if new is not ledger:
                updates[key] = new
        return updates

    def _correct(
        self, message: Incoming, updates: dict[bytes, Ledger], now: float
    ) -> Outgoing | None:
        """Add one correction to its account's ledger (in `updates`), or dead-letter it."""
        decoded = codec.decode(
            "stats_correction", message.value, key=message.key, limits=self._limits
        )
        if isinstance(decoded, codec.Rejected):
            self._metrics.corrections.labels("rejected").inc()
            return self._letter(message, decoded.reason, decoded.detail, now)
        key = decoded.account_id.encode()
        ledger = updates.get(key) or self._stats(key)
        if ledger is None:
            ledger = Ledger(AccountStats(half_life_seconds=self._half_life(key)))
        delta = to_delta(decoded, ledger.stats.half_life_seconds)
        new, outcome = apply_correction(
            ledger, delta, message.topic, message.partition, message.offset
        )
        self._metrics.corrections.labels(outcome).inc()
        if new is not ledger:
            updates[key] = new
        return None

    def _decode(self, kind: str, message: Incoming, now: float) -> Any:
        event: Any = codec.decode(
            kind, message.value, key=message.key, limits=self._limits, now=now
        )
        if isinstance(event, codec.Rejected):
            return event
        creatives = self._creatives(event.account_id.encode())
        if creatives is None:
            return codec.Rejected("unknown_account", "the account has no catalog")
        if event.creative_id not in creatives:
            return codec.Rejected("unknown_creative", "the creative is not in the account")
        return event

    def _creatives(self, key: bytes) -> frozenset[str] | None:
        """The account's creative ids (from its shared catalog)."""
        catalog = self._catalog(key)
        return catalog.creative_ids if catalog is not None else None

    async def _duplicates(self, valid: list[tuple[Incoming, Any, str]]) -> list[bool]:
        if not valid:
            return []
        accounts = [e.account_id for _, e, _ in valid]
        kinds = [kind for _, _, kind in valid]
        ids = [e.event_id for _, e, _ in valid]
        positions = [f"{m.topic}:{m.partition}:{m.offset}" for m, _, _ in valid]
        return await self._dedup.duplicates(accounts, kinds, ids, positions)

    def _half_life(self, key: bytes) -> float | None:
        catalog = self._catalog(key)
        return catalog.half_life_seconds if catalog is not None else None

    def internal_error(self, message: Incoming, exc: Exception) -> Outgoing:
        """The dead letter for an event of a batch that failed on our side."""
        kind = self._kinds[message.topic]
        if kind == CORRECTION:
            self._metrics.corrections.labels("rejected").inc()
        else:
            self._metrics.events.labels(kind, "rejected").inc()
        return self._letter(message, "internal_error", type(exc).__name__, self._clock())

    def _letter(self, message: Incoming, reason: Rejection, detail: str, now: float) -> Outgoing:
        self._metrics.dead_letters.labels(reason, message.topic).inc()
        # positions and reasons only: details may quote ids, which stay out of INFO logs
        log.info("dead letter %s from %s", reason, message.position)
        body = codec.dead_letter(
            message.value,
            message.key,
            reason,
            detail,
            message.topic,
            message.partition,
            message.offset,
            now,
        )
        return Outgoing(self._dead_letters_topic, message.key or b"", body)
