"""A replay: survey the input, index what the target already holds, then publish the rest
with broker acks, at a rate, saving checkpoints as the acknowledged prefix grows.

The survey (the whole of a dry run) reads every item once: counts per kind and per
rejection reason, the accounts to index, and the total for the progress bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from stream.adapters.pacing import RateLimiter
from stream.adapters.producer import open_producer
from stream.adapters.topic_specs import describe_topics
from stream.replay import progress as p
from stream.replay.existing import SeenIndex, scan_existing
from stream.replay.inputs import OUTCOME_TOPICS, Item, Source
from stream.settings import Settings

Send = Callable[[str, bytes, bytes | None], Awaitable[asyncio.Future[Any]]]
MAX_REPORTED = 50


class ReplayError(Exception):
    """A replay that cannot start: bad checkpoint, missing topics."""


@dataclass(frozen=True, slots=True)
class Options:
    rate: float | None = None
    skip_existing: bool = True
    checkpoint: Path | None = None
    rejects: Path | None = None
    fresh: bool = False  # ignore (overwrite) an existing checkpoint
    resume: bool = False  # require an existing checkpoint
    window: int = 10_000  # deliveries in flight at most
    checkpoint_every: float = 0.5


@dataclass(slots=True)
class Survey:
    total: int = 0
    accounts: set[str] = field(default_factory=set)
    tally: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Result:
    tally: Counter[str]
    resumed: int = 0  # items settled by earlier runs
    already_done: bool = False
    indexed: int | None = None  # ids in the index of existing events; None: no index
    checkpoint: Path | None = None


def classify(item: Item) -> str:
    """The tally key an item gets unless it is found present: published:<kind>,
    rejected:<reason> or ignored:not_an_outcome."""
    if item.ignored:
        return p.tally_key("ignored", "not_an_outcome")
    if item.line.event is None:
        return p.tally_key("rejected", item.line.reason or "invalid_value")
    return p.tally_key("published", item.line.event.kind)


def why(item: Item) -> tuple[str, str]:
    """(reason, detail) of a rejected item."""
    reason, error = item.line.reason or "invalid_value", item.line.error or ""
    return reason, error.removeprefix(f"{reason}: ")


async def survey(source: Source, on_reject: Callable[[Item], None] | None = None) -> Survey:
    """Every item checked, nothing published; `on_reject` sees each rejected item."""
    result = Survey()
    async for item in source.items({}):
        result.total += 1
        key = classify(item)
        result.tally[key] += 1
        if item.line.event is not None:
            result.accounts.add(item.line.event.account_id)
        elif on_reject is not None and key.startswith("rejected:"):
            on_reject(item)
    return result


async def replay(
    source: Source,
    settings: Settings,
    options: Options,
    *,
    err: IO[str] | None = None,
    wrap_send: Callable[[Send], Send] | None = None,
) -> Result:
    """Publish what the target does not hold yet; resumable from `options.checkpoint`."""
    err = err or sys.stderr
    start = _starting_point(source, settings, options)
    resumed = sum(start.tally.values())
    if start.done:
        return Result(Counter(start.tally), resumed, True, None, options.checkpoint)
    await _check_targets(settings)
    surveyed = await survey(source)
    index = await _index(settings, surveyed.accounts, err) if options.skip_existing else None
    rejects = p.RejectsFile(options.rejects, start.rejects_bytes) if options.rejects else None
    checkpointer = p.Checkpointer(options.checkpoint, start, every=options.checkpoint_every)
    publisher = Publisher(index, RateLimiter(options.rate), checkpointer, rejects, err, options)
    publisher.tally.update(start.tally)
    try:
        with tqdm(total=surveyed.total, initial=resumed, unit="event", file=err) as bar:
            publisher.bar = bar
            await _publish(source, settings, start.positions, publisher, wrap_send)
    finally:
        if rejects is not None:
            rejects.close()
    size = None if index is None else len(index)
    return Result(publisher.tally, resumed, False, size, options.checkpoint)


async def _index(settings: Settings, accounts: set[str], err: IO[str]) -> SeenIndex:
    began = time.monotonic()
    index = await scan_existing(settings, accounts)
    took = time.monotonic() - began
    print(
        f"indexed {len(index)} events already in the target topics "
        f"({len(accounts)} accounts) in {took:.1f} s",
        file=err,
    )
    return index


async def _publish(
    source: Source,
    settings: Settings,
    start: dict[str, int],
    publisher: Publisher,
    wrap_send: Callable[[Send], Send] | None,
) -> None:
    async with open_producer(settings) as producer:

        async def send(topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
            delivery: asyncio.Future[Any] = await producer.send(topic, value, key=key)
            return delivery

        await publisher.run(source.items(start), wrap_send(send) if wrap_send else send, start)


def target_identity(settings: Settings) -> dict[str, Any]:
    return {"bootstrap": settings.kafka_bootstrap, "prefix": settings.topic_prefix}


def _starting_point(source: Source, settings: Settings, options: Options) -> p.Checkpoint:
    fresh = p.Checkpoint(source.identity(), target_identity(settings))
    if options.checkpoint is None:
        if options.resume:
            raise ReplayError("--resume needs --checkpoint PATH")
        return fresh
    try:
        found = None if options.fresh else p.load(options.checkpoint)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    if found is None:
        if options.resume:
            raise ReplayError(f"--resume: no checkpoint at {options.checkpoint}")
        return fresh
    why = found.mismatch(fresh.source, fresh.target)
    if why:
        raise ReplayError(f"cannot resume from {options.checkpoint}: {why}; use --fresh")
    return found


async def _check_targets(settings: Settings) -> None:
    topics = [settings.topic(name) for name in OUTCOME_TOPICS]
    missing = sorted(set(topics) - set(await describe_topics(settings, topics)))
    if missing:
        raise ReplayError(f"no topic {', '.join(missing)}; see creative-select topics create")


class Publisher:
    """Publishes items, settles them in order, reports rejects, saves checkpoints."""

    def __init__(
        self,
        index: SeenIndex | None,
        limiter: RateLimiter,
        checkpointer: p.Checkpointer,
        rejects: p.RejectsFile | None,
        err: IO[str],
        options: Options,
    ) -> None:
        self.index, self.limiter, self.checkpointer = index, limiter, checkpointer
        self.rejects, self.err, self.window = rejects, err, options.window
        self.tally: Counter[str] = Counter()
        self.bar: Any = None
        self.reported = 0

    async def run(
        self, items: AsyncGenerator[Item, None], send: Send, start: dict[str, int]
    ) -> None:
        self.tracker = p.AckTracker(start)
        done = False
        try:
            async with contextlib.aclosing(items):
                async for item in items:
                    await self._take(item, send)
                    self._settle()
                    while self.tracker.in_flight >= self.window:
                        await self.tracker.wait_oldest()
                        self._settle()
            await self.tracker.wait_all(timeout=None)
            self._settle()
            done = True
        finally:
            await self._save(done)

    async def _take(self, item: Item, send: Send) -> None:
        key, event, line = classify(item), item.line.event, item.line
        if event is None:
            self.tracker.add(item.part, item.position, key, payload=item)
            return
        account, kind, event_id = event.account_id, event.kind, event.event_id
        if self.index is not None and self.index.seen(account, kind, event_id, item.exempt):
            self.tracker.add(item.part, item.position, p.tally_key("present", event.kind))
            return
        await self.limiter.wait()
        assert line.topic is not None
        delivery = await send(line.topic, line.value, line.key)
        if self.index is not None:
            self.index.add(account, kind, event_id)
        self.tracker.add(item.part, item.position, key, delivery)

    def _settle(self) -> None:
        settled = self.tracker.settle()
        for key, item in settled:
            self.tally[key] += 1
            if key.startswith("rejected:"):
                self._reject(item)
        if settled and self.bar is not None:
            self.bar.update(len(settled))
        if self.checkpointer.due():
            self._checkpoint()
        if self.tracker.failed is not None:
            raise self.tracker.failed

    def _reject(self, item: Item) -> None:
        error = item.line.error or ""
        if self.reported < MAX_REPORTED:
            tqdm.write(f"{item.where}: {error}", file=self.err)
        self.reported += 1
        if self.rejects is not None:
            self.rejects.write(item.where, *why(item), item.raw)

    def _checkpoint(self, done: bool = False) -> None:
        size = self.rejects.sync() if self.rejects is not None else 0
        self.checkpointer.save(self.tracker.positions, self.tally, size, done)
        if self.bar is not None:
            self.bar.set_postfix(p.outcome_totals(self.tally), refresh=False)

    async def _save(self, done: bool) -> None:
        """Save what is acknowledged; after a failure or an interrupt, first give the
        deliveries in flight a moment to be acknowledged."""
        if not done:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.tracker.wait_all(timeout=10.0)
            with contextlib.suppress(Exception):
                self._settle()
        self._checkpoint(done)
