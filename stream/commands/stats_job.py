"""`creative-select stats-job`: the daily reconciliation and parameter snapshot."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  creative-select stats-job                     # reconcile, correct, publish the snapshot
  creative-select stats-job --report-only --json out/drift.json   # look, publish nothing
  creative-select stats-job --snapshot-only     # only the parameter snapshot, now
  creative-select stats-job --metrics-file /var/lib/node-exporter/stats_job.prom
  CS_PUSHGATEWAY_URL=http://pushgateway:9091 creative-select stats-job

It reads the stats table's changelog (the cut), the catalog topics and the sends, clicks
and conversions topics from their start, with CS_* settings like the worker's (same
CS_APP_ID and CS_TOPIC_PREFIX). A worker must be running: it applies the corrections.
Exit status: 0 done (drift or not), 2 the job could not run (the message says why).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "stats-job",
        help="daily job: recompute stats from the event topics, correct drift, publish parameters",
        description=(
            "Recompute every account's counts from the event topics with the stats agent's "
            "own decoding, catalog check and dedup, compare them with the streamed stats at "
            "an exact cut, publish the differences to stats-corrections (the stats agent "
            "applies each once), then publish every account's Thompson parameters to the "
            "thompson-params topic and to Redis (params:<account_id>). It also recounts "
            "every contact's send-time slot counts from the sends and clicks topics and "
            "corrects those in Redis that drifted."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--report-only", action="store_true", help="compare and report; publish nothing"
    )
    mode.add_argument(
        "--snapshot-only", action="store_true", help="only publish the parameter snapshot"
    )
    parser.add_argument(
        "--no-snapshot", action="store_true", help="correct, but publish no snapshot"
    )
    parser.add_argument("--processes", type=int, default=2, help="reading processes (default 2)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the worker (default 120)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument(
        "--metrics-file", type=Path, default=None, help="Prometheus textfile to write"
    )
    parser.add_argument(
        "--top", type=int, default=20, help="drifting creatives to print (default 20)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--no-send-times",
        action="store_true",
        help="leave the contacts' send-time slot counts in Redis unchecked",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from stream.adapters.kafka_reader import ReadError
    from stream.job import run as stats_job
    from stream.job.cut import JobError
    from stream.ops.metrics import StatsJobMetrics
    from stream.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        if args.snapshot_only:
            count = stats_job.publish_snapshot(settings, args.timeout)
            print(f"published the parameters of {count} account(s)")
            return 0
        options = stats_job.Options(
            report_only=args.report_only,
            snapshot=not args.no_snapshot,
            processes=max(1, args.processes),
            timeout=args.timeout,
            send_times=not args.no_send_times,
        )
        with _progress_bar(args.no_progress) as bar:
            outcome = stats_job.run(settings, options, bar)
    except (JobError, ReadError, SettingsError, KafkaException) as exc:
        print(f"stats-job: error: {exc}", file=sys.stderr)
        return 2
    from stream.job import report as stats_report

    print(stats_report.text(outcome, args.top))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(stats_report.json_bytes(outcome))
    metrics = StatsJobMetrics()
    stats_report.record(metrics, outcome, time.time())
    stats_report.export(metrics, args.metrics_file, settings.pushgateway_url)
    return 0


class _progress_bar:
    """A tqdm bar fed with (records read, records to read)."""

    def __init__(self, disabled: bool) -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(
            total=0, unit=" records", unit_scale=True, disable=disabled, desc="recompute"
        )

    def __enter__(self) -> _progress_bar:
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
