"""The end-to-end demo: a simulated sender against a real worker, through Kafka and Redis.

`creative-select demo` (see `stream.commands.demo`) starts a local Kafka broker and Redis
(or reuses given ones), creates the topics, starts one worker process and publishes the
scenario's account. Then a simulated sender plays the scenario in rounds over simulated
time: each round it asks the service for a creative for a batch of contacts
(`SelectionClient.select_many`, the simulated time as the request time), draws clicks and
conversions from the scenario's true rates for the creative each contact got, publishes
the sends at once and the clicks and conversions once the simulated clock has passed the
send time plus the scenario's feedback delay. The learning loop closes through Kafka: the
worker's stats agent applies the events and its selection agent decides on them.

At the end the report is built from what went through Kafka alone: the sends, clicks,
conversions and selection-responses topics are read from the beginning, each send joined
to its answer by `request_id`, and `selector.report.build_report` summarizes them.

Simulated time is epoch seconds that end before the wall clock, so the worker's
too-far-in-the-future check never rejects an event; the report counts from its start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selector.domain import DAY_SECONDS
from selector.report import Report, build_report
from selector.scenario import Scenario
from stream.adapters.catalog_files import publish, validate_documents
from stream.demo.result import build_result, read_topics
from stream.demo.sender import Sender, SenderStats, account_document
from stream.demo.training import DemoTrainer, model_lift, summary, with_model_methods
from stream.local.harness import Services

CATALOG_METRIC = "creative_selection_catalog_updates_total"
EVENTS_METRIC = "creative_selection_events_total"


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    report: Report
    sender: SenderStats
    kafka_counts: dict[str, int]
    model: dict[str, Any] | None = None  # `--method model`: trainings and the lift

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "sender": dataclasses.asdict(self.sender),
            "kafka": self.kafka_counts,
            **({"model": self.model} if self.model is not None else {}),
        }


async def run_demo(
    scenario: Scenario,
    found: Services,
    *,
    sends: int,
    seed: int,
    batch_size: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    method: str | None = None,
) -> DemoOutcome:
    """Publish the catalog, play the sender, wait for the worker, and report from Kafka.
    `method="model"` splits the automated traffic between `model` and Thompson single-step
    and trains the model during the run (`stream.demo.training`)."""
    settings, worker = found.settings, found.worker
    before = await asyncio.to_thread(worker.metric, CATALOG_METRIC)
    document = account_document(scenario)
    if method == "model":
        document = with_model_methods(document)
    catalogs = validate_documents([document], settings)
    await publish(catalogs, settings)
    await worker.wait_for(CATALOG_METRIC, before + 4, timeout=60.0)
    batch = min(batch_size or scenario.batch_size, scenario.contacts)
    seconds = sends / scenario.sends_per_day * DAY_SECONDS
    # simulated time ends (feedback included) an hour before the wall clock
    start_time = math.floor(time.time() - seconds - scenario.feedback_delay_seconds - 3600)
    sender = Sender(scenario, settings, worker, sends, seed, start_time, batch)
    trainer = DemoTrainer(scenario, settings, worker, start_time) if method == "model" else None
    stats = await sender.run(progress, trainer.before_round if trainer is not None else None)
    applied = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="applied")
    messages = await read_topics(settings, ["send", "click", "conversion", "selection_response"])
    result, counts = build_result(
        scenario, messages, sender.segment_of, start_time, seed, scenario.account.account_id
    )
    counts["events_applied"] = int(applied)
    model = summary(trainer, model_lift(result)) if trainer is not None else None
    return DemoOutcome(build_report(result), stats, counts, model)
