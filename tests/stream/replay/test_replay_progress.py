"""The replay's progress without Kafka: pacing on an injected clock, settling in input
order, atomic checkpoints, the rejects file, and a publisher that fails after N acks and
is resumed."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.pacing import RateLimiter
from stream.replay import progress as p
from stream.replay.inputs import FileSource, Item
from stream.replay.run import Options, Publisher, survey
from tests.stream.replay.test_replay_inputs import LINES, NOW, SETTINGS, event, write_lines


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_limiter_spaces_events_and_caps_catching_up() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock, burst_seconds=0.5)
    assert [limiter.delay() for _ in range(4)] == pytest.approx([0, 0.1, 0.2, 0.3])
    clock.now += 0.4  # on schedule again
    assert limiter.delay() == pytest.approx(0.0)
    clock.now += 10.0  # a long stall: at most 0.5 s of events go at once
    assert sum(limiter.delay() == 0 for _ in range(20)) == 6
    assert RateLimiter(None, clock=clock).delay() == 0.0
    with pytest.raises(ValueError):
        RateLimiter(-1)


async def test_the_limiter_sleeps_for_the_rate_on_average() -> None:
    clock = Clock()
    limiter = RateLimiter(200, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        await limiter.wait()
    assert clock.now - 100.0 == pytest.approx(999 / 200)


async def test_items_settle_in_input_order_and_stop_at_a_failed_delivery() -> None:
    loop = asyncio.get_running_loop()
    tracker = p.AckTracker({"line": 1})
    first, second, third = (loop.create_future() for _ in range(3))
    tracker.add("line", 1, "published:send", first)
    tracker.add("line", 2, "rejected:wrong_type", payload="x")
    tracker.add("line", 4, "published:click", second)
    tracker.add("line", 5, "published:click", third)
    second.set_result(None)  # acknowledged before the first
    assert tracker.settle() == [] and tracker.positions == {"line": 1}
    first.set_result(None)
    settled = tracker.settle()
    assert [k for k, _ in settled] == ["published:send", "rejected:wrong_type", "published:click"]
    assert tracker.positions == {"line": 5} and tracker.in_flight == 1
    third.set_exception(OSError("broker gone"))
    assert tracker.settle() == [] and isinstance(tracker.failed, OSError)
    assert tracker.positions == {"line": 5}


def checkpoint(**changes: Any) -> p.Checkpoint:
    base = p.Checkpoint({"file": "/x", "size": 3}, {"bootstrap": "b", "prefix": "t."})
    return p.Checkpoint(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def test_a_checkpoint_round_trips_and_refuses_another_replay(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    assert p.load(path) is None
    state = checkpoint(positions={"p0": 12}, tally={"published:send": 3}, rejects_bytes=9)
    p.save(path, state)
    assert p.load(path) == state
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed
    assert state.mismatch(state.source, state.target) is None
    assert "another input" in (state.mismatch({"file": "/y"}, state.target) or "")
    assert "another target" in (state.mismatch(state.source, {"prefix": "u."}) or "")
    for text in ("{", '{"version": 2}', '{"version": 1, "what": 1}'):
        path.write_text(text)
        with pytest.raises(ValueError, match="replay checkpoint"):
            p.load(path)


def test_checkpoints_are_saved_every_interval(tmp_path: Path) -> None:
    clock = Clock()
    saver = p.Checkpointer(tmp_path / "cp.json", checkpoint(), every=0.5, clock=clock)
    assert not saver.due()
    clock.now += 0.5
    assert saver.due()
    saver.save({"line": 8}, Counter({"published:send": 7}), 0)
    assert not saver.due() and p.load(tmp_path / "cp.json").positions == {"line": 8}  # type: ignore[union-attr]


def test_the_rejects_file_is_cut_back_to_the_checkpoint_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    first = p.RejectsFile(path)
    first.write("line 3", "malformed_json", "unexpected", b"{broken")
    kept = first.sync()
    first.write("line 9", "wrong_type", "time", b'{"time": "x"}')
    first.close()
    resumed = p.RejectsFile(path, kept)
    resumed.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [
        {"where": "line 3", "reason": "malformed_json", "detail": "unexpected", "input": "{broken"}
    ]


async def test_the_survey_counts_kinds_and_reasons(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "e.jsonl", [*LINES, event("send", 2, account_id="beta")])
    seen: list[str] = []
    result = await survey(FileSource(path, SETTINGS, NOW), on_reject=lambda i: seen.append(i.where))
    assert result.total == 7 and result.accounts == {"acme", "beta"}
    assert p.by_outcome(result.tally, "published") == {"conversion": 1, "send": 2}
    assert p.by_outcome(result.tally, "rejected") == {
        "malformed_json": 1,
        "not_an_object": 1,
        "schema_mismatch": 1,
        "wrong_type": 1,
    }
    assert seen == ["line 3", "line 4", "line 5", "line 6"]


class Broker:
    """Acknowledges sends at once, and fails the one after `fail_after`."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.stored: list[bytes] = []
        self.fail_after = fail_after

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_after is not None and len(self.stored) >= self.fail_after:
            delivery.set_exception(OSError("broker gone"))
        else:
            self.stored.append(value)
            delivery.set_result(None)
        return delivery


async def publish(
    source: FileSource, tmp_path: Path, broker: Broker, start: p.Checkpoint
) -> Publisher:
    saver = p.Checkpointer(tmp_path / "cp.json", start, every=0.0)
    publisher = Publisher(None, RateLimiter(None), saver, None, io.StringIO(), Options(window=4))
    publisher.tally.update(start.tally)
    items: AsyncGenerator[Item, None] = source.items(start.positions)
    await publisher.run(items, broker.send, start.positions)
    return publisher


async def test_a_run_that_fails_after_n_acks_resumes_with_the_rest_exactly_once(
    tmp_path: Path,
) -> None:
    events = [event("send", i) for i in range(30)]
    source = FileSource(write_lines(tmp_path / "e.jsonl", events), SETTINGS, NOW)
    first = Broker(fail_after=11)
    with pytest.raises(OSError, match="broker gone"):
        await publish(source, tmp_path, first, checkpoint())
    saved = p.load(tmp_path / "cp.json")
    assert saved is not None and not saved.done
    assert saved.positions == {"line": 12} and saved.tally == {"published:send": 11}

    second = Broker()
    await publish(source, tmp_path, second, saved)
    final = p.load(tmp_path / "cp.json")
    assert final is not None and final.done and final.tally == {"published:send": 30}
    replayed = [json.loads(v)["event_id"] for v in first.stored + second.stored]
    assert replayed == [e["event_id"] for e in events]
