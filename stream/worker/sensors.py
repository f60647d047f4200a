"""Faust's own Prometheus sensors, registered into the service's registry.

`faust.sensors.prometheus` counts messages in and out, table operations, commits,
rebalances and web requests. Its `setup_prometheus_sensors` would add a second `/metrics`
page and name its latency histograms in milliseconds (`events_runtime_ms`, which
`promtool check metrics` rejects, and `*_latency` without a unit). Here the same sensor
writes into our registry, served by our `/metrics`, under `creative_selection_faust_`,
and every latency histogram is replaced by one in seconds with explicit buckets.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry, Histogram

from stream.ops.metrics import PREFIX

FAUST_PREFIX = f"{PREFIX}_faust"
# Faust's field -> our histogram name (after the prefix) and help text.
LATENCIES = {
    "events_runtime_latency": ("event_runtime_seconds", "Time an agent spent on one event."),
    "producer_send_latency": ("producer_send_seconds", "Time to send one message."),
    "producer_error_send_latency": (
        "producer_error_send_seconds",
        "Time until a send failed.",
    ),
    "assign_latency": ("assignment_seconds", "Time the partition assignor took."),
    "rebalance_done_consumer_latency": (
        "rebalance_consumer_done_seconds",
        "Time from rebalance start until this consumer answered the group.",
    ),
    "rebalance_done_latency": (
        "rebalance_done_seconds",
        "Time from rebalance start until recovery finished.",
    ),
    "http_latency": ("http_request_seconds", "Time to answer one web request."),
    "consumer_commit_latency": ("consumer_commit_seconds", "Time to commit offsets."),
}
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _InSeconds:
    """Takes Faust's observations in milliseconds and records them in seconds."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram

    def observe(self, milliseconds: float) -> None:
        self._histogram.observe(milliseconds / 1000.0)


def faust_metrics(registry: CollectorRegistry) -> FaustMetrics:
    """Faust's sensor metrics in `registry`, latencies in seconds."""
    created = FaustMetrics.create(registry, FAUST_PREFIX)
    replaced: dict[str, Any] = {}
    for field, (name, help_text) in LATENCIES.items():
        registry.unregister(getattr(created, field))
        histogram = Histogram(
            f"{FAUST_PREFIX}_{name}", help_text, buckets=BUCKETS, registry=registry
        )
        replaced[field] = _InSeconds(histogram)
    return created._replace(**replaced)


def faust_monitor(registry: CollectorRegistry) -> PrometheusMonitor:
    """The app's monitor: Faust's usual statistics plus its Prometheus sensors."""
    return PrometheusMonitor(metrics=faust_metrics(registry))
