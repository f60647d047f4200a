"""Time of the live report over 10 million responses and events on one core (issue 14's
target: <= 2 minutes), the data generated in memory before the clock starts
(`bench.report_workload`).

Modes, each timed from the first record to the finished report (`selector.live_report`):
- `records`: decoded `stream.messages` values, one iterable per topic
  (`report_from_records`): the join and the report;
- `raw`: the JSON bytes as the topics hold them, with `stream.codec.decode`
  (`report_from_raw`): decoding too, i.e. everything but the Kafka reads.

Run it as `python -m bench.report_bench [--records N | --quick] [--mode records|raw|both]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import machine_info, pinned
from bench.report_workload import raw_of, records_of, workload
from selector.live_report import ReportOptions, report_from_raw, report_from_records
from stream import codec

DEFAULT_JSON = Path(__file__).parent / "results" / "report.json"
TARGET_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Config:
    records: int = 10_000_000
    mode: str = "both"
    seed: int = 14
    pin_cpu: int | None = 0


QUICK = {"records": 200_000}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(mode: str, data: Any) -> dict[str, Any]:
    gc.collect()
    gc.disable()  # the records are long-lived; collection passes over them measure nothing
    start, cpu = time.perf_counter(), time.process_time()
    if mode == "records":
        report = report_from_records(data, ReportOptions())
    else:
        report = report_from_raw(data, codec.decode, ReportOptions())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    gc.enable()
    count = sum(report.records.values())
    return {
        "mode": mode,
        "records": count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "records_per_second": count / seconds,
        "accounts": len(report.accounts),
        "reported_sends": sum(a.sends for a in report.accounts),
        "undecodable": report.undecodable,
        "unmatched": report.unmatched,
    }


def run(config: Config) -> dict[str, Any]:
    results = []
    with pinned(config.pin_cpu):
        w = workload(config.records, config.seed)
        for mode in ("records", "raw"):
            if config.mode not in (mode, "both"):
                continue
            started = time.perf_counter()
            data: Any = records_of(w) if mode == "records" else raw_of(w)
            made = time.perf_counter() - started
            print(f"{mode}: generated in {made:.0f}s", file=sys.stderr, flush=True)
            results.append(timed(mode, data))
            print(f"{mode}: reported in {results[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
            del data
    return {
        "config": asdict(config),
        "machine": machine_info(),
        "peak_rss_mb": _peak_rss_mb(),
        "target_seconds": TARGET_SECONDS,
        "results": results,
    }


def format_table(out: dict[str, Any]) -> str:
    head = f"{'mode':10}{'records':>14}{'wall s':>10}{'CPU s':>10}{'records/s':>14}"
    lines = [head + f"{'<= 2 min / 10M':>18}"]
    for r in out["results"]:
        ok = (
            "-" if r["records"] < 10_000_000 else "ok" if r["seconds"] <= TARGET_SECONDS else "SLOW"
        )
        lines.append(
            f"{r['mode']:10}{r['records']:>14,}{r['seconds']:>10.1f}{r['cpu_seconds']:>10.1f}"
            f"{r['records_per_second']:>14,.0f}{ok:>18}"
        )
    lines.append(f"peak RSS {out['peak_rss_mb']:,.0f} MB (generated data included)")
    if any(r["seconds"] > 1.2 * r["cpu_seconds"] for r in out["results"]):
        lines.append("wall time well above CPU time: the core was shared with other processes")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report_bench", description=__doc__.split("\n")[0]
    )
    defaults = Config()
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--mode", choices=("records", "raw", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['records']:,} records")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU 0")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    records = QUICK["records"] if args.quick else args.records
    config = Config(records, args.mode, args.seed, None if args.no_pin else 0)
    out = run(config)
    print(format_table(out))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
