"""One account's decisions for the requests of a batch: on the scalar path when there are
only a few, else with one vectorized `Selector.decide_batch`.

At a few requests per call (a sender's lingering batch at a low rate, single
`selection_request.v1` messages) the vectorized path costs a few hundred microseconds
whatever the number of requests: the posterior, the request columns and a dozen small
numpy operations per call, and as many again to count the decisions into the metrics.
`Selector.decide_each` makes the same decisions one by one, with the same law and the
same exact propensities, and `DecisionMetrics.observe_each` counts them the same way.
The `model` method, manual campaigns and requests with nothing eligible keep the
vectorized path (the scalar one declines them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector import AccountStats, RequestBatch, Selector
from selector.batch import BatchDecision, Decision, Request
from selector.model.artifact import ContextualModel
from stream.ops.exposure import DecisionMetrics

# Up to this many requests of one account are decided one by one: beyond it the
# vectorized path's fixed cost is spread thin enough to win (`python -m bench select-small`).
SMALL = 32


@dataclass(frozen=True, slots=True)
class Asked:
    """What one account's requests ask: the decoded requests, their decision times and
    cooldown state, their profile records (None when the account does not use them)."""

    account_id: str
    requests: Sequence[Any]
    times: Sequence[float]
    last_sent: Sequence[Mapping[str, float]]
    records: Any = None
    modelled: bool = False


def decide_account(
    selector: Selector,
    stats: AccountStats,
    asked: Asked,
    rng: np.random.Generator,
    rotation: Mapping[str, int] | None,
    model: ContextualModel | None,
    metrics: DecisionMetrics,
) -> tuple[list[Decision], BatchDecision | None]:
    """The decisions in request order, counted into `metrics`, and the vectorized
    result when the batch path made them (its rotation and model columns)."""
    requests = asked.requests
    campaigns = [r.campaign_id for r in requests]
    if not asked.modelled and asked.records is None and len(requests) <= SMALL:
        one_by_one = [
            Request(c, r.contact_id, t, h)
            for c, r, t, h in zip(campaigns, requests, asked.times, asked.last_sent, strict=True)
        ]
        decided = selector.decide_each(stats, one_by_one, rng)
        if decided is not None:
            metrics.observe_each(asked.account_id, selector.view, campaigns, decided)
            return decided, None
    batch = RequestBatch.from_columns(
        campaigns, [r.contact_id for r in requests], asked.times, asked.last_sent, asked.records
    )
    decision = selector.decide_batch(stats, batch, rng, rotation, model)
    metrics.observe(asked.account_id, selector.view, batch, decision)
    return decision.decisions(), decision
