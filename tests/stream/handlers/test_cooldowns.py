"""Cooldowns through an outage of their store: answered from the worker's own bounded
record, marked degraded, never waiting on a dead store, and replayed when it returns."""

from __future__ import annotations

import asyncio

from stream.handlers.cooldowns import GuardedCooldowns, RecentSends, merged
from stream.ops.metrics import Metrics
from tests.stream.handlers.flaky_stores import FlakyCooldowns, Outage


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def guarded(clock: Clock, **options: float) -> tuple[GuardedCooldowns, FlakyCooldowns, Metrics]:
    metrics = Metrics()
    store = FlakyCooldowns(Outage())
    guard = GuardedCooldowns(store, metrics, timeout=0.05, clock=clock, **options)  # type: ignore[arg-type]
    return guard, store, metrics


def value(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"creative_selection_{name}") or 0.0


def test_the_record_is_bounded_in_contacts_and_creatives_and_expires() -> None:
    clock = Clock()
    recent = RecentSends(max_contacts=3, max_creatives=2, clock=clock)
    recent.add([("a", f"x{i}", "c1", 990.0 + i, 60.0) for i in range(5)])
    assert len(recent) == 3
    assert recent.lookup([("a", "x0"), ("a", "x4")]) == [{}, {"c1": 994.0}]
    recent.add([("a", "x4", c, 995.0 + i, 60.0) for i, c in enumerate(["c2", "c3"])])
    assert recent.lookup([("a", "x4")]) == [{"c2": 995.0, "c3": 996.0}]  # c1 was oldest
    recent.add([("a", "y", "c1", 999.0, 10.0), ("a", "z", "c1", 999.0, 0.0)])
    clock.now = 1011.0
    assert recent.lookup([("a", "y"), ("a", "z")]) == [{}, {}]  # expired; no cooldown
    assert recent.lookup([("a", "x4")]) == [{"c2": 995.0, "c3": 996.0}]


def test_merging_keeps_the_later_send_of_each_creative() -> None:
    remote = [{"c1": 5.0, "c2": 9.0}, {}]
    local = [{"c1": 7.0}, {"c3": 1.0}]
    assert merged(remote, local) == [{"c1": 7.0, "c2": 9.0}, {"c3": 1.0}]


async def test_a_store_that_refuses_makes_the_batch_degraded_not_failed() -> None:
    clock = Clock()
    guard, store, metrics = guarded(clock)
    await guard.record([("a", "x", "c1", 999.0, 600.0)])
    store.outage.mode = "down"
    read = await guard.read([("a", "x"), ("a", "y")])
    assert read.degraded and read.last_sent == [{"c1": 999.0}, {}]
    assert guard.state == "degraded" and value(metrics, "cooldowns_degraded") == 1
    assert value(metrics, "cooldown_store_failures_total") == 1


async def test_a_frozen_store_costs_one_timeout_then_is_not_asked() -> None:
    clock = Clock()
    guard, store, _ = guarded(clock)
    store.outage.mode = "frozen"
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await guard.read([("a", "x")])
    assert first.degraded and loop.time() - started < 1.0
    calls = store.outage.calls
    for _ in range(20):
        assert (await guard.read([("a", "x")])).degraded
        await guard.record([("a", "x", "c1", clock.now, 600.0)])
    assert store.outage.calls == calls  # no retry due yet: nothing waited on the store
    assert guard.pending == 20


async def test_writes_made_meanwhile_are_replayed_with_what_is_left_of_their_cooldown() -> None:
    clock = Clock()
    guard, store, metrics = guarded(clock, retry_seconds=1.0)
    store.outage.mode = "down"
    assert (await guard.read([("a", "x")])).degraded
    await guard.record([("a", "x", "c1", 1000.0, 600.0), ("a", "y", "c2", 1000.0, 5.0)])
    clock.now = 1010.0  # y's cooldown has ended by now
    assert not await guard.recover()
    assert guard.state == "degraded" and guard.pending == 2
    store.outage.mode = "up"
    assert await guard.recover()
    assert guard.state == "exact" and guard.pending == 0
    assert store.recorded == [("a", "x", "c1", 1000.0, 590.0)]
    assert value(metrics, "cooldown_writes_replayed_total") == 2
    assert value(metrics, "cooldowns_degraded") == 0
    read = await guard.read([("a", "x")])
    assert not read.degraded and read.last_sent == [{"c1": 1000.0}]


async def test_recovery_is_attempted_in_the_background_once_due() -> None:
    clock = Clock()
    guard, store, _ = guarded(clock, retry_seconds=1.0)
    store.outage.mode = "down"
    await guard.read([("a", "x")])
    await guard.record([("a", "x", "c1", 1000.0, 600.0)])
    store.outage.mode = "up"
    clock.now = 1002.0
    assert (await guard.read([("a", "x")])).degraded  # this batch does not wait for it
    for _ in range(10):
        await asyncio.sleep(0)
    assert guard.state == "exact" and store.recorded == [("a", "x", "c1", 1000.0, 598.0)]


async def test_a_store_back_empty_still_keeps_this_workers_cooldowns() -> None:
    clock = Clock()
    guard, store, _ = guarded(clock)
    await guard.record([("a", "x", "c1", 999.0, 600.0)])
    store.wipe()
    read = await guard.read([("a", "x")])
    assert not read.degraded and read.last_sent == [{"c1": 999.0}]


async def test_kept_writes_are_bounded_and_the_dropped_ones_counted() -> None:
    clock = Clock()
    guard, store, metrics = guarded(clock, max_pending=3)
    store.outage.mode = "down"
    await guard.record([("a", f"x{i}", "c1", 1000.0, 600.0) for i in range(5)])
    assert guard.pending == 3
    assert value(metrics, "cooldown_writes_dropped_total") == 2
    store.outage.mode = "up"
    assert await guard.recover()
    assert [s[1] for s in store.recorded] == ["x2", "x3", "x4"]  # the oldest went first
