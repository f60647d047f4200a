"""The model loader: the compacted models topic -> every account's newest promoted model
in this worker (`runtime.models`), read from the beginning on start and followed after
(`stream.adapters.model_feed`)."""

from __future__ import annotations

from stream.adapters.model_feed import ModelFeed
from stream.worker.app import app, settings
from stream.worker.runtime import runtime


@app.task  # type: ignore[untyped-decorator]
async def load_models() -> None:
    await ModelFeed(settings, runtime.models.apply).run()
