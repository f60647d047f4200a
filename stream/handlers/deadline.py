"""`within`: an awaitable with a time limit, as `asyncio.wait_for`, that never swallows a
cancellation.

Python 3.11's `asyncio.wait_for` returns the awaited call's result when the cancellation
of the task waiting in it arrives in the same turn of the event loop as that result: the
cancellation is lost. Faust stops an agent by cancelling its task once; an agent that
lost it went on to wait for its next batch on a stream that had stopped, and the worker
never finished stopping (seen as a worker that ignored SIGTERM until it was killed).
`asyncio.timeout` keeps a cancellation it did not cause: it is raised at the task's next
await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """The awaitable's result; TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable
