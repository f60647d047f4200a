"""Kubernetes manifests: valid against the Kubernetes JSON schemas (kubernetes-validate
bundles them, so this runs offline), and true to the service: probes on the health
port, the state directory on a persistent volume, the daily job never overlapping, no
real secrets, settings the service knows. The ops guide names only commands that exist
or are marked planned."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stream.cli import COMMANDS
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OPS_GUIDE = ROOT / "deploy" / "README.md"
# The oldest Kubernetes minor the manifests target, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
NOT_IN_KUSTOMIZATION = {"secret.example.yaml", "podmonitor.yaml"}
# Custom resources: no schema in kubernetes-validate; checked by hand below.
CUSTOM_KINDS = {"PodMonitor", "Kustomization"}
# Settings and commands the manifests and the ops guide use before the service has them
# (deploy/README.md, "Planned"). Remove a name once it exists.
PLANNED_SETTINGS = {
    "CS_TABLE_STANDBY_REPLICAS",
    "CS_TABLE_STORE",
    "CS_TOPIC_REPLICATION_FACTOR",
}
PLANNED_COMMANDS: set[str] = set()
PLACEHOLDERS = {"REPLACE_ME"}
HEALTH_PORT = 6066
WORKER_LABELS = {
    "app.kubernetes.io/name": "creative-selection",
    "app.kubernetes.io/component": "worker",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def the(kind: str) -> dict[str, Any]:
    (doc,) = [d for _, d in documents() if d["kind"] == kind]
    return doc


def config_map() -> dict[str, str]:
    data: dict[str, str] = the("ConfigMap")["data"]
    return data


def worker_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = the("StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def cronjob(component: str = "stats-job") -> dict[str, Any]:
    (doc,) = [
        d
        for _, d in documents()
        if d["kind"] == "CronJob"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return doc


def job_container(component: str = "stats-job") -> dict[str, Any]:
    spec = cronjob(component)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = spec["containers"]
    assert len(containers) == 1
    return containers[0]


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [str(value)]


SCHEMA_DOCS = [(f, d) for f, d in documents() if d["kind"] not in CUSTOM_KINDS]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("filename", "doc"), SCHEMA_DOCS, ids=[f"{f}:{d['kind']}" for f, d in SCHEMA_DOCS]
)
def test_manifest_matches_the_kubernetes_schema(
    filename: str, doc: dict[str, Any], version: str
) -> None:
    # strict: unknown fields (typos) fail too
    kubernetes_validate.validate(doc, version, strict=True)


def test_only_custom_resources_lack_a_schema() -> None:
    kinds = {d["kind"] for _, d in documents()} - {d["kind"] for _, d in SCHEMA_DOCS}
    assert kinds == CUSTOM_KINDS
    for kind in CUSTOM_KINDS:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(the(kind), KUBERNETES_VERSIONS[0], strict=True)


def test_the_validator_rejects_a_typo_and_a_wrong_type() -> None:
    typo = copy.deepcopy(the("StatefulSet"))
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    wrong = copy.deepcopy(the("StatefulSet"))
    wrong["spec"]["replicas"] = "three"
    for doc in (typo, wrong):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)


def test_everything_lives_in_one_namespace() -> None:
    namespace = the("Namespace")["metadata"]["name"]
    assert the("Kustomization")["namespace"] == namespace
    for filename, doc in documents():
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"]["namespace"] == namespace, filename


def test_the_kustomization_lists_every_manifest_but_the_optional_ones() -> None:
    listed = set(the("Kustomization")["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert all((K8S / name).exists() for name in listed)
    assert listed == files - NOT_IN_KUSTOMIZATION


def test_the_config_map_is_settings_the_service_accepts() -> None:
    data = config_map()
    assert all(isinstance(v, str) for v in data.values())  # quoted numbers and booleans
    settings = Settings.from_env(data)  # parses and validates
    assert settings.web_host == "0.0.0.0" and settings.web_port == HEALTH_PORT
    assert settings.kafka_security_protocol in ("SSL", "SASL_SSL")
    assert settings.redis_tls and settings.redis_url.startswith("rediss://")


def test_every_cs_variable_is_a_setting_or_planned() -> None:
    known = {f"CS_{f.name.upper()}" for f in dataclasses.fields(Settings)} | PLANNED_SETTINGS
    for filename, doc in documents():
        for text in strings(doc):
            for name in re.findall(r"\bCS_[A-Z0-9_]+\b", text):
                assert name in known, f"{filename}: {name}"


def test_workers_probe_health_on_the_web_port() -> None:
    container = worker_container()
    assert [p["containerPort"] for p in container["ports"]] == [HEALTH_PORT]
    assert container["ports"][0]["name"] == "metrics"  # prometheus.yml and podmonitor.yaml
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": HEALTH_PORT}, probe
    assert int(config_map()["CS_WEB_PORT"]) == HEALTH_PORT


def test_workers_keep_state_on_a_persistent_volume() -> None:
    statefulset = the("StatefulSet")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in worker_container()["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config_map()["CS_STATE_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_workers_run_the_worker_with_static_membership_and_an_orderly_stop() -> None:
    statefulset = the("StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    container = worker_container()
    assert container["command"] == ["creative-select", "worker"]
    env = {e["name"]: e for e in container["env"]}
    assert env["CS_GROUP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    session_timeout = Settings.from_env(config_map()).session_timeout_seconds
    # a pod stopping in order is back before the group gives its partitions away
    assert 0 < pod["terminationGracePeriodSeconds"] < session_timeout
    assert container["lifecycle"]["preStop"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert statefulset["spec"]["replicas"] <= int(config_map()["CS_PARTITIONS"])
    assert container["image"] == job_container()["image"]
    assert container["image"].startswith(the("Kustomization")["images"][0]["name"] + ":")


def test_services_and_budget_select_the_workers() -> None:
    statefulset = the("StatefulSet")
    assert statefulset["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    assert statefulset["spec"]["template"]["metadata"]["labels"] == WORKER_LABELS
    services = {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == "Service"}
    headless = services[statefulset["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    for service in services.values():
        assert service["spec"]["selector"] == WORKER_LABELS
        assert [p["port"] for p in service["spec"]["ports"]] == [HEALTH_PORT]
    assert the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == WORKER_LABELS


def test_the_pod_monitor_scrapes_the_workers_metrics_port() -> None:
    monitor = the("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == worker_container()["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_the_daily_job_never_overlaps() -> None:
    assert cronjob()["spec"]["concurrencyPolicy"] == "Forbid"
    assert job_container()["command"] == ["creative-select", "stats-job"]


def test_the_training_job_never_overlaps_and_ends_within_its_hour() -> None:
    train = cronjob("train")
    assert train["spec"]["concurrencyPolicy"] == "Forbid"
    assert train["spec"]["schedule"].split()[1] == "*"  # hourly: each account at its interval
    assert train["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 3600
    container = job_container("train")
    assert container["command"] == ["creative-select", "train"]
    assert container["envFrom"] == job_container()["envFrom"]  # the worker's settings
    assert container["env"] == job_container()["env"]


def test_no_secret_holds_more_than_a_placeholder() -> None:
    for filename, doc in documents():
        if doc["kind"] == "Secret":
            assert "data" not in doc, filename  # base64 would hide a real value
            assert set(doc["stringData"].values()) <= PLACEHOLDERS, filename


def test_passwords_come_from_secrets_only() -> None:
    assert not [k for k in config_map() if re.search(r"PASSWORD|TOKEN|SECRET", k)]
    for container in (worker_container(), job_container(), job_container("train")):
        for env in container["env"]:
            if re.search(r"PASSWORD|TOKEN|SECRET", env["name"]):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]
    for filename, doc in documents():
        for text in strings(doc):
            credentials_in_url = re.search(r"://[^/\s:@]+:[^/\s@]+@", text)
            assert not credentials_in_url, f"{filename}: {text}"


def test_the_ops_guide_names_only_existing_or_planned_commands() -> None:
    guide = OPS_GUIDE.read_text()
    named = set(re.findall(r"creative-select ([a-z][a-z-]*)", guide))
    assert named - set(COMMANDS) - PLANNED_COMMANDS == set()
    for command in PLANNED_COMMANDS - set(COMMANDS):
        for mention in re.finditer(f"creative-select {command}", guide):
            context = guide[max(0, mention.start() - 300) : mention.end() + 300]
            assert "planned" in context.lower(), f"{command} not marked planned near it"
    for setting in PLANNED_SETTINGS:
        assert setting in guide


def test_the_containerfile_builds_the_image_the_manifests_run() -> None:
    text = (ROOT / "Containerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["creative-select"\]$', text, re.M)
    for container in (worker_container(), job_container(), job_container("train")):
        assert container["command"][0] == "creative-select"
    user = re.search(r"^USER (\d+):(\d+)$", text, re.M)
    assert user is not None
    pod = the("StatefulSet")["spec"]["template"]["spec"]["securityContext"]
    assert (int(user[1]), int(user[2])) == (pod["runAsUser"], pod["runAsGroup"])
    port = re.search(r"^EXPOSE (\d+)$", text, re.M)
    assert port is not None and int(port[1]) == int(config_map().get("CS_WEB_PORT", 6066))
