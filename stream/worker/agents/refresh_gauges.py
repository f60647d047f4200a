"""The gauges that describe state rather than events: consumer lag per partition (and
whether consumption advances, for `/health`) and the exposure measures (creative share,
diversity, learning pools). Refreshed by a timer, so their cost never lands on a
message."""

from __future__ import annotations

import logging
import time

from selector import AccountStats
from stream.worker.app import app
from stream.worker.delivery import consumer_offsets
from stream.worker.runtime import consumer_lag, runtime
from stream.worker.tables import account_to_stats

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0


def _stats(account_id: str) -> AccountStats | None:
    ledger = account_to_stats.get(account_id.encode())
    return ledger.stats if ledger is not None else None


@app.timer(interval=REFRESH_SECONDS)  # type: ignore[untyped-decorator]
async def refresh_gauges() -> None:
    now = time.time()
    runtime.selection.decision_metrics.refresh(now, _stats)
    try:
        offsets = await consumer_offsets(app.consumer, consumer_lag.topics)
        consumer_lag.refresh(*offsets, now)
    except Exception as exc:  # not started, or mid-rebalance: the next tick tries again
        consumer_lag.forget()
        log.debug("consumer lag not available: %r", exc)
