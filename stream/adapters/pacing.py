"""Holding a publisher to a rate: `send-events --rate` and `replay --rate`.

The limiter keeps a schedule (the n-th event is due at `start + n / rate`) so the
average holds even when single sleeps overshoot; a sender that fell behind (a slow
broker, a pause) may catch up, but by at most `burst_seconds` worth of events, so a
long stall is not followed by a flood. Time is injected, so the arithmetic is tested
without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """At most `rate` events a second on average (None or 0: no limit)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        burst_seconds: float = 1.0,
    ) -> None:
        if rate is not None and rate < 0:
            raise ValueError("rate must be >= 0")
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._burst = burst_seconds
        self._next: float | None = None  # when the next event is due

    def delay(self) -> float:
        """Seconds to wait before the next event may go; books that event."""
        if not self.interval:
            return 0.0
        now = self._clock()
        due = now if self._next is None else max(self._next, now - self._burst)
        self._next = due + self.interval
        return max(0.0, due - now)

    async def wait(self) -> None:
        """Sleep until the next event may go (waits under a millisecond are skipped)."""
        pause = self.delay()
        if pause > 0.001:
            await self._sleep(pause)
