"""The model loader: the compacted models topic -> every account's newest promoted model
in this worker (`runtime.models`), read from the beginning on start and followed after
(`stream.adapters.model_feed`).

The feed runs as a task of its own, which a timer starts and starts again if it ever
ends (a Faust `app.task` is cancelled once the worker has started; a timer's callback
runs for the worker's life)."""

from __future__ import annotations

import asyncio

from stream.adapters.model_feed import ModelFeed
from stream.worker.app import app, settings
from stream.worker.runtime import runtime

CHECK_SECONDS = 1.0
_feed: list[asyncio.Task[None]] = []


@app.timer(interval=CHECK_SECONDS)  # type: ignore[untyped-decorator]
async def load_models() -> None:
    if not _feed or _feed[0].done():
        _feed[:] = [asyncio.ensure_future(ModelFeed(settings, runtime.models.apply).run())]
