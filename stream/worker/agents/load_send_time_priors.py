"""The send-time prior loader: the compacted send-time priors topic -> every account's
newest fitted prior in this worker (`runtime.priors`), read from the beginning on start
and followed after (`stream.adapters.model_feed`, as the models)."""

from __future__ import annotations

import asyncio

from stream.adapters.model_feed import ModelFeed
from stream.handlers.sendtime_priors import PRIORS_TOPIC
from stream.worker.app import app, settings
from stream.worker.runtime import runtime

CHECK_SECONDS = 1.0
_feed: list[asyncio.Task[None]] = []


@app.timer(interval=CHECK_SECONDS)  # type: ignore[untyped-decorator]
async def load_send_time_priors() -> None:
    if not _feed or _feed[0].done():
        feed = ModelFeed(settings, runtime.priors.apply, topic=PRIORS_TOPIC)
        _feed[:] = [asyncio.ensure_future(feed.run())]
