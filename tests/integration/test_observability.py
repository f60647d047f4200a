"""A live worker under real traffic: its scrape passes `promtool check metrics` with every
metric the alerts and the dashboard use carrying samples; outcomes are counted by the arm
the selection gave each contact; consumer lag drains to zero and /health says consumption
advances; Faust's table and cluster pages are not served; the web server listens on
CS_WEB_HOST only; and realistic contact ids never appear in the metrics scrape or in the
INFO log."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent
from tests.deploy.test_dashboard import exported_metric_names
from tests.integration.test_worker_e2e import ACCOUNT
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

PHONES = [f"+1415555{i:04d}" for i in range(300)]
EMAILS = [f"jane.doe{i}@example.com" for i in range(300)]
CONTACTS = PHONES + EMAILS
# Clicks of the first half name their campaign (attributable), the rest do not.
ATTRIBUTED_CLICKS = 300
CONVERSIONS = 100  # valid ones, 5.0 each, with their campaign


@dataclass
class Traffic:
    worker: WorkerProcess
    answers: list[SelectionResponse]  # one per contact, in CONTACTS order

    def arms(self, first: int | None = None) -> dict[str, float]:
        """`{arm="..."}` -> answers in that arm, among the first `first` contacts."""
        counts = Counter(a.arm for a in self.answers[:first])
        return {f'{{arm="{arm}"}}': float(n) for arm, n in counts.items()}


@pytest.fixture(scope="module")
def busy_worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traffic]:
    root = tmp_path_factory.mktemp("observability")
    env = worker_settings(kafka_bootstrap, redis_url, root / "state")
    process = WorkerProcess(env, root / "worker.log")
    process.start()
    try:
        yield Traffic(process, asyncio.run(traffic(process)))
    finally:
        process.stop()


def outcome_events(answers: list[SelectionResponse]) -> list[object]:
    events: list[object] = []
    for i, (contact, answer) in enumerate(zip(CONTACTS, answers, strict=True)):
        creative = answer.creative_id
        events.append(SendEvent(f"s{i}", "acme", "k", contact, creative, 100.0 + i))
        campaign = "k" if i < ATTRIBUTED_CLICKS else None
        events.append(ClickEvent(f"k{i}", "acme", contact, creative, 200.0 + i, None, campaign))
        events.append(ConversionEvent(f"v{i}", "acme", contact, "c9", 300.0 + i, 5.0))
        if i < CONVERSIONS:
            events.append(
                ConversionEvent(f"w{i}", "acme", contact, creative, 300.0 + i, 5.0, None, "k")
            )
    return events


async def traffic(worker: WorkerProcess) -> list[SelectionResponse]:
    s = worker.settings
    await publish(validate_documents([ACCOUNT], s), s)
    await worker.wait_for("creative_selection_catalog_updates_total", 4)
    async with SelectionClient(s, timeout=30) as client:
        answers = await client.select_many([("acme", "k", c, None) for c in CONTACTS])
        await client.select_many([("acme", "no-such-campaign", c, None) for c in PHONES[:20]])
        assert all(isinstance(a, SelectionResponse) for a in answers)
        await client.publish_events(outcome_events(answers))
    applied = 2 * len(CONTACTS) + CONVERSIONS
    await worker.wait_for("creative_selection_events_total", applied, outcome="applied")
    await worker.wait_for("creative_selection_dead_letters_total", len(CONTACTS))
    # The gauges come from a timer: wait for its first refresh with everything in place.
    await worker.wait_for("creative_selection_exposure_accounts", 1)
    while not samples(worker.metrics(), "creative_selection_consumer_lag_messages"):
        await asyncio.sleep(0.5)
    return answers


def samples(scrape: str, name: str) -> dict[str, float]:
    """`{labels}` -> value of every sample of `name`."""
    out = {}
    for line in scrape.splitlines():
        if line.startswith((name + "{", name + " ")):
            series, value = line.rsplit(" ", 1)
            out[series[len(name) :]] = float(value)
    return out


async def refreshed(worker: WorkerProcess, name: str, value: float) -> str:
    """The scrape once gauge `name` shows `value` (the timer refreshes every 10 s)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        scrape = worker.metrics()
        if samples(scrape, name).get("") == value:
            return scrape
        assert asyncio.get_running_loop().time() < deadline, samples(scrape, name)
        await asyncio.sleep(0.5)


