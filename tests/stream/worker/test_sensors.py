"""Faust's sensors in our registry: one prefix, latencies in seconds, nothing promtool
rejects, and no clash with the service's own metric names."""

from __future__ import annotations

import subprocess

from faust.sensors.prometheus import PrometheusMonitor
from prometheus_client import CollectorRegistry, generate_latest

from stream.ops.metrics import Metrics
from stream.worker.sensors import FAUST_PREFIX, LATENCIES, faust_metrics, faust_monitor


def families(registry: CollectorRegistry) -> dict[str, str]:
    return {f.name: f.type for f in registry.collect()}


def test_faust_metrics_share_our_registry_under_their_own_prefix() -> None:
    ours = set(families(Metrics().registry))
    metrics = Metrics()
    faust_metrics(metrics.registry)  # would raise on a duplicate name
    theirs = set(families(metrics.registry)) - ours
    assert theirs and all(name.startswith(FAUST_PREFIX + "_") for name in theirs)


def test_latencies_are_histograms_in_seconds() -> None:
    registry = CollectorRegistry()
    created = faust_metrics(registry)
    kinds = families(registry)
    histograms = {name for name, kind in kinds.items() if kind == "histogram"}
    assert histograms == {f"{FAUST_PREFIX}_{name}" for name, _ in LATENCIES.values()}
    assert all(name.endswith("_seconds") for name in histograms)
    assert not [name for name in kinds if name.endswith("_ms")]
    created.producer_send_latency.observe(250.0)  # Faust observes milliseconds
    assert registry.get_sample_value(f"{FAUST_PREFIX}_producer_send_seconds_sum") == 0.25


def test_the_exposition_passes_promtool() -> None:
    metrics = Metrics()
    monitor = faust_monitor(metrics.registry)
    assert isinstance(monitor, PrometheusMonitor)
    monitor.count("rebalances")
    scrape = generate_latest(metrics.registry)
    result = subprocess.run(["promtool", "check", "metrics"], input=scrape, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
