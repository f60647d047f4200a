"""The demo's `model` method: the training job run on the demo's topics at the account's
training interval of simulated time, and the comparison of `model` with Thompson
single-step on the same run.

Before each round whose simulated time has passed the next training time, the training
job's library (`stream.job.train_io.run`, what `creative-select train` runs) trains the
account with the simulated time as its clock: the sends whose feedback has arrived
(older than the scenario's feedback delay) are its examples, and a model the gate
promotes is published to the models topic. The round then waits until the worker has
loaded it, so each decision is made with the model its simulated time would have.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from selector.batch import ARMS, DECIDED_BY
from selector.intervals import Lift, ratio_lift
from selector.scenario import Scenario
from selector.simulate import SimulationResult
from stream.job import train_io
from stream.job.train import TrainOptions
from stream.local.harness import Worker
from stream.settings import Settings

LOADS_METRIC = "creative_selection_model_loads_total"
MIN_SENDS = 1000
# both methods share the automated arm, so their lift is an A/B comparison on the same days
MODEL_METHODS = {"model": 50.0, "thompson_single_step": 50.0}


@dataclass(frozen=True, slots=True)
class Training:
    offset_days: float
    reason: str
    version: int | None
    sends: int


class DemoTrainer:
    def __init__(self, scenario: Scenario, settings: Settings, worker: Worker, start: float):
        self.account_id = scenario.account.account_id
        self.interval = scenario.account.settings.model_training_interval_seconds
        self.settings, self.worker, self.start = settings, worker, start
        self.options = TrainOptions(
            accounts=(self.account_id,),
            min_sends=MIN_SENDS,
            attribution_seconds=scenario.feedback_delay_seconds + 60.0,
            force=True,
        )
        self.next_offset = self.interval
        self.trainings: list[Training] = []

    async def before_round(self, offset: float) -> None:
        """Train when the round's simulated time has passed the next training time."""
        if self.interval <= 0 or offset < self.next_offset:
            return
        while self.next_offset <= offset:
            self.next_offset += self.interval
        loaded = await asyncio.to_thread(self.worker.metric, LOADS_METRIC, outcome="loaded")
        now = self.start + offset
        run = await asyncio.to_thread(train_io.run, self.settings, self.options, lambda: now)
        for r in run.results:
            self.trainings.append(Training(offset / 86_400, r.reason, r.version, r.sends))
        if run.published:
            await self.worker.wait_for(LOADS_METRIC, loaded + run.published, outcome="loaded")


def with_model_methods(document: dict[str, Any]) -> dict[str, Any]:
    """The account document with its automated traffic split between the two methods."""
    settings = {**document["settings"], "methods": dict(MODEL_METHODS)}
    return {**document, "settings": settings}


def model_lift(result: SimulationResult) -> Lift:
    """Revenue per send of `model` over Thompson single-step, automated sends only."""
    automated = result.arm == ARMS.index("automated")
    model = automated & (result.method == DECIDED_BY.index("model"))
    thompson = automated & (result.method == DECIDED_BY.index("thompson_single_step"))
    return ratio_lift(
        "revenue_per_send",
        result.revenue[model],
        result.revenue[thompson],
        result.contact[model],
        result.contact[thompson],
    )


def summary(trainer: DemoTrainer, lift: Lift) -> dict[str, Any]:
    return {
        "trainings": [dataclasses.asdict(t) for t in trainer.trainings],
        "model_over_thompson_rps": {
            "model": lift.treatment,
            "thompson_single_step": lift.control,
            "lift": lift.lift,
            "low": lift.low,
            "high": lift.high,
            "confidence": lift.confidence,
        },
    }