def test_live_scrape_passes_promtool_check_metrics(busy_worker: Traffic) -> None:
    scrape = busy_worker.worker.metrics()
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_of_ours_and_faust_has_samples(busy_worker: Traffic) -> None:
    scrape = busy_worker.worker.metrics()
    for name in exported_metric_names():
        assert samples(scrape, name), f"no sample of {name}"
    for name in (
        "creative_selection_faust_messages_received_total",
        "creative_selection_faust_table_operations_total",
        "creative_selection_faust_event_runtime_seconds_bucket",
        "creative_selection_faust_topic_partition_end_offset",
    ):
        assert samples(scrape, name), f"no sample of {name}"


def nonzero(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if v}


def test_outcomes_are_counted_by_the_arm_the_selection_gave(busy_worker: Traffic) -> None:
    scrape = busy_worker.worker.metrics()
    arms = busy_worker.arms()
    assert set(arms) == {'{arm="automated"}', '{arm="control"}'}
    assert nonzero(samples(scrape, "creative_selection_arm_sends_total")) == arms
    clicks = nonzero(samples(scrape, "creative_selection_arm_clicks_total"))
    unattributed = len(CONTACTS) - ATTRIBUTED_CLICKS
    assert clicks == {**busy_worker.arms(ATTRIBUTED_CLICKS), '{arm="unattributed"}': unattributed}
    conversions = nonzero(samples(scrape, "creative_selection_arm_conversions_total"))
    assert conversions == busy_worker.arms(CONVERSIONS)
    revenue = nonzero(samples(scrape, "creative_selection_arm_revenue_total"))
    assert revenue == {arm: 5.0 * n for arm, n in busy_worker.arms(CONVERSIONS).items()}
    expected = samples(scrape, "creative_selection_decisions_expected_control_total")
    assert expected[""] == pytest.approx(0.2 * len(CONTACTS))


async def test_exposure_gauges_describe_the_one_account(busy_worker: Traffic) -> None:
    # Creatives below the learning threshold (300 sends) once every send is applied; the
    # gauges follow on the timer's next refresh.
    sends = Counter(a.creative_id for a in busy_worker.answers)
    learning = sum(1 for c in ("c0", "c1", "c2") if sends[c] < 300)
    assert learning >= 2
    await busy_worker.worker.wait_for("creative_selection_exposure_accounts", 1)
    scrape = await refreshed(
        busy_worker.worker, "creative_selection_learning_pool_creatives", learning
    )
    top = samples(scrape, "creative_selection_top_creative_share")[""]
    assert 1 / 3 <= top < 0.5
    ratio = samples(scrape, "creative_selection_exposure_entropy_ratio")[""]
    assert 0.9 < ratio <= 1.0 and not math.isnan(ratio)
    accounts = samples(scrape, "creative_selection_exposure_accounts")
    assert accounts == {'{state="diverse"}': 1.0, '{state="dominated"}': 0.0}


async def test_consumer_lag_is_reported_per_partition_and_drains(busy_worker: Traffic) -> None:
    worker = busy_worker.worker
    topic = f"{worker.settings.topic_prefix}sends"
    partitions = {f'{{partition="{p}",topic="{topic}"}}' for p in range(4)}
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        lag = samples(worker.metrics(), "creative_selection_consumer_lag_messages")
        mine = {k: v for k, v in lag.items() if k in partitions}
        if set(mine) == partitions and not any(mine.values()):
            break
        assert asyncio.get_running_loop().time() < deadline, lag
        await asyncio.sleep(1)
    assert not any("changelog" in series for series in lag)
    health = worker.health()
    assert health is not None and health["status"] == "ok"
    assert health["stalled_partitions"] == []


@pytest.mark.parametrize("path", ["/table/", "/table/account-to-stats/", "/router/", "/graph/"])
def test_faust_table_and_cluster_pages_are_not_served(busy_worker: Traffic, path: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(busy_worker.worker.url + path, timeout=2)
    assert refused.value.code == 404


def test_the_web_server_listens_on_cs_web_host_only(busy_worker: Traffic) -> None:
    # CS_WEB_HOST defaults to 127.0.0.1; 127.0.0.2 is loopback too, but not bound
    port = int(busy_worker.worker.settings.web_port)
    assert busy_worker.worker.settings.web_host == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


def test_no_contact_id_in_metrics_or_info_logs(busy_worker: Traffic) -> None:
    scrape = busy_worker.worker.metrics()
    log = busy_worker.worker.log_path.read_text(errors="replace")
    assert "dead letter unknown_creative" in log  # the log did record the bad events
    for contact in CONTACTS:
        assert contact not in scrape
        assert contact not in log
    assert "415555" not in scrape and "example.com" not in log
