"""`creative-select train`: train the contextual models and publish the promoted ones."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """\
examples:
  creative-select train                          # every account due whose methods use model
  creative-select train --account acme --force   # this account now, whatever its interval
  creative-select train --report-only --json out/train.json   # train and gate, publish nothing
  CS_PUSHGATEWAY_URL=http://pushgateway:9091 creative-select train

It reads the catalog topics, the models topic and the sends, clicks and conversions
topics from their start, with CS_* settings like the worker's (same CS_TOPIC_PREFIX).
Workers load a published model from the models topic without a restart.
Exit status: 0 done (promoted or not), 2 the job could not run (the message says why).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "train",
        help="train each account's contextual model; publish it if the gate promotes it",
        description=(
            "For each account whose catalog routes traffic to the model method (or each "
            "--account) and whose model is older than its model_training_interval_seconds: "
            "build point-in-time examples from the matured sends of the event topics, fit "
            "the Bayesian click and conversion models, compare the candidate with the model "
            "in use on held-out contacts (normalized entropy lower, calibration within "
            "0.9-1.1), and publish a promoted candidate to the models topic."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--account", action="append", default=[], help="train this account")
    parser.add_argument("--force", action="store_true", help="train even if not due")
    parser.add_argument("--report-only", action="store_true", help="train and gate; publish none")
    parser.add_argument(
        "--min-sends", type=int, default=1000, help="matured sends needed (default 1000)"
    )
    parser.add_argument(
        "--attribution-hours",
        type=float,
        default=72.0,
        help="a send is matured this long after it was made (default 72)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument(
        "--metrics-file", type=Path, default=None, help="Prometheus textfile to write"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from stream.adapters.kafka_reader import ReadError
    from stream.job import train_io, train_report
    from stream.job.train import TrainOptions
    from stream.ops.model_metrics import TrainJobMetrics
    from stream.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        options = TrainOptions(
            accounts=tuple(args.account),
            min_sends=max(1, args.min_sends),
            attribution_seconds=args.attribution_hours * 3600.0,
            retention_seconds=settings.profile_retention_days * 86400.0,
            force=args.force,
            report_only=args.report_only,
        )
        outcome = train_io.run(settings, options)
    except (ReadError, SettingsError, KafkaException) as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    print(train_report.text(outcome))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(train_report.json_bytes(outcome))
    metrics = TrainJobMetrics()
    train_report.record(metrics, outcome, time.time())
    train_report.export(metrics, args.metrics_file, settings.pushgateway_url)
    return 0
