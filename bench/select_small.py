"""CPU per request of the selection service on small batches, without Kafka or Redis:
the scalar path (`Selector.decide_each`) against the vectorized one
(`Selector.decide_batch`), by requests per call.

At a low request rate a worker takes a message or two at a time, and each call of the
vectorized path has a fixed cost (the posterior, the request columns, a dozen small numpy
operations, as many again for the metrics) that a few requests cannot spread.
`stream.handlers.account_decisions` decides up to `SMALL` requests of an account one by
one instead; this measures where the two cross, which is how `SMALL` was chosen.

Workload: one account of 10 creatives (two per-conversion offers, one per-click), every
creative past its learning threshold, one campaign 100% automated, contacts drawn from
10,000 so that some requests find a creative in cooldown (in-memory cooldowns). Each
row times `SelectionService.answer_ready` (decode, cooldown read, decisions, metrics,
cooldown write, response encoding) over `--requests` requests in calls of the given
size, CPU time (`time.process_time`), after a warm-up.

Run it as `python -m bench select-small [--quick]` or `python -m bench.select_small`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench import machine_info, pinned
from bench.selector_bench import CAMPAIGN, benchmark_account, benchmark_stats
from selector import Selector
from selector.ingest import Ledger
from stream.handlers import account_decisions
from stream.handlers.catalog import AccountCatalog
from stream.handlers.selection import SelectionService
from stream.handlers.stores import MemoryCooldowns
from stream.ops.metrics import Metrics
from stream.wire.envelope import Incoming

DEFAULT_JSON = Path(__file__).parent / "results" / "select_small.json"
SIZES = (1, 2, 4, 8, 16, 32, 64, 100)
PATHS = {"one by one": 10**9, "vectorized": 0}
CONTACTS = 10_000
WARMUP = 40  # calls before the timed ones


def _service(seed: int) -> tuple[SelectionService, str]:
    account = benchmark_account(10, "revenue")
    built = AccountCatalog(
        account.account_id,
        1,
        frozenset(c.creative_id for c in account.creatives),
        None,
        {},
        account,
        Selector(account),
        None,
    )
    stats = {account.account_id.encode(): Ledger(benchmark_stats(account, seed))}
    service = SelectionService(
        catalog=lambda key: built if key == account.account_id.encode() else None,
        stats=stats.get,
        cooldowns=MemoryCooldowns(),
        metrics=Metrics(),
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=seed,
        clock=lambda: 1_000_000.0,
    )
    return service, account.account_id


def _calls(account_id: str, size: int, count: int, seed: int) -> list[list[Incoming]]:
    rng = np.random.default_rng(seed)
    contacts = rng.integers(0, CONTACTS, count).tolist()
    messages = [
        Incoming(
            orjson.dumps(
                {
                    "schema": "selection_request.v1",
                    "request_id": f"r{i}",
                    "account_id": account_id,
                    "campaign_id": CAMPAIGN,
                    "contact_id": f"contact-{contacts[i]:05d}",
                    "time": 1_000_000.0,
                }
            ),
            account_id.encode(),
            "selection-requests",
            0,
            i,
        )
        for i in range(count)
    ]
    return [messages[i : i + size] for i in range(0, count, size)]


async def _time(size: int, small: int, requests: int, seed: int) -> float:
    """CPU microseconds per request of `answer_ready` in calls of `size` requests."""
    account_decisions.SMALL = small
    service, account_id = _service(seed)
    calls = _calls(account_id, size, requests + WARMUP * size, seed)
    for call in calls[:WARMUP]:
        await service.answer_ready(call)
    timed = calls[WARMUP:]
    started = time.process_time()
    for call in timed:
        await service.answer_ready(call)
    return 1e6 * (time.process_time() - started) / sum(len(c) for c in timed)


def run(sizes: Sequence[int], requests: int, repeats: int, seed: int) -> dict[str, Any]:
    default = account_decisions.SMALL
    rows = []
    try:
        for size in sizes:
            row: dict[str, Any] = {"requests_per_call": size}
            for name, small in [*PATHS.items(), ("default", default)]:
                times = [asyncio.run(_time(size, small, requests, seed)) for _ in range(repeats)]
                row[name] = min(times)
            rows.append(row)
    finally:
        account_decisions.SMALL = default
    return {"benchmark": "select_small", "small": default, "requests": requests, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"CPU µs per request of SelectionService.answer_ready, in-memory stores, "
        f"{result['requests']:,} requests per row (best of the repeats); the default decides "
        f"up to {result['small']} requests of an account one by one",
        f"{'requests/call':>13} {'one by one':>11} {'vectorized':>11} {'default':>9}",
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['requests_per_call']:>13} {row['one by one']:>11.1f} "
            f"{row['vectorized']:>11.1f} {row['default']:>9.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench select-small",
        description="CPU per request of the selection service on small batches: the "
        "scalar path against the vectorized one, by requests per call.",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 requests, one repeat")
    parser.add_argument("--requests", type=int, default=20_000, help="timed requests per row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=1, help="core to pin to; -1: no pinning")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    requests, repeats = (2_000, 1) if args.quick else (args.requests, args.repeats)
    with pinned(None if args.cpu < 0 else args.cpu):
        result = run(SIZES, requests, repeats, args.seed)
    result["machine"] = machine_info()
    print(format_table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
