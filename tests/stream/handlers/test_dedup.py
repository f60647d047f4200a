"""Dedup that never lets a duplicate count: it waits for a store that does not answer,
and refills a store that came back empty before answering again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from stream.handlers.dedup import GuardedDedup
from stream.ops.metrics import Metrics
from tests.stream.handlers.flaky_stores import FlakyDedup, ListHistory, Outage

CREATIVES = {b"acme": frozenset({"c1", "c2"})}
KINDS = {"sends": "send", "clicks": "click"}


def guarded(
    store: FlakyDedup, history: ListHistory | None = None, sleeps: list[float] | None = None
) -> tuple[GuardedDedup, Metrics]:
    metrics = Metrics()

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        await asyncio.sleep(0)

    guard = GuardedDedup(
        store,
        metrics,
        kinds=KINDS,
        creatives=CREATIVES.get,
        history=history,
        ttl_seconds=1000.0,
        timeout=0.05,
        sleep=sleep,
    )
    return guard, metrics


def batch(*events: tuple[str, int]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(event_id, offset) pairs of sends on sends:0."""
    n = len(events)
    return ["acme"] * n, ["send"] * n, [e for e, _ in events], [f"sends:0:{o}" for _, o in events]


def gauge(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"creative_selection_{name}", labels) or 0.0


async def ask(guard: GuardedDedup, args: Sequence[list[str]]) -> list[bool]:
    return await guard.duplicates(*args)


async def test_a_store_that_answers_is_asked_once() -> None:
    store = FlakyDedup(Outage(), marked=False)
    guard, _ = guarded(store)
    assert await ask(guard, batch(("e1", 0), ("e1", 1))) == [False, True]
    assert await ask(guard, batch(("e1", 0))) == [False]  # a re-delivery, not a duplicate
    assert store.outage.calls == 2 and guard.state == "ok"


@pytest.mark.parametrize("mode", ["down", "frozen"])
async def test_a_batch_waits_until_the_store_answers(mode: str) -> None:
    store = FlakyDedup(Outage(), marked=False)
    sleeps: list[float] = []
    guard, metrics = guarded(store, sleeps=sleeps)
    await ask(guard, batch(("e1", 0)))
    store.outage.mode = mode  # type: ignore[assignment]
    waiting = asyncio.create_task(ask(guard, batch(("e1", 5), ("e2", 6))))
    while len(sleeps) < 3:
        await asyncio.sleep(0.01)
    assert not waiting.done() and guard.state == "waiting"
    assert gauge(metrics, "dedup_waiting") == 1
    assert gauge(metrics, "dedup_retries_total") >= 3
    store.outage.mode = "up"
    assert await waiting == [True, False]  # the duplicate is found, never counted
    assert guard.state == "ok" and gauge(metrics, "dedup_waiting") == 0
    assert sleeps[0] == guard.retry_seconds


HISTORY = {
    ("sends", 0): [
        (0, "acme", "e1", "c1", 10.0),
        (1, "acme", "e2", "c1", 10.0),
        (2, "acme", "e1", "c2", 9.0),  # an upstream duplicate of offset 0
        (3, "acme", "e3", "ghost", 9.0),  # not in the catalog: never registered live
        (4, "other", "e4", "c1", 9.0),  # an account without a catalog
        (5, "acme", "e5", "c1", 2000.0),  # older than the dedup TTL
        (6, "acme", "e6", "c2", 5.0),
        (7, "acme", "e7", "c2", 5.0),
    ]
}


async def test_a_store_back_empty_is_refilled_from_the_topic_before_it_answers() -> None:
    store = FlakyDedup(Outage())
    history = ListHistory(HISTORY)
    guard, metrics = guarded(store, history)
    # offsets 0-6 were counted before the restart; the batch starts at 7
    answer = await ask(guard, batch(("e1", 7), ("e6", 8), ("e3", 9), ("e8", 10), ("e5", 11)))
    assert answer == [True, True, False, False, False]
    assert history.asked == [({"sends:0": 7}, 1000.0)]
    assert store.marks == {"sends:0"}
    assert store.seen[("acme", "send", "e1")] == "sends:0:0"  # the first position wins
    assert store.seen[("acme", "send", "e3")] == "sends:0:9"  # not registered by the refill
    assert ("other", "send", "e4") not in store.seen
    assert store.ttls[("acme", "send", "e2")] == 990.0  # what is left of its TTL
    assert gauge(metrics, "dedup_refills_total", outcome="completed") == 1
    assert gauge(metrics, "dedup_refill_records_total") == 4  # e1 (twice), e2, e6
    assert guard.state == "ok"


async def test_what_the_lost_batch_wrote_does_not_hide_an_earlier_position() -> None:
    store = FlakyDedup(Outage())
    guard, _ = guarded(store, ListHistory(HISTORY))
    # the first round trip wrote e1 at offset 7 into the empty store before its marks
    # were found missing; the refill must not keep that position
    assert await ask(guard, batch(("e1", 7))) == [True]
    assert store.seen[("acme", "send", "e1")] == "sends:0:0"


async def test_a_restart_during_the_refill_is_not_marked_and_is_refilled_again() -> None:
    store = FlakyDedup(Outage())
    history = ListHistory(HISTORY)
    history.during = [None, store.wipe]  # the store loses everything after one chunk
    sleeps: list[float] = []
    guard, metrics = guarded(store, history, sleeps)
    assert await ask(guard, batch(("e1", 7), ("e6", 8))) == [True, True]
    assert len(history.asked) == 2 and store.marks == {"sends:0"}
    assert gauge(metrics, "dedup_refills_total", outcome="failed") == 1
    assert store.seen[("acme", "send", "e2")] == "sends:0:1"


async def test_a_refill_that_cannot_write_waits_like_an_outage() -> None:
    store = FlakyDedup(Outage())
    history = ListHistory(HISTORY)
    history.during = [lambda: setattr(store.outage, "mode", "down")]
    sleeps: list[float] = []
    guard, _ = guarded(store, history, sleeps)
    task = asyncio.create_task(ask(guard, batch(("e1", 7))))
    while len(sleeps) < 2:
        await asyncio.sleep(0.01)
    assert guard.state == "waiting" and not task.done()
    store.outage.mode = "up"
    assert await task == [True]


async def test_lost_records_without_a_history_wait_rather_than_answer() -> None:
    store = FlakyDedup(Outage())
    sleeps: list[float] = []
    guard, _ = guarded(store, None, sleeps)
    task = asyncio.create_task(ask(guard, batch(("e1", 7))))
    while len(sleeps) < 2:
        await asyncio.sleep(0.01)
    assert not task.done() and guard.state == "waiting"
    task.cancel()


async def test_every_lost_partition_of_a_batch_is_refilled_in_one_read() -> None:
    store = FlakyDedup(Outage())
    store.marks = {"clicks:1"}
    history = ListHistory({**HISTORY, ("clicks", 2): [(0, "acme", "e1", "c1", 1.0)]})
    guard, metrics = guarded(store, history)
    args = (
        ["acme"] * 4,
        ["send", "click", "click", "send"],
        ["e1", "e1", "k1", "e9"],
        ["sends:0:8", "clicks:2:4", "clicks:1:3", "sends:0:7"],
    )
    assert await guard.duplicates(*args) == [True, True, False, False]
    assert history.asked == [({"clicks:2": 4, "sends:0": 7}, 1000.0)]
    assert store.marks == {"clicks:1", "clicks:2", "sends:0"}
    assert gauge(metrics, "dedup_refills_total", outcome="completed") == 2
