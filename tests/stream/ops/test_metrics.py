"""The metrics module: one prefix, Prometheus suffixes, no id labels, and a worker's
series of known label sets start at 0 while unmeasured gauges start as NaN."""

from __future__ import annotations

import math

from stream.ops.metrics import PREFIX, Metrics

ID_LABELS = {"contact", "contact_id", "creative_id", "account_id", "account", "creative"}


def test_names_follow_the_conventions() -> None:
    for family in Metrics().registry.collect():
        assert family.name.startswith(PREFIX + "_")
        labels = {label for s in family.samples for label in s.labels}
        assert not labels & ID_LABELS, family.name
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_size")), family.name


def test_a_worker_starts_with_zero_series_and_nan_gauges() -> None:
    metrics = Metrics().start_series()
    registry = metrics.registry
    assert registry.get_sample_value(f"{PREFIX}_fallbacks_total", {"reason": "no_candidates"}) == 0
    assert registry.get_sample_value(f"{PREFIX}_arm_sends_total", {"arm": "unattributed"}) == 0
    events = {"kind": "conversion", "outcome": "duplicate"}
    assert registry.get_sample_value(f"{PREFIX}_events_total", events) == 0
    assert math.isnan(registry.get_sample_value(f"{PREFIX}_top_creative_share") or 0.0)
    assert math.isnan(registry.get_sample_value(f"{PREFIX}_exposure_entropy_ratio") or 0.0)
    fresh = Metrics().registry
    assert fresh.get_sample_value(f"{PREFIX}_arm_sends_total", {"arm": "control"}) is None
