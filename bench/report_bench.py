"""Time of the live report over 10 million responses and events on one core (issue 14's
target: <= 2 minutes), the data generated in memory before the clock starts
(`bench.report_workload`).

Modes, each timed from the first record to the finished report (`selector.live_report`):
- `records`: decoded `stream.wire.messages` values, one iterable per topic
  (`report_from_records`, timed in its two steps: `accumulate`, which packs and joins,
  then `build_live_report`);
- `raw`: the JSON bytes as the topics hold them, decoded a batch at a time into columns
  (`stream.report.raw.report_from_bytes`, what `creative-select report` does with what it
  reads): everything but the Kafka reads. Before it, a pass that only decodes the same
  bytes (`stream.wire.columns.decode_columns`) says how much of that is decoding;
- `codec` (only with `--mode all`): the same bytes through `stream.wire.codec.decode`
  one value at a time (`selector.live_report.report_from_raw`), the way to compare with.

CPU time is the process's; the load average (1 minute) is read before and after each
mode, since wall time on a shared machine says little. Run it as
`python -m bench report [--records N | --quick] [--mode records|raw|codec|both|all]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from bench import machine_info, pinned
from bench.report_workload import raw_of, records_of, workload
from selector.live_pack import DTYPES
from selector.live_report import ReportOptions, accumulate, build_live_report, report_from_raw
from stream.report.raw import BATCH, report_from_bytes
from stream.wire import codec
from stream.wire.columns import decode_columns

DEFAULT_JSON = Path(__file__).parent / "results" / "report.json"
TARGET_SECONDS = 120.0  # CPU seconds for 10 million records, on one core
DECODERS = {"raw": "stream.wire.columns.decode_columns", "codec": "stream.wire.codec.decode"}


@dataclass(frozen=True, slots=True)
class Config:
    records: int = 10_000_000
    mode: str = "both"
    seed: int = 14
    pin_cpu: int | None = 0


QUICK = {"records": 200_000}
MODES = {
    "records": ("records",),
    "raw": ("raw",),
    "codec": ("codec",),
    "both": ("records", "raw"),
    "all": ("records", "raw", "codec"),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(mode: str, data: Any) -> dict[str, Any]:
    gc.collect()
    gc.disable()  # the records are long-lived; collection passes over them measure nothing
    start, cpu = time.perf_counter(), time.process_time()
    phases: dict[str, float] = {}
    load = _load()
    if mode == "records":  # report_from_records, in its two steps
        joined = accumulate(data, ReportOptions())
        phases["read_and_join_seconds"] = time.perf_counter() - start
        report = build_live_report(joined, ReportOptions())
        phases["report_seconds"] = time.perf_counter() - start - phases["read_and_join_seconds"]
    elif mode == "raw":
        report = report_from_bytes(data, ReportOptions())
    else:
        report = report_from_raw(data, codec.decode, ReportOptions())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    gc.enable()
    count = sum(report.records.values())
    packed = sum(DTYPES[k].itemsize * n for k, n in report.records.items())  # type: ignore[index]
    return {
        "mode": mode,
        "records": count,
        "load_average": [load, _load()],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        **phases,
        "packed_bytes_per_record": packed / max(count, 1),
        "records_per_second": count / seconds,
        "accounts": len(report.accounts),
        "reported_sends": sum(a.sends for a in report.accounts),
        "undecodable": report.undecodable,
        "unmatched": report.unmatched,
    }


def _load() -> float:
    return os.getloadavg()[0]


def decode_only(items: list[tuple[Any, bytes]], mode: str) -> dict[str, float]:
    """Decoding's share of a raw mode: decoding every value, nothing else."""
    gc.collect()
    gc.disable()
    start, cpu = time.perf_counter(), time.process_time()
    if mode == "codec":
        decode = codec.decode
        for kind, raw in items:
            decode(kind, raw)
    else:
        for kind, run in groupby(items, key=itemgetter(0)):
            values = [raw for _, raw in run]
            for at in range(0, len(values), BATCH):
                decode_columns(kind, values[at : at + BATCH])
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    gc.enable()
    return {"decode_only_seconds": seconds, "decode_only_cpu_seconds": cpu_seconds}


def run(config: Config) -> dict[str, Any]:
    results = []
    with pinned(config.pin_cpu):
        w = workload(config.records, config.seed)
        raw: Any = None
        for mode in MODES[config.mode]:
            started = time.perf_counter()
            if mode == "records":
                data: Any = records_of(w)
            else:
                raw = data = raw if raw is not None else raw_of(w)
            made = time.perf_counter() - started
            print(f"{mode}: generated in {made:.0f}s", file=sys.stderr, flush=True)
            split = decode_only(data, mode) if mode != "records" else {}
            results.append({**timed(mode, data), **split})
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
    head = f"{'mode':10}{'records':>14}{'wall s':>10}{'CPU s':>10}{'load':>11}{'records/s':>14}"
    lines = [head + f"{'<= 2 min / 10M':>18}"]
    for r in out["results"]:
        ok = (
            "-"
            if r["records"] < 10_000_000
            else "ok"
            if r["cpu_seconds"] <= TARGET_SECONDS
            else "SLOW"
        )
        lines.append(
            f"{r['mode']:10}{r['records']:>14,}{r['seconds']:>10.1f}{r['cpu_seconds']:>10.1f}"
            f"{'{:.1f}-{:.1f}'.format(*r['load_average']):>11}"
            f"{r['records_per_second']:>14,.0f}{ok:>18}"
        )
    for r in out["results"]:
        if "decode_only_seconds" in r:
            lines.append(
                f"{r['mode']}: of which decoding alone {r['decode_only_seconds']:.1f}s wall, "
                f"{r['decode_only_cpu_seconds']:.1f}s CPU ({DECODERS[r['mode']]})"
            )
        if "read_and_join_seconds" in r:
            lines.append(
                f"{r['mode']}: read and join {r['read_and_join_seconds']:.1f}s, "
                f"report {r['report_seconds']:.1f}s (wall)"
            )
    packed = out["results"][0]["packed_bytes_per_record"] if out["results"] else 0.0
    lines.append(f"packed rows: {packed:.1f} bytes per record")
    lines.append(f"peak RSS {out['peak_rss_mb']:,.0f} MB (generated data included)")
    if any(r["seconds"] > 1.2 * r["cpu_seconds"] for r in out["results"]):
        lines.append("wall time well above CPU time: the core was shared with other processes")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench report", description=__doc__.split("\n")[0]
    )
    defaults = Config()
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--mode", choices=tuple(MODES), default="both")
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
