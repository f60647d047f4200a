"""Decisions per second of the selection core, and of River's and MABWiser's Thompson
sampling on the same posteriors, in one run (DESIGN.md section 6).

For each creative count K and goal: our `Selector.decide`, one request at a time
(`single`); `decide_batch` on a prebuilt `RequestBatch` (`batch`); and `decide_batch`
with `RequestBatch.from_columns` inside the timed call (`batch+prepare`). Then the peers
of `bench.peers` on the same posteriors. Every creative is past the learning threshold
and the campaign is 100% automated, so every decision is a Thompson decision.

Run it as `python -m stream.cli bench selector [--quick]`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from tqdm import tqdm

from bench import Rate, Workload, machine_info, measure, peers, pinned
from selector import (
    Account,
    AccountStats,
    Counts,
    Request,
    RequestBatch,
    Selector,
    account_from_dict,
)

GOALS = ("clicks", "revenue")
MODES = ("single", "batch", "batch+prepare")
PEERS = ("river", "mabwiser", "mabwiser_batch")
OFFERS = (
    ("offer-cpa-30", 30.0, "cpa"),
    ("offer-cpa-45", 45.0, "cpa"),
    ("offer-cto-25", 25.0, "cto"),
)
CAMPAIGN = "bench-campaign"
THRESHOLD = 3000
DEFAULT_JSON = Path(__file__).parent / "results" / "selector.json"
TARGET_RATE, TARGET_RATIO = 1_000_000.0, 20.0


@dataclass(frozen=True, slots=True)
class BenchConfig:
    creatives: tuple[int, ...] = (5, 10, 50)
    repeats: int = 7
    min_seconds: float = 0.2
    batch_size: int = 1000
    tune_allocator: bool = True
    pin_cpu: int | None = 0
    progress: bool = True
    seed: int = 20240611


QUICK = {"repeats": 3, "min_seconds": 0.03}


def benchmark_account(k: int, goal: str) -> Account:
    """K creatives over two per-conversion offers and one per-click offer."""
    return account_from_dict(
        {
            "account_id": f"bench-{k}-{goal}",
            "settings": {"goal": goal, "learning_threshold": THRESHOLD},
            "offers": [{"offer_id": o, "payout": p, "payout_type": t} for o, p, t in OFFERS],
            "creatives": [
                {"creative_id": f"creative-{i:02d}", "offer_id": OFFERS[i % len(OFFERS)][0]}
                for i in range(k)
            ],
            "campaigns": [
                {"campaign_id": CAMPAIGN, "default_creative_id": "creative-00"}
                | {"automated_percent": 100}
            ],
        }
    )


def benchmark_stats(account: Account, seed: int) -> AccountStats:
    """Every creative past the learning threshold: 3,000-24,000 sends, CTR 8-15%, CVR
    5-15% of clicks. Creative i gets the same counts whatever K and the goal."""
    offers = {o.offer_id: o for o in account.offers}
    counts = {}
    for i, creative in enumerate(account.creatives):
        rng = np.random.default_rng([seed, i])
        sends = int(rng.integers(THRESHOLD, 8 * THRESHOLD))
        clicks = round(sends * rng.uniform(0.08, 0.15))
        conversions = round(clicks * rng.uniform(0.05, 0.15))
        offer = offers[creative.offer_id]
        paid = clicks if offer.payout_type == "cto" else conversions
        revenue = round(paid * offer.payout * 1_000_000)
        counts[creative.creative_id] = Counts(sends, clicks, conversions, revenue)
    return AccountStats(MappingProxyType(counts))


def our_workloads(
    selector: Selector, stats: AccountStats, batch_size: int, seed: int
) -> list[Workload]:
    """Columns arrive as Python lists, as a consumer decodes them from messages."""
    rng = np.random.default_rng(seed)
    contacts = [f"contact-{i:07d}" for i in range(batch_size)]
    campaigns, times = [CAMPAIGN] * batch_size, [1.7e9 + i for i in range(batch_size)]
    requests = [Request(CAMPAIGN, c, t) for c, t in zip(contacts, times, strict=True)]
    batch = RequestBatch.from_columns(campaigns, contacts, times)
    cursor = [0]

    def single() -> object:
        cursor[0] = (cursor[0] + 1) % batch_size
        return selector.decide(stats, requests[cursor[0]], rng)

    def decide() -> object:
        return selector.decide_batch(stats, batch, rng)

    def prepare_and_decide() -> object:
        fresh = RequestBatch.from_columns(campaigns, contacts, times)
        return selector.decide_batch(stats, fresh, rng)

    return [
        Workload("single", single, 1),
        Workload("batch", decide, batch_size),
        Workload("batch+prepare", prepare_and_decide, batch_size),
    ]


def peer_workloads(post: peers.Posteriors, batch_size: int, seed: int) -> list[Workload]:
    one, many = peers.mabwiser_calls(post, seed, batch_size)
    floor, draws = peers.numpy_floor_call(post, seed, batch_size)
    return [
        Workload("river", peers.river_call(post, seed), 1),
        Workload("mabwiser", one, 1),
        Workload("mabwiser_batch", many, batch_size),
        Workload("numpy_floor", floor, draws),  # Beta draws, not decisions
    ]


def rows_of(
    k: int, goal: str, rates: dict[str, Rate], draws_per_decision: int
) -> list[dict[str, Any]]:
    """One row per mode; every ratio is computed from the medians reported in the row."""
    draws = rates["numpy_floor"]
    floor: dict[str, Any] = {
        "draws_per_second": draws.to_json(),
        "draws_per_decision": draws_per_decision,
        "decisions_per_second": draws.median / draws_per_decision,
    }
    rows = []
    for mode in MODES:
        ours = rates[mode].median
        row: dict[str, Any] = {"creatives": k, "goal": goal, "mode": mode}
        row["ours"] = rates[mode].to_json()
        row |= {p: rates[p].to_json() for p in PEERS}
        row["numpy_floor"] = floor
        row |= {f"ours_per_{p}": ours / rates[p].median for p in PEERS}
        row["ours_per_numpy_floor"] = ours / floor["decisions_per_second"]
        rows.append(row)
    return rows


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """DESIGN.md section 6: 10 creatives, revenue goal, batches of 1,000, one core."""
    out = []
    for row in rows:
        if (row["creatives"], row["goal"]) != (10, "revenue") or row["mode"] == "single":
            continue
        checks = [("decisions/s", row["ours"]["median"], TARGET_RATE)]
        checks += [(f"x {p}", row[f"ours_per_{p}"], TARGET_RATIO) for p in ("river", "mabwiser")]
        out += [
            {"name": f"10 creatives, revenue, {row['mode']}: {what}", "value": v}
            | {"target": t, "met": v >= t}
            for what, v, t in checks
        ]
    return out


def _allocator(tune: bool) -> str:
    if not tune:
        return "off"
    from stream.process import tune_allocator

    return "on" if tune_allocator() else "unavailable (not glibc)"


def run(config: BenchConfig) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready document. `tune_allocator=False` is reported
    as "off", which is only true in a process that never tuned it: the CLI runs that case
    in a fresh interpreter."""
    allocator = _allocator(config.tune_allocator)
    blocks = [(k, goal) for k in config.creatives for goal in GOALS]
    steps = len(blocks) * (len(MODES) + len(PEERS) + 1) * (config.repeats + 1)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    bar = tqdm(total=steps, file=sys.stderr, disable=not config.progress, unit="step")
    with pinned(config.pin_cpu), bar:
        info = machine_info(("numpy", "river", "mabwiser")) | {"tune_allocator": allocator}
        for k, goal in blocks:
            bar.set_description(f"{k} creatives, {goal}")
            selector = Selector(benchmark_account(k, goal))
            stats = benchmark_stats(selector.account, config.seed)
            post = peers.Posteriors.of(selector, stats)
            work = our_workloads(selector, stats, config.batch_size, config.seed)
            work += peer_workloads(post, config.batch_size, config.seed)
            rates = measure(work, config.repeats, config.min_seconds, bar.update)
            rows += rows_of(k, goal, rates, post.draws_per_decision)
    return {
        "benchmark": "selector",
        "machine": info | {"pinned_to_cpu": config.pin_cpu},
        "settings": asdict(config) | {"creatives": list(config.creatives)},
        "seconds": time.perf_counter() - started,
        "peer_models": peers.PEER_MODELS,
        "rows": rows,
        "targets": targets(rows),
    }


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(x: float) -> str:
    return f"{x:.0f}x" if x >= 10 else f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


