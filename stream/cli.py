"""`creative-select`: the single command-line entry point.

Each subcommand lives in its own module under `stream/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func` to the function to run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = (
    "simulate",
    "bench",
    "worker",
    "topics",
    "publish-catalog",
    "send-events",
    "replay",
    "demo",
    "stats-job",
    "train",
    "predict",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creative-select",
        description=(
            "Creative selection for SMS/email marketing: Thompson sampling with online "
            "Bayesian updates, streamed through Kafka."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"stream.commands.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from stream.process import limit_native_threads, tune_allocator

    limit_native_threads()  # before anything imports numpy
    tune_allocator()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
