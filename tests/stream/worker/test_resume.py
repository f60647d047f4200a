"""Where partitions resume after an assignment: the lowest applied offset + 1 of the
accounts in each, the answered-through record + 1 for requests."""

from __future__ import annotations

import asyncio
from types import MappingProxyType, SimpleNamespace
from typing import Any

from faust.types import TP

from selector.ingest import Ledger
from stream.adapters.producer import partition_for
from stream.wire.answered import Answered, dumps
from stream.wire.envelope import Incoming
from stream.worker import resume
from stream.worker.continuity import Continuity, Jump

TOPICS = ("sends", "clicks")


def keys_of(partition: int, n: int, count: int = 4) -> list[bytes]:
    found = []
    i = 0
    while len(found) < n:
        key = f"acct-{i}".encode()
        i += 1
        if partition_for(key, count) == partition:
            found.append(key)
    return found


def test_each_partition_resumes_after_its_least_advanced_account() -> None:
    a, b = keys_of(0, 2)
    (c,) = keys_of(1, 1)
    items = [
        (a, {"sends:0": 9, "clicks:0": 4}),
        (b, {"sends:0": 6}),  # no click applied yet: clicks from the start
        (c, {"sends:1": 2, "clicks:1": 2}),
    ]
    starts = resume.lowest(items, TOPICS, {0}, 4)
    assert starts == {("sends", 0): 7, ("clicks", 0): 0}
    assert resume.lowest(items, TOPICS, {0, 1, 2}, 4) == {
        ("sends", 0): 7,
        ("clicks", 0): 0,
        ("sends", 1): 3,
        ("clicks", 1): 3,
    }  # partition 2 has no account: it resumes from the commit


def test_stats_and_catalog_values_give_their_applied_offsets() -> None:
    (a,) = keys_of(2, 1)
    ledger = Ledger(applied=MappingProxyType({"sends:2": 5, "clicks:2": 8}))
    assert resume.stats_starts({a: ledger}, TOPICS, {2}, 4) == {("sends", 2): 6, ("clicks", 2): 9}
    catalog = {a: {"version": 3, "applied": {"sends:2": 1}}, b"other": None}
    assert resume.catalog_starts(catalog, TOPICS, {2}, 4) == {("sends", 2): 2, ("clicks", 2): 0}


def test_requests_resume_after_what_was_answered() -> None:
    table = {b"1": dumps(Answered(40, 44))}
    assert resume.request_starts(table, "requests", {0, 1}) == {("requests", 1): 45}


def test_a_written_ledger_is_stamped_with_how_far_its_partition_was_read() -> None:
    (a,) = keys_of(3, 1)
    continuity = Continuity(lambda t, p: None)
    continuity.resume_at({("sends", 3): 10, ("clicks", 3): 4})
    continuity.check([Incoming(b"", a, "sends", 3, o) for o in (10, 11, 12)])
    ledger = Ledger(applied=MappingProxyType({"sends:3": 11}))
    stamped = resume.stamp(ledger, a, (*TOPICS, "conversions"), 4, continuity)
    assert dict(stamped.applied) == {"sends:3": 12, "clicks:3": 3}


def test_quiet_accounts_are_stamped_when_they_hold_a_partition_back() -> None:
    busy, idle = keys_of(0, 2)
    continuity = Continuity(lambda t, p: None)
    continuity.resume_at({("sends", 0): 5, ("clicks", 0): 5})
    quiet = resume.Quiet(TOPICS, 4, lag=100)
    quiet.resumed({("sends", 0): 5, ("clicks", 0): 5})
    continuity.check([Incoming(b"", busy, "sends", 0, o) for o in range(5, 60)])
    assert not quiet.due(continuity)  # 59 read, floor 4: within the lag
    continuity.check([Incoming(b"", busy, "sends", 0, o) for o in range(60, 200)])
    assert quiet.due(continuity)
    table = {
        busy: Ledger(applied=MappingProxyType({"sends:0": 199, "clicks:0": 160})),
        idle: Ledger(applied=MappingProxyType({"sends:0": 4, "clicks:0": 4})),
        b"gone": None,
    }
    stamped = quiet.stamped(table, continuity)
    assert list(stamped) == [idle]  # the busy one is within half the lag everywhere
    assert dict(stamped[idle].applied) == {"sends:0": 199, "clicks:0": 4}
    assert not quiet.due(continuity)


def test_a_batch_handled_in_parts_is_stamped_below_what_is_still_to_apply() -> None:
    (a,) = keys_of(3, 1)
    continuity = Continuity(lambda t, p: None)
    rest = [Incoming(b"", a, "sends", 3, o) for o in (20, 21, 22)]
    continuity.check([Incoming(b"", a, "sends", 3, o) for o in range(10, 20)] + rest)
    ledger = Ledger(applied=MappingProxyType({"sends:3": 15}))
    below = resume.firsts([*rest, Incoming(b"", a, "sends", 3, 19)])
    assert below == {("sends", 3): 19}
    stamped = resume.stamp(ledger, a, TOPICS, 4, continuity, below)
    assert dict(stamped.applied) == {"sends:3": 18}


def test_what_a_failed_batch_left_unapplied_starts_at_its_jumps() -> None:
    batch = [Incoming(b"", b"a", "sends", 0, o) for o in (0, 1, 5)]
    batch += [Incoming(b"", b"a", "clicks", 1, 9)]
    jumps = [Jump("sends", 0, 2, 5), Jump("clicks", 1, 3, 9)]
    assert resume.unapplied(batch, jumps) == {("sends", 0): 0, ("clicks", 1): 3}


async def test_a_sweep_overtaken_by_a_rebalance_leaves_the_new_assignment_alone() -> None:
    committed = {TP("sends", 0): 20}
    consumer = SimpleNamespace(_committed_offset=committed)
    app: Any = SimpleNamespace(rebalancing=False, rebalancing_count=1, consumer=consumer)
    continuity = Continuity(lambda t, p: 20)
    continuity.resume_at({("sends", 0): 10})

    async def read(jump: Jump) -> list[Incoming]:
        app.rebalancing_count += 1  # a rebalance came and went while reading
        continuity.resume_at({("sends", 0): 15})
        return [Incoming(b"", b"a", "sends", 0, o) for o in range(jump.expected, jump.got)]

    handled: list[list[Incoming]] = []

    async def handle(token: int, batch: list[Incoming]) -> None:
        handled.append(batch)

    await resume.sweep(app, continuity, asyncio.Lock(), handle, read)
    assert handled == [] and continuity.through("sends", 0) == 14
