"""The contextual model's metrics: one prefix, bounded labels, series from the start."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from stream.ops.metrics import PREFIX, Metrics
from stream.ops.model_metrics import GATE_REASONS, PROFILE_OUTCOMES, TrainJobMetrics
from tests.stream.ops.test_metrics import ID_LABELS


def test_names_and_labels_follow_the_conventions() -> None:
    for registry in (Metrics().registry, TrainJobMetrics().registry):
        for family in registry.collect():
            assert family.name.startswith(PREFIX + "_")
            labels = {label for s in family.samples for label in s.labels}
            assert not labels & ID_LABELS, family.name
            assert labels <= {"outcome", "source", "reason", "le"}, family.name


def test_series_exist_from_the_start_and_unmeasured_gauges_are_nan() -> None:
    registry = Metrics().registry
    for outcome in PROFILE_OUTCOMES:
        labels = {"outcome": outcome}
        assert registry.get_sample_value(f"{PREFIX}_profile_events_total", labels) == 0
    assert registry.get_sample_value(f"{PREFIX}_models_in_use") == 0
    newest = registry.get_sample_value(f"{PREFIX}_model_newest_trained_timestamp_seconds")
    assert newest is not None and math.isnan(newest)
    job = TrainJobMetrics(CollectorRegistry())
    for reason in GATE_REASONS:
        labels = {"reason": reason}
        assert job.registry.get_sample_value(f"{PREFIX}_train_gate_accounts", labels) == 0
    assert {"better", "first_model", "not_due", "too_few_sends"} <= set(GATE_REASONS)
