"""HTTP endpoints on the worker's web server (CS_WEB_HOST:CS_WEB_PORT): Prometheus
`/metrics` and `/health`.

`/health` reports progress and reachability, not just a live process
(`stream.ops.health` decides; deploy/README.md "Health" documents the states): 200 "ok"
when tables have been recovered, no rebalance is in progress, the broker and Redis answer
the background probe (`stream.worker.agents.probe_dependencies`), no agent has held a
batch for `stall_seconds` without finishing it (`stream.worker.runtime.progress`) and no
partition with messages waiting has gone `stall_seconds` without its committed offset
moving (`stream.ops.lag`); "degraded" (200 unless `CS_DEGRADED_READY=false`) while
Redis does not answer or is being caught up; "unavailable" (503) otherwise. Nothing here
makes a network call. The body also says how often partitions resumed from their durable
record behind the group's commit, how many requests came again after they were
answered, and how many partitions still have messages to read back
(`stream.worker.resume`).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.ops.health import Facts, report
from stream.worker import resume
from stream.worker.app import app, settings
from stream.worker.delivery import recovery_completed
from stream.worker.runtime import consumer_lag, metrics, progress, runtime
from stream.worker.topics import OUTCOME_KINDS


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    # aiohttp takes the charset separately; the exposition format is UTF-8 text.
    content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
    return web.bytes(generate_latest(metrics.registry), content_type=content_type)


def health_report(now: float) -> tuple[int, dict[str, Any]]:
    cooldowns, dedup = runtime.states()
    facts = Facts(
        tables_recovered=recovery_completed(app),
        rebalancing=bool(app.rebalancing),
        broker=runtime.reachability.state("broker", now),
        redis=runtime.reachability.state("redis", now),
        cooldowns=cooldowns,
        dedup=dedup,
        stalled_agents=progress.stalled_agents(now),
        stalled_partitions=consumer_lag.stalled(now),
        progress=progress.ages(now),
    )
    status, body = report(facts, _is_event_partition, settings.degraded_ready)
    return status, {**body, **resume.health(app)}


def _is_event_partition(position: str) -> bool:
    return position.rsplit(":", 1)[0] in OUTCOME_KINDS


@app.page("/health")
async def health_page(web: Any, request: Any) -> Any:
    status, body = health_report(time.time())
    return web.json(body, status=status)
