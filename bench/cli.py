"""`python -m bench BENCHMARK`: the benchmarks' command line (DESIGN.md section 6).

`creative-select bench ...` starts this in a fresh interpreter from a source checkout;
nothing in `stream/` imports `bench/`. The benchmark modules (River, MABWiser, tqdm) are
imported only when a benchmark runs, so `--help` stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream.process import tune_allocator

if TYPE_CHECKING:
    from bench.selector_bench import BenchConfig
    from bench.stream_bench import StreamConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of DESIGN.md section 6; `creative-select bench` runs this.",
    )
    kinds = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    selector = kinds.add_parser(
        "selector",
        help="decisions/s of the selection core vs River and MABWiser",
        description=(
            "Decisions/s for 5, 10 and 50 creatives, clicks and revenue goals, one request "
            "at a time and in batches, against River's and MABWiser's Thompson sampling and "
            "numpy's Beta sampler on the same posteriors. Table on stdout, JSON to --json."
        ),
    )
    add_selector_arguments(selector)
    selector.set_defaults(func=run_selector)
    stream = kinds.add_parser(
        "stream",
        help="selections/s, latency and stats events/s through Kafka, one worker",
        description=(
            "Starts Kafka (KRaft), Redis and one worker, then measures selections/s at full "
            "speed, request->response latency at a fixed rate (open loop) and stats events/s "
            "with dedup on, each next to plain aiokafka's rates on the same messages. Table "
            "on stdout, JSON to --json."
        ),
    )
    add_stream_arguments(stream)
    stream.set_defaults(func=run_stream)
    add_recompute_parser(kinds)
    for name, module in DELEGATED.items():
        kinds.add_parser(name, help=f"see python -m bench {name} --help ({module})")
    return parser


# Benchmarks with a command line of their own: `python -m bench NAME ...` runs
# `python -m MODULE ...` in this interpreter.
DELEGATED = {
    "single-decide": "bench.single_decide",
    "peer-regret": "bench.peer_regret",
    "report": "bench.report_bench",
    "sendtime": "bench.sendtime_bench",
    "model": "bench.model_bench",
    "ingest": "bench.ingest_bench",
    "select-small": "bench.select_small",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then tune the allocator unless `--no-tune-allocator` (this interpreter has
    not tuned it yet, so the untuned measurement is real), then run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    if not getattr(args, "no_tune_allocator", False):
        tune_allocator()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_recompute_parser(kinds: Any) -> None:
    recompute = kinds.add_parser(
        "recompute",
        help="events/s of the daily job's recomputation vs the raw consume rate",
        description=(
            "Produce N events to a local Kafka (started for the run unless --bootstrap), "
            "then time the raw consume rate of confluent-kafka and aiokafka and the daily "
            "job's recomputation (decode, validate, dedup, fold) over the same partitions. "
            "Table on stdout, JSON to --json (default bench/results/recompute.json)."
        ),
        epilog=(
            "examples:\n  creative-select bench recompute --events 10000000\n"
            "  creative-select bench recompute --quick"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recompute.add_argument("--events", type=_at_least(1, int), default=10_000_000)
    recompute.add_argument("--quick", action="store_true", help="200,000 events (~30 s)")
    recompute.add_argument("--processes", type=_at_least(1, int), default=2)
    recompute.add_argument(
        "--bootstrap", default=None, help="an existing Kafka (default: start one)"
    )
    recompute.add_argument("--json", type=Path, default=None)
    recompute.add_argument("--no-progress", action="store_true")
    recompute.set_defaults(func=run_recompute)


def run_recompute(args: argparse.Namespace) -> int:
    from bench.recompute_bench import Config, run

    events = 200_000 if args.quick else args.events
    run(Config(events, args.processes, args.bootstrap, not args.no_progress), args.json)
    return 0


def _creatives(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 5,10,50; got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"creative counts must be >= 1; got {text!r}")
    return counts


def _at_least(low: float, kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}; got {text}")
        return value

    return parse


def add_selector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 30 s)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON report (default bench/results/selector.json)",
    )
    parser.add_argument(
        "--no-tune-allocator",
        action="store_true",
        help="measure without stream.process.tune_allocator",
    )
    parser.add_argument("--creatives", type=_creatives, default=(5, 10, 50), metavar="5,10,50")
    parser.add_argument(
        "--repeats", type=_at_least(1, int), default=None, help="repetitions per workload"
    )
    parser.add_argument(
        "--min-seconds",
        type=_at_least(0.0, float),
        default=None,
        help="minimum duration of a repetition",
    )
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to; -1: do not pin")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    from bench.selector_bench import QUICK, BenchConfig

    timing: dict[str, Any] = dict(QUICK) if args.quick else {}
    if args.repeats is not None:
        timing["repeats"] = args.repeats
    if args.min_seconds is not None:
        timing["min_seconds"] = args.min_seconds
    return BenchConfig(
        creatives=tuple(args.creatives),
        tune_allocator=not args.no_tune_allocator,
        pin_cpu=None if args.cpu < 0 else args.cpu,
        progress=not args.no_progress,
        **timing,
    )


def run_selector(args: argparse.Namespace) -> int:
    from bench.selector_bench import report

    report(config_from_args(args), args.json)
    return 0


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    count, seconds = _at_least(1, int), _at_least(0.0, float)
    parser.add_argument("--quick", action="store_true", help="smoke run (~30-60 s)")
    parser.add_argument("--json", type=Path, default=None, help="default bench/results/stream.json")
    parser.add_argument("--requests", type=count, help="requests of the max-rate run")
    parser.add_argument("--events", type=count, help="sends, clicks and conversions")
    parser.add_argument("--raw-messages", type=count, help="messages per raw aiokafka probe")
    parser.add_argument("--rate", type=_at_least(1.0, float), help="requests/s (default 2000)")
    parser.add_argument("--latency-seconds", type=seconds, help="length of the paced run")
    parser.add_argument("--warmup-seconds", type=seconds, help="paced requests not counted")
    parser.add_argument("--accounts", type=count, help="accounts (10 creatives each)")
    parser.add_argument("--contacts", type=count, help="distinct contacts")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the worker to a core")
    parser.add_argument("--batch", type=count, help="requests per message (1: single, default 100)")
    parser.add_argument("--linger-ms", type=seconds, help="the paced sender's linger (default 2)")
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def stream_config_from_args(args: argparse.Namespace) -> StreamConfig:
    from bench.stream_bench import QUICK, StreamConfig

    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("requests", "events", "raw_messages", "rate", "latency_seconds"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    for name in ("warmup_seconds", "accounts", "contacts", "bootstrap", "redis_url", "batch"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.linger_ms is not None:
        values["linger_ms"] = args.linger_ms
    return StreamConfig(pin=not args.no_pin, progress=not args.no_progress, **values)


def run_stream(args: argparse.Namespace) -> int:
    from bench.stream_bench import report

    report(stream_config_from_args(args), args.json)
    return 0