HEAD: tuple[str, ...] = ("K", "goal", "mode", "ours/s", "±%", "River/s", "MABWiser/s")
HEAD += ("MABW batch/s", "numpy floor/s", "ours/River", "ours/MABW")
WIDTHS = (3, 8, 14, 12, 4, 10, 11, 13, 14, 11, 10)


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(r["creatives"]),
        r["goal"],
        r["mode"],
        _n(r["ours"]["median"]),
        f"{r['ours']['spread_pct']:.0f}",
        _n(r["river"]["median"]),
        _n(r["mabwiser"]["median"]),
        _n(r["mabwiser_batch"]["median"]),
        _n(r["numpy_floor"]["decisions_per_second"]),
        _ratio(r["ours_per_river"]),
        _ratio(r["ours_per_mabwiser"]),
    )


def _line(cells: tuple[str, ...]) -> str:
    w = WIDTHS
    left = [c.ljust(n) for c, n in zip(cells[1:3], w[1:3], strict=True)]
    right = [c.rjust(n) for c, n in zip(cells[3:], w[3:], strict=True)]
    return "  ".join([cells[0].rjust(w[0]), *left, *right])


def format_table(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    pin = f"pinned to CPU {m['pinned_to_cpu']}" if m["pinned_to_cpu"] is not None else "not pinned"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"Selector benchmark: decisions/s, median of {s['repeats']} repetitions "
        f"(>= {s['min_seconds']} s each), batches of {s['batch_size']:,}; {pin}",
        f"{m['cpu_model']} ({m['logical_cpus']} logical CPUs), Python {m['python']}, "
        f"{versions}; tune_allocator {m['tune_allocator']}; "
        f"load average at start {' '.join(f'{x:.2f}' for x in m['load_average'])}",
        "",
        _line(HEAD),
        *(_line(_cells(r)) for r in result["rows"]),
        "",
        *NOTES,
        "",
    ]
    lines += [
        f"target {t['name']}: {t['value']:,.1f} (>= {t['target']:,.0f}) "
        f"{'met' if t['met'] else 'MISSED'}"
        for t in result["targets"]
    ]
    return "\n".join(lines)


NOTES = (
    "±% = (max - min) / median of ours. River and MABWiser decide one request per call; "
    "MABW batch is predict() on",
    "  a batch of dummy contexts. Ratios use the peers' one-at-a-time rates. Revenue peers "
    "sample CTR and CVR Betas with",
    "  their own samplers and multiply by payout (no native revenue goal): see peer_models "
    "in the JSON.",
    "numpy floor = Generator.beta draws/s / Beta draws per decision (K for clicks, K + "
    "per-conversion creatives for revenue).",
    "ours single = one decide() per request, with its exact propensity (the distribution "
    "is cached per stats value and eligibility mask).",
)


def report(config: BenchConfig, json_path: Path | None = None) -> dict[str, Any]:
    """Run, print the table on stdout and write the JSON (default bench/results/)."""
    result = run(config)
    print(format_table(result))
    path = json_path or DEFAULT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return result
