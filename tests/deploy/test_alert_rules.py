"""Alert rules: promtool accepts them and their unit tests pass; every alert is tested
firing and quiet, is fully annotated, links to a runbook section that exists, and uses
only known metrics and no id labels. The scrape example is checked too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_dashboard import known_metric_names, metric_names_in, uses_id_label

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
OPS_GUIDE = ROOT / "deploy" / "README.md"
RUNBOOK_BASE = "https://github.com/example/creative-selection/blob/main/deploy/README.md#"
SEVERITIES = ("critical", "warning", "info")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), "promtool missing: scripts/setup installs it"
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alerts()]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(ALERTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if c.get("exp_alerts", []) == []}
    names = set(alert_names())
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet (exp_alerts: [])"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def test_alert_names_are_unique() -> None:
    assert len(alert_names()) == len(set(alert_names()))


@pytest.mark.parametrize("name", alert_names())
def test_every_alert_has_severity_summary_description_and_runbook(name: str) -> None:
    (rule,) = [r for r in alerts() if r["alert"] == name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


def test_every_runbook_link_names_a_section_of_the_ops_guide() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", OPS_GUIDE.read_text(), flags=re.M)
    anchors = {github_anchor(h) for h in headings}
    for rule in alerts():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in deploy/README.md"


def test_every_link_within_the_ops_guide_resolves() -> None:
    guide = OPS_GUIDE.read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", guide, flags=re.M)}
    for link in re.findall(r"\]\(#([^)]+)\)", guide):
        assert link in anchors, link


def test_rules_use_known_metrics_and_no_id_labels() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = known_metric_names() | recorded
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        used = metric_names_in(rule["expr"])
        assert used <= known, f"{name}: unknown metrics {sorted(used - known)}"
        assert not uses_id_label(rule["expr"]), name


def test_recording_rules_follow_the_naming_convention() -> None:
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:creative_selection_[a-z0-9_]+:[a-z0-9_]+", rule["record"])


def test_the_scrape_example_loads_the_rules_and_finds_the_workers(tmp_path: Path) -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert all("creative-selection" in name for name in jobs)  # the alerts' job matcher
    kubernetes = [j for j in jobs.values() if "kubernetes_sd_configs" in j]
    static = [j for j in jobs.values() if "static_configs" in j]
    assert kubernetes and static
    (sd,) = kubernetes[0]["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    kept = {
        r["source_labels"][0]: r["regex"]
        for r in kubernetes[0]["relabel_configs"]
        if r.get("action") == "keep"
    }
    # The StatefulSet names its container port `metrics` (tests/deploy/test_manifests.py).
    assert kept["__meta_kubernetes_pod_container_port_name"] == "metrics"
    assert kept["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == "creative-selection"

    result = promtool("check", "config", str(SCRAPE_CONFIG.relative_to(ROOT)))
    if result.returncode != 0 and "kubernetes_sd_configs" in result.stdout + result.stderr:
        # Debian's promtool is built without Kubernetes discovery: check the rest.
        config["scrape_configs"] = static
        config["rule_files"] = [str(ALERTS)]
        copy = tmp_path / "prometheus.yml"
        copy.write_text(yaml.safe_dump(config))
        result = promtool("check", "config", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
