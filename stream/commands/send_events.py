"""`creative-select send-events FILE`: publish sends, clicks and conversions from a JSON
Lines file, each line to the topic its `schema` names, keyed by its account.

Each line is checked by the decoder the stats agents run; a line it rejects is reported
with its number and reason, skipped, and makes the exit code non-zero. A line is sent
as written (upstream may add fields the decoder ignores). This is the simple path for
demos and tests; the replay tool adds resumability.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from stream.adapters.event_files import send_file
from stream.settings import Settings, SettingsError

EXAMPLE = """\
examples:
  creative-select send-events out/events.jsonl
  creative-select send-events out/events.jsonl --rate 2000

A line is one send.v1, click.v1 or conversion.v1 object, e.g.
  {"schema": "send.v1", "event_id": "snd-1", "account_id": "acme-lending",
   "campaign_id": "welcome-series", "contact_id": "ct-1", "creative_id": "loan-low-apr",
   "time": 1767225600.0}
Exit codes: 0 all sent, 1 some lines invalid (the rest sent) or Kafka failed, 2 bad usage."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "send-events",
        help="publish sends, clicks and conversions from a JSON Lines file",
        description="Publish each line of FILE (a send.v1, click.v1 or conversion.v1 "
        "object) to its topic, keyed by account_id. Invalid lines are reported with "
        "their line number and skipped.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="JSON Lines file")
    parser.add_argument(
        "--rate", type=float, metavar="N", help="at most N messages per second (default: no limit)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        print("error: --rate must be > 0", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        totals = asyncio.run(send_file(args.file, settings, rate=args.rate))
    except (KafkaError, OSError) as exc:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {exc!r}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(f"sent {totals.sent} events in {elapsed:.1f} s, {totals.invalid} invalid lines skipped")
    return 1 if totals.invalid else 0
