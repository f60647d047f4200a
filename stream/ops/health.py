"""What `/health` says, decided from what the worker already knows: no check here makes a
network call, so a probe costs nothing however often it comes.

Three states:
- `ok` (200): everything answers.
- `degraded` (200 by default, `CS_DEGRADED_READY=false` makes it 503): Redis does not
  answer, or has just come back and is being caught up. Selection still answers every
  request with a creative, cooldowns from this worker's own record
  (`stream.handlers.cooldowns`); event ingestion waits, or refills the dedup records, so
  the stats stay exact but fall behind (`stream.handlers.dedup`). Restarting the worker
  or moving its partitions would not bring Redis back, and would lose that record.
- `unavailable` (503): the worker cannot do its work: tables are being recovered, a
  rebalance is in progress, the broker does not answer, an agent is stuck, or a partition
  with messages waiting does not advance. The stats agent waiting for the dedup store,
  and the event partitions it holds back meanwhile, are the degraded state, not stuck.

Reachability comes from background probes (`stream.worker.probes`, every second): a
result older than `stale_seconds` counts as unreachable, since a probe that cannot finish
is itself a sign of trouble.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "degraded", "unavailable"]
Reach = Literal["reachable", "unreachable", "unknown", "not_used"]
STATS_AGENT = "count_outcomes"


class Reachability:
    """The last result of each background probe and when it was taken."""

    def __init__(self, stale_seconds: float = 5.0) -> None:
        self.stale_seconds = stale_seconds
        self._results: dict[str, tuple[bool, float]] = {}
        self._unused: set[str] = set()

    def record(self, name: str, reachable: bool, now: float) -> None:
        self._results[name] = (reachable, now)

    def not_used(self, name: str) -> None:
        self._unused.add(name)

    def state(self, name: str, now: float) -> Reach:
        if name in self._unused:
            return "not_used"
        result = self._results.get(name)
        if result is None:
            return "unknown"  # not probed yet: the worker's start says the rest
        reachable, at = result
        return "reachable" if reachable and now - at <= self.stale_seconds else "unreachable"


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything `/health` decides from, gathered by the web page."""

    tables_recovered: bool
    rebalancing: bool
    broker: Reach
    redis: Reach
    cooldowns: str  # "exact" | "degraded" (stream.handlers.cooldowns)
    dedup: str  # "ok" | "waiting" | "refilling" (stream.handlers.dedup)
    stalled_agents: Sequence[str] = ()
    stalled_partitions: Sequence[str] = ()
    progress: Mapping[str, float] = field(default_factory=dict)


def report(
    facts: Facts, is_event_partition: Callable[[str], bool], degraded_ready: bool = True
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of `/health`."""
    held_back = facts.dedup != "ok"
    agents = [a for a in facts.stalled_agents if not (held_back and a == STATS_AGENT)]
    partitions = [p for p in facts.stalled_partitions if not (held_back and is_event_partition(p))]
    unavailable = _present(
        tables_recovering=not facts.tables_recovered,
        rebalancing=facts.rebalancing,
        broker_unreachable=facts.broker == "unreachable",
        agent_stalled=bool(agents),
        partition_stalled=bool(partitions),
    )
    degraded = _present(
        redis_unreachable=facts.redis == "unreachable",
        cooldowns_degraded=facts.cooldowns == "degraded",
        dedup_waiting=facts.dedup == "waiting",
        dedup_refilling=facts.dedup == "refilling",
    )
    status: Status = "unavailable" if unavailable else "degraded" if degraded else "ok"
    ready = status == "ok" or (status == "degraded" and degraded_ready)
    return (200 if ready else 503), {
        "status": status,
        "ready": ready,
        "reasons": unavailable + degraded,
        "tables_recovered": facts.tables_recovered,
        "rebalancing": facts.rebalancing,
        "broker": facts.broker,
        "redis": facts.redis,
        "cooldowns": facts.cooldowns,
        "dedup": facts.dedup,
        "last_progress_seconds_ago": dict(facts.progress),
        "stalled_agents": agents,
        "stalled_partitions": partitions,
    }


def _present(**conditions: bool) -> list[str]:
    """The names of the conditions that hold, in order."""
    return [name for name, holds in conditions.items() if holds]
