"""The stream benchmark's waiting: the events phase ends when the slowest agent is done."""

from __future__ import annotations

import asyncio

import pytest

from bench import stream_measure
from bench.stream_measure import wait_all


class _Bar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


class _Worker:
    """Two counters that move on each poll: the first fast, the second at half its pace."""

    proc = None

    def __init__(self, steps: dict[str, list[float]]) -> None:
        self.steps = {name: iter(values) for name, values in steps.items()}
        self.last: dict[str, float] = {}

    def metric(self, name: str) -> float:
        self.last[name] = next(self.steps[name], self.last.get(name, 0.0))
        return self.last[name]


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_measure, "POLL_SECONDS", 0.0)


def test_done_when_the_slowest_counter_is_done() -> None:
    worker = _Worker({"stats": [10, 60, 110, 110, 110], "learned": [5, 20, 30, 40, 50]})
    bar = _Bar()
    combined, (stats, learned) = asyncio.run(
        wait_all(worker, [("stats", 10, 100), ("learned", 0, 50)], bar)  # type: ignore[arg-type]
    )
    assert [d for _, d in stats] == [0, 50, 100, 100, 100]
    assert [d for _, d in learned] == [5, 20, 30, 40, 50]
    # on the first counter's scale: the least-done fraction of each poll
    assert [d for _, d in combined] == [0, 40, 60, 80, 100]
    assert bar.n == 100


def test_a_counter_that_stops_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_measure, "STALL_SECONDS", 0.05)
    worker = _Worker({"stats": [100], "learned": [3]})
    with pytest.raises(TimeoutError, match="learned 3/50"):
        asyncio.run(wait_all(worker, [("stats", 0, 100), ("learned", 0, 50)], _Bar()))  # type: ignore[arg-type]
