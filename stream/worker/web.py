"""HTTP endpoints on the worker's web server (CS_WEB_HOST:CS_WEB_PORT): Prometheus
`/metrics` and `/health`.

`/health` reports progress, not just a live process: 200 only when tables have been
recovered, no rebalance is in progress, no agent has held a batch for `stall_seconds`
without finishing it (per-agent times from `stream.worker.runtime.progress`), and no partition
with messages waiting has gone `stall_seconds` without its committed offset moving
(`stream.ops.lag`, refreshed by a timer). It also says how often partitions resumed from
their durable record behind the group's commit, how many requests came again after they
were answered, and how many partitions still have messages to read back
(`stream.worker.resume`).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.worker import resume
from stream.worker.app import app
from stream.worker.delivery import recovery_completed
from stream.worker.runtime import consumer_lag, metrics, progress


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    # aiohttp takes the charset separately; the exposition format is UTF-8 text.
    content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
    return web.bytes(generate_latest(metrics.registry), content_type=content_type)


def health_report(now: float) -> tuple[bool, dict[str, Any]]:
    recovered = recovery_completed(app)
    rebalancing = bool(app.rebalancing)
    partitions = consumer_lag.stalled(now)
    healthy = recovered and not rebalancing and not progress.stalled(now) and not partitions
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "tables_recovered": recovered,
        "rebalancing": rebalancing,
        "last_progress_seconds_ago": progress.ages(now),
        "stalled_agents": progress.stalled_agents(now),
        "stalled_partitions": partitions,
        **resume.health(app),
    }


@app.page("/health")
async def health_page(web: Any, request: Any) -> Any:
    healthy, body = health_report(time.time())
    return web.json(body, status=200 if healthy else 503)
