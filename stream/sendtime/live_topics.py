"""Send-time results over live topics: read the send-time answers, sends and clicks off
the topics and print `stream.sendtime.live.sendtime_results`; or first publish a
simulated experiment there, to see the live path give the simulator's figures.

    python -m stream.sendtime.live_topics                      # the topics as they are
    python -m stream.sendtime.live_topics --publish scenarios/sendtime_pitfall.yaml

Settings (the broker, `CS_TOPIC_PREFIX`) come from the `CS_*` environment. `--publish`
runs the scenario's standard and launch-alignment experiments, publishes their answers to
`send-time-responses` and their sends and clicks to the event topics under the account
`--account`, reads everything back and prints both tables.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one BLAS thread

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from selector.sendtime.report import build_report
from selector.sendtime.scenario import sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate
from stream.adapters.kafka_reader import open_consumer, read_ranges, watermarks
from stream.adapters.producer import open_producer, send_messages
from stream.adapters.topic_specs import all_topics, ensure_topics
from stream.sendtime.live import SendTimeResults, messages_of_run, sendtime_results
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import open_events
from stream.wire.messages import ClickEvent, Message, SendEvent, SendTimeAnswer, SendTimeError

KINDS = {"send-time-responses": "send_time_response", "sends": "send", "clicks": "click"}


async def publish(settings: Settings, messages: Sequence[Message], chunk: int = 20_000) -> int:
    """Publish messages to their topics (created if missing), all stored on return."""
    await ensure_topics(settings, all_topics(settings))
    async with open_producer(settings, linger_ms=20, max_batch_size=262_144) as producer:
        for start in range(0, len(messages), chunk):
            deliveries = await send_messages(producer, settings, messages[start : start + chunk])
            await asyncio.gather(*deliveries)
    return len(messages)


def read(
    settings: Settings,
) -> tuple[list[SendTimeAnswer | SendTimeError], list[SendEvent], list[ClickEvent]]:
    """Every answer, send and click on the topics now (records that do not decode are
    skipped)."""
    found: dict[str, list[Any]] = {kind: [] for kind in KINDS.values()}
    kind_of = {settings.topic(name): kind for name, kind in KINDS.items()}
    consumer = open_consumer(settings, group_id=f"{settings.app_id}-sendtime-report")
    try:
        tps = [(t, p) for t in kind_of for p in range(settings.partitions)]
        ranges = watermarks(consumer, tps)

        def keep(topic: str, _partition: int, run: list[Any]) -> None:
            kind = kind_of[topic]
            for record in run:
                if kind == "send_time_response":
                    values = [codec.decode(kind, record.value())]
                else:  # single events and event_batch.v1 messages
                    opened = open_events(kind, record.value())
                    items = () if isinstance(opened, codec.Rejected) else opened.items
                    values = [item.value for item in items]
                found[kind] += [v for v in values if not isinstance(v, codec.Rejected)]

        read_ranges(consumer, ranges, keep)
    finally:
        consumer.close()
    return found["send_time_response"], found["send"], found["click"]


def results(settings: Settings, window_hours: float, zone: str, min_days: int) -> SendTimeResults:
    answers, sends, clicks = read(settings)
    return sendtime_results(
        answers, sends, clicks, window_seconds=window_hours * 3600.0, account_zone=zone,
        min_week_days=min_days,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.sendtime.live_topics",
        description="Send-time lift (naive, same weekday, weekly, launch alignment) from the "
        "send-time answers, sends and clicks on the topics.",
    )
    parser.add_argument("--publish", type=Path, metavar="SCENARIO", help="first publish a "
                        "simulated experiment of this send-time scenario")  # fmt: skip
    parser.add_argument("--contacts", type=int, help="override the scenario's contacts")
    parser.add_argument("--account", default="sendtime-sim", help="account of what is published")
    parser.add_argument("--window-hours", type=float, default=72.0, help="outcome window")
    parser.add_argument("--zone", default="UTC", help="the account's zone (launch days)")
    parser.add_argument("--min-week-days", type=int, default=5)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    window, zone, min_days = args.window_hours, args.zone, args.min_week_days
    if args.publish is not None:
        doc = yaml.safe_load(args.publish.read_text())
        if args.contacts:
            doc["contacts"] = args.contacts
        scenario = sendtime_scenario_from_dict(doc)
        window, zone = scenario.campaigns.outcome_window_hours, scenario.settings.zone
        min_days = scenario.min_week_days
        standard, aligned = simulate(scenario), simulate(scenario, aligned=True)
        print(build_report(standard, aligned, min_days).format_table(), end="\n\n")
        messages: list[Message] = []
        for run in (standard, aligned):
            for part in messages_of_run(run, scenario, args.account):
                messages += part
        started = time.monotonic()
        count = asyncio.run(publish(settings, messages))
        print(f"published {count:,} messages in {time.monotonic() - started:.1f} s", end="\n\n")
    started = time.monotonic()
    table = results(settings, window, zone, min_days).format_table()
    print(f"from the topics ({time.monotonic() - started:.1f} s):\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
