"""Regret of our default policy, MABWiser's and River's Thompson sampling on one stream.

The stream: six creatives with true click rates spread evenly over 8-15% (their order
shuffled by the seed), sends decided in batches of `--batch` (1,000), every send's click
drawn from one uniform number per send shared by all three policies (common random
numbers: a policy that picks the same creative sees the same outcome), and a one-batch
delay: a batch's sends and clicks reach each policy after the batch, before the next
one is decided. Regret is the expected clicks lost against always sending the best
creative, sum over sends of (best rate - rate of the creative sent).

- ours: `Selector.decide_batch` with the default settings (goal `clicks`, one campaign
  100% automated, no cooldown), stats updated after each batch;
- MABWiser: `MAB(arms, LearningPolicy.ThompsonSampling())`, `predict(contexts)` for a
  batch, `partial_fit` after it (uniform picks before its first fit);
- River: `bandit.ThompsonSampling(proba.Beta())`, one `pull` per send, one `update` per
  send after the batch.

Run it as `python -m bench.peer_regret [--seeds 8] [--sends 200000] [--quick]`; it prints
each policy's mean regret with a 95% t-interval over the seeds and the ratio of means.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from mabwiser.mab import MAB, LearningPolicy
from river import bandit, proba

from selector import AccountStats, Counts, RequestBatch, Selector, account_from_dict

Array = Any
Policy = Callable[[int], Array]  # batch size -> creative positions
Learn = Callable[[Array, Array], None]  # (creatives, clicks) of one batch
T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042,
}  # fmt: skip


def rates(seed: int, k: int = 6) -> Array:
    rng = np.random.default_rng([seed, 1])
    return rng.permutation(np.linspace(0.08, 0.15, k))


def ours(k: int, seed: int) -> tuple[Policy, Learn]:
    ids = [f"creative-{i}" for i in range(k)]
    account = account_from_dict(
        {
            "account_id": "peer-regret",
            "settings": {"goal": "clicks", "cooldown_seconds": 0},
            "offers": [{"offer_id": "offer", "payout": 20}],
            "creatives": [{"creative_id": c, "offer_id": "offer"} for c in ids],
            "campaigns": [
                {"campaign_id": "c", "default_creative_id": ids[0], "automated_percent": 100}
            ],
        }
    )
    selector, rng = Selector(account), np.random.default_rng([seed, 2])
    state = {"stats": AccountStats(), "batch": 0}

    def decide(n: int) -> Array:
        b = state["batch"]
        contacts = [f"{b}-{i}" for i in range(n)]
        batch = RequestBatch.from_columns(["c"] * n, contacts, np.full(n, float(b)))
        return selector.decide_batch(state["stats"], batch, rng).creative  # type: ignore[arg-type]

    def learn(creative: Array, clicks: Array) -> None:
        sends = np.bincount(creative, minlength=k)
        won = np.bincount(creative, weights=clicks, minlength=k)
        delta = {ids[j]: Counts(int(sends[j]), int(won[j])) for j in range(k) if sends[j]}
        state["stats"] = state["stats"].merge(AccountStats(MappingProxyType(delta)))  # type: ignore[union-attr]
        state["batch"] = int(state["batch"]) + 1  # type: ignore[call-overload]

    return decide, learn


def mabwiser(k: int, seed: int) -> tuple[Policy, Learn]:
    mab = MAB(list(range(k)), LearningPolicy.ThompsonSampling(), seed=seed)
    rng = np.random.default_rng([seed, 3])
    fitted = [False]

    def decide(n: int) -> Array:
        if not fitted[0]:
            return rng.integers(0, k, n)
        return np.asarray(mab.predict(np.zeros((n, 1))), dtype=np.intp)

    def learn(creative: Array, clicks: Array) -> None:
        (mab.partial_fit if fitted[0] else mab.fit)(creative, clicks.astype(np.int64))
        fitted[0] = True

    return decide, learn


def river(k: int, seed: int) -> tuple[Policy, Learn]:
    policy: Any = bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)
    arms = list(range(k))

    def decide(n: int) -> Array:
        return np.array([policy.pull(arms) for _ in range(n)], dtype=np.intp)

    def learn(creative: Array, clicks: Array) -> None:
        for arm, click in zip(creative.tolist(), clicks.tolist(), strict=True):
            policy.update(arm, bool(click))

    return decide, learn


POLICIES: dict[str, Callable[[int, int], tuple[Policy, Learn]]] = {
    "ours": ours,
    "mabwiser": mabwiser,
    "river": river,
}


def run(name: str, seed: int, sends: int, batch: int) -> float:
    """One policy's regret on the stream of `seed`."""
    p = rates(seed)
    luck = np.random.default_rng([seed, 0]).random(sends)
    decide, learn = POLICIES[name](p.size, seed)
    regret = 0.0
    for start in range(0, sends, batch):
        n = min(batch, sends - start)
        creative = decide(n)
        clicks = luck[start : start + n] < p[creative]
        regret += float(np.sum(p.max() - p[creative]))
        learn(creative, clicks)
    return regret


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval."""
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    t = T95.get(n - 1) or T95[max(d for d in T95 if d <= n - 1)]
    half = t * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_regret", description=__doc__)
    parser.add_argument("--seeds", type=int, default=8, help="number of seeds (default 8)")
    parser.add_argument("--sends", type=int, default=200_000, help="sends per run")
    parser.add_argument("--batch", type=int, default=1000, help="sends per batch")
    parser.add_argument("--quick", action="store_true", help="2 seeds of 20,000 sends")
    args = parser.parse_args(argv)
    seeds, sends = (2, 20_000) if args.quick else (args.seeds, args.sends)
    started = time.perf_counter()
    results: dict[str, list[float]] = {name: [] for name in POLICIES}
    for seed in range(seeds):
        for name in POLICIES:
            results[name].append(run(name, seed, sends, args.batch))
        print(f"seed {seed}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in results.items()),
              file=sys.stderr)  # fmt: skip
    print(
        f"Regret (expected clicks lost), 6 creatives at 8-15% click rate, {sends:,} sends in "
        f"batches of {args.batch:,}, one-batch delay, seeds 0-{seeds - 1}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"{'policy':10}{'mean':>10}{'95% interval':>22}{'ours / policy':>16}")
    mine = statistics.fmean(results["ours"])
    for name, values in results.items():
        mean, lo, hi = interval(values)
        print(f"{name:10}{mean:>10.1f}{f'[{lo:.1f}, {hi:.1f}]':>22}{mine / mean:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
