"""`within` keeps a cancellation that arrives as the awaited call finishes."""

from __future__ import annotations

import asyncio

import pytest

from stream.handlers.deadline import within


async def test_a_cancellation_arriving_with_the_result_is_kept() -> None:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[int] = loop.create_future()
    after: list[str] = []

    async def agent() -> None:
        await within(result, 10.0)
        after.append("went on")  # what a lost cancellation lets happen
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(agent())
    await asyncio.sleep(0)  # the task waits in `within`
    result.set_result(1)  # the result and the cancellation in the same turn of the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert after == []
    assert task.cancelled()


async def test_the_time_limit_raises_timeout_error() -> None:
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await within(never, 0.01)
    assert await within(asyncio.sleep(0, "done"), None) == "done"
