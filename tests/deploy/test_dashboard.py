"""The Grafana dashboard parses, uses the `${DS_PROMETHEUS}` data source, and queries only
metrics the service exports (its own, Faust's sensors', or the planned ones listed here),
with valid PromQL and no id labels; the ops guide describes every metric of ours."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.ops.metrics import Metrics, StatsJobMetrics
from stream.ops.model_metrics import TrainJobMetrics
from stream.worker.sensors import faust_metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "creative-selection.json"

# Metrics the alerts and the dashboard use that stream/ops/metrics.py does not export yet
# (deploy/README.md, "Metrics", says what each means). Remove a name from here when it
# lands in stream/ops/metrics.py.
PROPOSED_METRICS: frozenset[str] = frozenset()
# Series Prometheus itself writes for every target.
PROMETHEUS_SERIES = frozenset({"up"})
ID_LABELS = ("contact", "contact_id", "creative_id", "account_id")

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan", "atan2"}
)
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")


def _sample_names(families: Iterable[Any]) -> frozenset[str]:
    """Sample names of metric families (counters with `_total`, histograms with `_bucket`,
    `_count` and `_sum`)."""
    names = set()
    for family in families:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return frozenset(names)


def exported_metric_names(with_faust: bool = False) -> frozenset[str]:
    """Every sample name a worker exports (stream/ops/metrics.py's `Metrics`), and Faust's
    sensors' with `with_faust`."""
    metrics = Metrics()
    if with_faust:
        faust_metrics(metrics.registry)
    return _sample_names(metrics.registry.collect())


def job_metric_names() -> frozenset[str]:
    """Every sample name the daily job and the training job write when they end."""
    families = [*StatsJobMetrics().registry.collect(), *TrainJobMetrics().registry.collect()]
    return _sample_names(families)


def documented_metric_names() -> frozenset[str]:
    """Our metrics as the ops guide names them: counters with `_total`, others bare."""
    families = [
        *Metrics().registry.collect(),
        *StatsJobMetrics().registry.collect(),
        *TrainJobMetrics().registry.collect(),
    ]
    return frozenset(
        f"{family.name}_total" if family.type == "counter" else family.name for family in families
    )


def known_metric_names() -> frozenset[str]:
    known = exported_metric_names(with_faust=True) | job_metric_names()
    return known | PROPOSED_METRICS | PROMETHEUS_SERIES


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (Grafana variables removed)."""
    text = re.sub(r"\$\{?\w+\}?", "", expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"(?<![\w:.])\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?(?![\w:])", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def uses_id_label(text: str) -> bool:
    return any(re.search(rf"(?<![\w]){label}(?![\w])", text) for label in ID_LABELS)


def check_promql(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Let promtool parse each expression, as a recording rule."""
    rules = {
        "groups": [
            {
                "name": "parse",
                "rules": [{"record": f"parse:expr{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "parse.yml"
    path.write_text(yaml.safe_dump(rules))
    return subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def load() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels", [])))
    return out


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in all_panels(load()["panels"])
        for target in panel.get("targets", [])
    ]


def grafana_free(expr: str) -> str:
    """The expression as Prometheus would receive it for a 5-minute rate interval."""
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
    )


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{instance=~"$instance"}'
        "[$__rate_interval]))) / on () sum(b_total offset 1w) > bool 0.5 and time() - c"
        " * 36 * 3600 + arm:d:ratio1h - e:f:1h + 1e3"
    )
    assert metric_names_in(expr) == {"a_bucket", "b_total", "c", "arm:d:ratio1h", "e:f:1h"}


def test_dashboard_is_recent_and_uses_the_datasource_variable() -> None:
    board = load()
    assert board["schemaVersion"] >= 36
    assert board["uid"] and board["title"]
    assert any(i["name"] == "DS_PROMETHEUS" for i in board["__inputs"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [p for p in all_panels(board["panels"]) if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
    ids = [p["id"] for p in all_panels(board["panels"])]
    assert len(ids) == len(set(ids))


def test_every_query_uses_known_metrics_only() -> None:
    known = known_metric_names()
    for title, target in targets():
        names = metric_names_in(target["expr"])
        assert names, title
        assert names <= known, f"{title}: unknown metrics {sorted(names - known)}"
    for variable in load()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric, label)
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert metric and metric.group(1) in known, variable["definition"]


def test_the_ops_guide_describes_every_metric() -> None:
    guide = (ROOT / "deploy" / "README.md").read_text()
    described = set(re.findall(r"^\| `(creative_selection_\w+)` \|", guide, flags=re.M))
    assert described == documented_metric_names() | PROPOSED_METRICS


def test_the_dashboard_covers_what_operations_watch() -> None:
    used = {name for _, target in targets() for name in metric_names_in(target["expr"])}
    for name in (
        "creative_selection_decisions_total",
        "creative_selection_fallbacks_total",
        "creative_selection_selection_batch_seconds_bucket",
        "creative_selection_events_total",
        "creative_selection_dead_letters_total",
        "creative_selection_learning_pool_creatives",
        "creative_selection_top_creative_share",
        "creative_selection_exposure_entropy_ratio",
        "creative_selection_consumer_lag_messages",
        "creative_selection_reconciliation_drift_events",
        "creative_selection_arm_sends_total",
        "creative_selection_arm_clicks_total",
        "creative_selection_arm_revenue_total",
        "creative_selection_arm_conversions_total",
        "creative_selection_decisions_expected_control_total",
        "creative_selection_exposure_accounts",
        "creative_selection_faust_total_rebalances",
        "creative_selection_faust_consumer_commit_seconds_bucket",
    ):
        assert name in used, name


def test_no_query_or_legend_uses_an_id_label() -> None:
    for title, target in targets():
        assert not uses_id_label(target["expr"]), title
        assert not uses_id_label(target.get("legendFormat", "")), title
    for variable in load()["templating"]["list"]:
        assert not uses_id_label(json.dumps(variable.get("query", "")))


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    assert shutil.which("promtool"), "promtool missing: scripts/setup installs it"
    result = check_promql([grafana_free(t["expr"]) for _, t in targets()], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("label", ID_LABELS)
def test_id_label_detection(label: str) -> None:
    assert uses_id_label(f"sum by ({label}) (x)")
    assert not uses_id_label("creative_selection_top_creative_share")


def test_the_promql_check_rejects_invalid_expressions(tmp_path: Path) -> None:
    assert check_promql(["sum(rate(x[5m])"], tmp_path).returncode != 0
