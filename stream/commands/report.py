"""`creative-select report`: the lift report of a live deployment, from its topics.

The work is in `stream.report.topics` (reading and joining) and `stream.report`
(rendering); this module parses and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXAMPLE = """\
examples:
  creative-select report
  creative-select report --account acme --since 2026-11-01 --until 2026-12-01
  creative-select report --json out/report.json --plots out/plots --html out/report.html
  CS_TOPIC_PREFIX=demo1a2b3c4d- creative-select report --no-progress   # a demo's topics

Kafka and the topic prefix come from the usual settings (CS_KAFKA_BOOTSTRAP,
CS_TOPIC_PREFIX, ...). Times are ISO 8601, UTC unless they name a zone; --until is
exclusive. Sends are reported by their own time; their clicks and conversions are read
up to the attribution window (7 days) past --until. Records that do not decode or match
nothing are counted by reason at the end of the report, never fatal."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="report the lift (automated vs control, 95%% intervals) from the live topics",
        description=(
            "Read the selection responses, sends, clicks and conversions from the topics, "
            "join them, and report per account: automated vs control click rate, "
            "conversion rate and revenue per send with 95% intervals (contacts as "
            "clusters), per method, creative and day; the control split's sample-ratio "
            "test; the learning pool; creative shares; off-policy estimates; the model "
            "versions on the models topic with their held-out metrics; and, where the "
            "range holds send-time answers, the send-time lifts. Tables go to "
            "stdout; --json, --plots and --html write files."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--account",
        metavar="A",
        action="append",
        help="only this account (repeatable, or comma-separated; default: every account)",
    )
    parser.add_argument("--since", metavar="T", help="sends at or after T (ISO 8601)")
    parser.add_argument("--until", metavar="T", help="sends before T (ISO 8601)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the report as JSON")
    parser.add_argument("--plots", metavar="DIR", type=Path, help="write PNG plots into DIR")
    parser.add_argument(
        "--html", metavar="PATH", type=Path, help="write one self-contained HTML page"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the off-policy bootstrap (default 0)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr while reading"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stream.adapters.kafka_reader import ReadError
    from stream.replay.ranges import parse_time
    from stream.report import format_tables, to_json, write_html, write_plots
    from stream.report.topics import ReadRequest, accounts_option, report_topics
    from stream.settings import Settings

    try:
        since = None if args.since is None else parse_time(args.since)
        until = None if args.until is None else parse_time(args.until)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if since is not None and until is not None and until <= since:
        print("error: --until must be after --since", file=sys.stderr)
        return 2
    request = ReadRequest(accounts_option(args.account), since, until)
    try:
        report = report_topics(
            Settings.from_env(), request, seed=args.seed, progress=not args.no_progress
        )
    except (ReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_tables(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(report))
        print(f"wrote {args.json}")
    if args.plots is not None:
        for path in write_plots(report, args.plots):
            print(f"wrote {path}")
    if args.html is not None:
        print(f"wrote {write_html(report, args.html)}")
    return 0
