"""`kill -USR2` on a worker: each task's chain of awaits, through async generators."""

from __future__ import annotations

import asyncio

from stream.commands.worker import await_chain


async def _ticks():
    await asyncio.sleep(30)
    yield 1


async def _reads():
    async for _ in _ticks():
        pass


async def _outer():
    await _reads()


async def test_the_chain_goes_through_coroutines_and_async_generators() -> None:
    task = asyncio.create_task(_outer())
    await asyncio.sleep(0.01)
    try:
        functions = [line.split(" ", 1)[1] for line in await_chain(task.get_coro())[:-1]]
        assert functions[:3] == ["_outer", "_reads", "_ticks"]
        assert functions[3] == "sleep"
        assert await_chain(task.get_coro())[-1].startswith("awaits ")
    finally:
        task.cancel()


async def test_a_finished_coroutine_has_an_empty_chain() -> None:
    async def done() -> int:
        return 1

    coro = done()
    assert await coro == 1
    assert await_chain(coro) == []
