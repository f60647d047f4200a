"""`creative-select bench BENCHMARK ...`: run a benchmark of DESIGN.md section 6.

The benchmarks live in the source checkout's `bench/` package, not in the installed
service: this command starts `python -m bench` in a fresh interpreter (so a benchmark's
allocator and CPU pinning are its own) and passes every argument through.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = """\
examples:
  creative-select bench selector --quick     # the selection core vs River and MABWiser
  creative-select bench stream --quick       # through Kafka, one worker
  creative-select bench recompute --quick    # the daily job's recomputation
  creative-select bench single-decide        # one decide() at a time vs the peers
  creative-select bench peer-regret          # regret vs MABWiser and River, same stream
  creative-select bench selector --help      # a benchmark's own options

Run from the root of a source checkout (where bench/ is); `python -m bench` is the same."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (from a source checkout)",
        description="Run one of the benchmarks in the checkout's bench/ package: "
        "selector, stream, recompute. Arguments after BENCHMARK go to it.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "benchmark",
        metavar="BENCHMARK",
        help="selector, stream, recompute, single-decide or peer-regret",
    )
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (Path.cwd() / "bench" / "__main__.py").is_file():
        print(
            "error: the benchmarks are not installed with the service; run this command from "
            "the root of a source checkout (the folder with bench/)",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, "-m", "bench", args.benchmark, *args.options])
