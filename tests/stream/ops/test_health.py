"""`/health` decided from what the worker knows: ok, degraded (ready by default) and
unavailable, each with its reasons; probe results go stale."""

from __future__ import annotations

from typing import Any

import pytest

from stream.ops.health import Facts, Reachability, report


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = {
        "tables_recovered": True,
        "rebalancing": False,
        "broker": "reachable",
        "redis": "reachable",
        "cooldowns": "exact",
        "dedup": "ok",
    }
    return Facts(**(base | changes))


def is_event(position: str) -> bool:
    return position.startswith("sends:")


def test_everything_answering_is_ok() -> None:
    status, body = report(facts(), is_event)
    assert (status, body["status"], body["ready"], body["reasons"]) == (200, "ok", True, [])


def test_redis_down_is_degraded_and_ready_unless_configured_otherwise() -> None:
    down = facts(redis="unreachable", cooldowns="degraded", dedup="waiting")
    status, body = report(down, is_event)
    assert (status, body["status"], body["ready"]) == (200, "degraded", True)
    assert body["reasons"] == ["redis_unreachable", "cooldowns_degraded", "dedup_waiting"]
    assert report(down, is_event, degraded_ready=False)[0] == 503
    assert report(facts(dedup="refilling"), is_event)[1]["reasons"] == ["dedup_refilling"]


def test_waiting_for_dedup_is_not_a_stalled_agent_nor_stalled_event_partitions() -> None:
    held = facts(
        dedup="waiting",
        stalled_agents=["count_outcomes"],
        stalled_partitions=["sends:0", "selection-requests:1"],
    )
    status, body = report(held, is_event)
    assert status == 503 and body["reasons"] == ["partition_stalled", "dedup_waiting"]
    assert body["stalled_agents"] == [] and body["stalled_partitions"] == ["selection-requests:1"]
    stuck = facts(stalled_agents=["count_outcomes"], stalled_partitions=["sends:0"])
    assert report(stuck, is_event)[1]["reasons"] == ["agent_stalled", "partition_stalled"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tables_recovered": False}, "tables_recovering"),
        ({"rebalancing": True}, "rebalancing"),
        ({"broker": "unreachable"}, "broker_unreachable"),
        ({"stalled_agents": ["answer_selection_requests"]}, "agent_stalled"),
    ],
)
def test_unavailable_wins_over_degraded(changes: dict[str, Any], reason: str) -> None:
    status, body = report(facts(redis="unreachable", **changes), is_event)
    assert (status, body["status"]) == (503, "unavailable")
    assert body["reasons"] == [reason, "redis_unreachable"]


def test_probe_results_go_stale_and_unused_or_unprobed_dependencies_say_so() -> None:
    reach = Reachability(stale_seconds=5.0)
    assert reach.state("broker", 100.0) == "unknown"
    reach.record("broker", True, 100.0)
    assert reach.state("broker", 104.0) == "reachable"
    assert reach.state("broker", 106.0) == "unreachable"  # the probe stopped finishing
    reach.record("broker", False, 106.0)
    assert reach.state("broker", 106.5) == "unreachable"
    reach.not_used("redis")
    assert reach.state("redis", 0.0) == "not_used"
    assert report(facts(broker="unknown", redis="not_used"), is_event)[0] == 200
