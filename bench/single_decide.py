"""Single-request decisions per second: our `Selector.decide` against River's and
MABWiser's one-at-a-time Thompson decisions on the same posteriors (DESIGN.md section 6:
single `decide()` at least as fast as the peers').

The setup is `bench.selector_bench`'s: 10 creatives over two per-conversion offers and
one per-click offer, every creative past the learning threshold, a campaign 100%
automated, the peers built by `bench.peers` from the selector's own posteriors. Our
decision carries its exact propensity; what makes it cheap is the cache of everything
derived from one stats value (posterior, score tables, the distribution per eligibility
mask), so the rows are:

- `ours`: `decide()` on one stats value, as between two stats updates;
- `ours, cooldowns`: the same with a different creative in cooldown per request (one
  distribution per mask, each computed once);
- `ours, new stats every call`: the stats value changes before every decision (one
  send event applied), so every decision rebuilds the posterior and the score tables;
- `river`, `mabwiser`: one `pull()` / one `predict()` (revenue: see `bench.peers`).

Run it as `python -m bench.single_decide [--quick]`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench import Workload, machine_info, measure, peers, pinned
from bench.selector_bench import CAMPAIGN, benchmark_account, benchmark_stats
from selector import AccountStats, Request, Selector

GOALS = ("clicks", "revenue")
CREATIVES = 10
SEED = 20240611


def workloads(goal: str) -> list[Workload]:
    selector = Selector(benchmark_account(CREATIVES, goal))
    stats = benchmark_stats(selector.account, SEED)
    rng = np.random.default_rng(SEED)
    ids = selector.view.creative_ids
    plain = [Request(CAMPAIGN, f"contact-{i:07d}", 1.7e9 + i) for i in range(1000)]
    cooling = [
        Request(CAMPAIGN, f"contact-{i:07d}", 1.7e9 + i, {ids[i % len(ids)]: 1.7e9 + i - 60})
        for i in range(1000)
    ]
    state = {"i": 0, "stats": stats}

    def single(requests: list[Request]) -> object:
        state["i"] = (int(state["i"]) + 1) % 1000  # type: ignore[call-overload]
        decision = selector.decide(stats, requests[int(state["i"])], rng)  # type: ignore[call-overload]
        assert decision.propensity > 0
        return decision

    def fresh() -> object:
        current: AccountStats = state["stats"]  # type: ignore[assignment]
        state["stats"] = current.apply("send", ids[0], 1.7e9)
        return selector.decide(state["stats"], plain[0], rng)  # type: ignore[arg-type]

    post = peers.Posteriors.of(selector, stats)
    one, _ = peers.mabwiser_calls(post, SEED, 1)
    return [
        Workload("ours", lambda: single(plain), 1),
        Workload("ours, cooldowns", lambda: single(cooling), 1),
        Workload("ours, new stats every call", fresh, 1),
        Workload("river", peers.river_call(post, SEED), 1),
        Workload("mabwiser", one, 1),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.single_decide", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 short repetitions")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU (-1: no pinning)")
    args = parser.parse_args(argv)
    repeats, min_seconds = (3, 0.05) if args.quick else (args.repeats, args.min_seconds)
    started = time.perf_counter()
    with pinned(None if args.cpu < 0 else args.cpu):
        info = machine_info(("numpy", "river", "mabwiser"))
        rates = {goal: measure(workloads(goal), repeats, min_seconds) for goal in GOALS}
    print(
        f"Single decisions/s, {CREATIVES} creatives, median of {repeats} repetitions "
        f"(>= {min_seconds} s each); {info['cpu_model']}, Python {info['python']}, "
        f"load average at start {' '.join(f'{x:.2f}' for x in info['load_average'])}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"{'goal':9}{'workload':30}{'decisions/s':>13}{'x River':>10}{'x MABWiser':>12}")
    for goal, by_name in rates.items():
        river, mabwiser = by_name["river"].median, by_name["mabwiser"].median
        for name, rate in by_name.items():
            r = rate.median
            print(f"{goal:9}{name:30}{r:>13,.0f}{r / river:>9.2f}x{r / mabwiser:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
