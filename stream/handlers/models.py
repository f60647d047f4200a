"""The promoted contextual models a worker scores with: the newest version per account,
read from the compacted models topic (`stream.adapters.model_feed` feeds it).

A message replaces the account's model only if its version is higher than the one in
use (an older or repeated version, such as the topic's history on a restart, is counted
and ignored); one that does not load (`selector.model.artifact.MODEL_REASONS`), or
whose key is not its account, is rejected with its reason and the model in use stays. A
tombstone (no value) removes the account's model, and its `model` traffic falls back to
Thompson sampling.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from selector.model.artifact import ContextualModel, from_bytes
from stream.ops.model_metrics import ModelMetrics

log = logging.getLogger(__name__)
LoadOutcome = Literal["loaded", "older", "rejected"]
MODELS_TOPIC = "models"  # before CS_TOPIC_PREFIX; schemas/topics.yaml


class ModelBook:
    """Account key (the account id's bytes) -> its promoted model."""

    def __init__(self, metrics: ModelMetrics | None = None) -> None:
        self._models: dict[bytes, ContextualModel] = {}
        self._metrics = metrics

    def get(self, key: bytes) -> ContextualModel | None:
        return self._models.get(key)

    def __len__(self) -> int:
        return len(self._models)

    def apply(self, key: bytes | None, value: bytes | None) -> LoadOutcome:
        """Take one message of the models topic."""
        outcome = self._apply(key, value)
        if self._metrics is not None:
            self._metrics.model_loads.labels(outcome).inc()
            self._refresh_gauges()
        return outcome

    def _apply(self, key: bytes | None, value: bytes | None) -> LoadOutcome:
        if key is None:
            log.warning("a models message without a key was rejected")
            return "rejected"
        if value is None:
            self._models.pop(key, None)
            return "loaded"
        model = from_bytes(value)
        if isinstance(model, str):
            log.warning("a model was rejected: %s", model)
            return "rejected"
        if model.account_id.encode() != key:
            log.warning("a model was rejected: its key is not its account")
            return "rejected"
        current = self._models.get(key)
        if current is not None and model.version <= current.version:
            return "older"
        self._models[key] = model
        log.info("model version %d in use for an account", model.version)
        return "loaded"

    def _refresh_gauges(self) -> None:
        assert self._metrics is not None
        trained = [m.trained_at for m in self._models.values()]
        self._metrics.models_in_use.set(len(trained))
        self._metrics.model_newest_trained.set(max(trained) if trained else math.nan)
        self._metrics.model_oldest_trained.set(min(trained) if trained else math.nan)
