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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from selector.ingest import Ledger, Row, apply_correction, apply_rows
from selector.stats import AccountStats
from stream.handlers.attribution import ArmOutcomes, ViewCache
from stream.handlers.batching import Part
from stream.handlers.catalog import AccountCatalog
from stream.handlers.dedup import GuardedDedup
from stream.handlers.profiles import ProfileFolder
from stream.handlers.stores import DedupStore
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.batches import open_events
from stream.wire.corrections import to_delta
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.reasons import Rejection

log = logging.getLogger(__name__)
CORRECTION = "stats_correction"  # the kind of the corrections topic in `kinds`
ORIGIN = {"click": "send_time", "conversion": "click_time"}  # the field of the cause's time
Valid = tuple[Incoming, Any, str, int]  # (message, event, kind, index in its batch)
ROUND = 10_000  # events per dedup round trip
MISSING = object()


def origin_time(kind: str, event: Any) -> float | None:
    """The time of the event's cause, when it carries it (`ORIGIN`)."""
    if kind == "click":
        return event.send_time  # type: ignore[no-any-return]
    if kind == "conversion":
        return event.click_time  # type: ignore[no-any-return]
    return None


def event_position(message: Incoming, index: int = 0) -> str:
    """Where an event was read, as the dedup store records it: `topic:partition:offset`,
    with `/index` for the items after the first of a batch message."""
    return message.position if index == 0 else f"{message.position}/{index}"


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
        valid: list[Valid] = []
        corrections: list[Incoming] = []
        for message in batch:
            kind = self._kinds[message.topic]
            if kind == CORRECTION:
                corrections.append(message)
            else:
                valid += self._open(kind, message, now, letters)
        flags = await self._duplicates(valid)
        updates = self._fold(valid, flags)
        if self._profiles is not None and valid:
            await self._profiles.fold(valid, flags)
        for message in corrections:
            letter = self._correct(message, updates, now)
            if letter is not None:
                letters.append(letter)
        return updates, letters

    def _open(
        self, kind: str, message: Incoming, now: float, letters: list[Outgoing]
    ) -> list[Valid]:
        """The valid events of a message (single, or an `event_batch.v1`); dead letters
        for the others (each item of a batch its own) go to `letters`."""
        opened = open_events(kind, message.value, key=message.key, limits=self._limits, now=now)
        if isinstance(opened, codec.Rejected):
            self._metrics.events.labels(kind, "rejected").inc()
            letters.append(self._letter(message, opened.reason, opened.detail, now))
            return []
        valid: list[Valid] = []
        account = opened.account_id  # one catalog look-up for a batch: one account
        creatives = self._creatives(account.encode()) if account is not None else None
        for item in opened.items:
            event = self._in_catalog(item.value, creatives if account is not None else MISSING)
            if not isinstance(event, codec.Rejected):
                valid.append((message, event, kind, item.place))
                continue
            self._metrics.events.labels(kind, "rejected").inc()
            source = Part(message, item, "events") if opened.batched else message
            letters.append(self._letter(source, event.reason, event.detail, now))
        return valid

    def _fold(self, valid: list[Valid], flags: list[bool]) -> dict[bytes, Ledger]:
        """Each account's events applied to its ledger; only the ledgers that changed."""
        grouped: dict[str, list[Row]] = {}
        decoded: dict[str, list[Any]] = {}
        for (message, event, kind, index), duplicate in zip(valid, flags, strict=True):
            row: Row = (
                kind,  # type: ignore[assignment]
                event.creative_id,
                event.time,
                event.revenue_micros if kind == "conversion" else 0,
                message.topic,
                message.partition,
                message.offset,
                duplicate,
                origin_time(kind, event),
                index,
            )
            account = event.account_id
            rows = grouped.get(account)
            if rows is None:
                grouped[account], decoded[account] = [row], [event]
            else:
                rows.append(row)
                decoded[account].append(event)
        updates: dict[bytes, Ledger] = {}
        for account, rows in grouped.items():
            key = account.encode()
            ledger = self._stats(key) or Ledger(
                AccountStats(half_life_seconds=self._half_life(key))
            )
            new, outcome, applied = apply_rows(ledger, rows)
            events = decoded[account]
            self._arms.count_applied(key, [e for e, ok in zip(events, applied, strict=True) if ok])
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

    def _in_catalog(self, event: Any, creatives: Any = MISSING) -> Any:
        """The decoded event, or why its account or creative cannot take it; `creatives`:
        its account's, when already looked up."""
        if isinstance(event, codec.Rejected):
            return event
        if creatives is MISSING:
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

    async def _duplicates(self, valid: list[Valid]) -> list[bool]:
        """The dedup store's answers, in round trips of about `ROUND` events that never
        split a message (a batch of batch messages can hold hundreds of thousands)."""
        flags: list[bool] = []
        start = 0
        while start < len(valid):
            end = min(len(valid), start + ROUND)
            while end < len(valid) and valid[end][0] is valid[end - 1][0]:
                end += 1
            part = valid[start:end]
            accounts = [e.account_id for _, e, _, _ in part]
            kinds = [kind for _, _, kind, _ in part]
            ids = [e.event_id for _, e, _, _ in part]
            positions = [event_position(m, i) for m, _, _, i in part]
            flags += await self._dedup.duplicates(accounts, kinds, ids, positions)
            start = end
        return flags

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

    def _letter(
        self, message: Incoming | Part, reason: Rejection, detail: str, now: float
    ) -> Outgoing:
        self._metrics.dead_letters.labels(reason, message.topic).inc()
        if isinstance(message, Part):
            detail = message.where(detail)
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
