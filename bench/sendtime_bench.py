"""Send-time decisions per second on one pinned core (DESIGN.md section 6: >= 100,000/s).

The account is `scenarios/sendtime_pitfall.yaml`'s: 12 two-hour slots, sending hours
08:00-21:00, 5% exploration, its prior fitted (by `fit_prior`, two routines) to a
simulated year of history. Each request's contact has its own counts: a year of sends
(0 to 300 of them, at random allowed times), answered at its true rates. Contacts are
spread over four zones (Berlin, New York, Kolkata, Sydney).

Workloads, each on its own prebuilt inputs:

| name | timed call |
|---|---|
| `batch 1000`, `batch 10000` | `decide_batch` on a prebuilt `SendTimeBatch`: one
  launch (one launch time, 24 h window), 10% control |
| `batch 1000 triggered` | the same, a different launch time per request |
| `batch 1000 +decode` | `window_counts` on the contacts' stored bytes, then
  `decide_batch`: what the stream does per batch after its Redis read |
| `scalar` | `decide(request, rng, sends, responses)`, one request per call |

Rates are per wall-clock second and per second of the process's CPU time: on a shared
machine the first also counts other processes' turns on the pinned core.

Every optimized decision includes its propensity (integration over the Betas of each
routine the contact may follow). Run it as `python -m bench.sendtime_bench [--quick]`.
"""

from __future__ import annotations

import os

# Decisions use no BLAS, but the prior fit in the setup does: its threads would spin
# next to the pinned core. Must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench import Rate, Workload, machine_info, pinned
from selector.sendtime.batch import REASONS, SendTimeBatch
from selector.sendtime.codec import encode_slots, window_counts
from selector.sendtime.counts import ContactSlots, History, SlotEvent, apply_slot_events
from selector.sendtime.decide import SendTimeDecider
from selector.sendtime.prior import fit_prior
from selector.sendtime.scenario import SendTimeScenario, sendtime_scenario_from_dict
from selector.sendtime.settings import SendTimeRequest
from selector.sendtime.simulate import history, make_truth

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "sendtime_pitfall.yaml"
DEFAULT_JSON = Path(__file__).parent / "results" / "sendtime.json"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
LAUNCH = 1_773_064_800.0  # Monday 2026-03-09 14:00 in Berlin
TARGET = 100_000.0


@dataclass(frozen=True, slots=True)
class BenchConfig:
    batch_sizes: tuple[int, ...] = (1000, 10_000)
    repeats: int = 7
    min_seconds: float = 0.3
    pin_cpu: int | None = 0
    seed: int = 20_260_309
    contacts: int = 20_000  # the simulated account the prior is fitted to


QUICK_REPEATS, QUICK_SECONDS = 3, 0.05


def _scenario(contacts: int) -> SendTimeScenario:
    doc = yaml.safe_load(SCENARIO.read_text())
    doc["contacts"] = contacts
    doc["history"] = {"sends": 300, "days": 360}
    doc["send_time"]["control_pct"] = 10
    return sendtime_scenario_from_dict(doc)


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """Contacts' counts (N, cells) and zones, the fitted decider, and stored bytes."""

    decider: SendTimeDecider
    sends: np.ndarray
    responses: np.ndarray
    zones: tuple[str, ...]
    blobs: tuple[bytes, ...]


def population(size: int, seed: int, contacts: int = 20_000, stored: int = 1000) -> Population:
    """`size` requests' contacts, the first `stored` of them also as stored bytes."""
    scenario = _scenario(contacts)
    truth = make_truth(scenario, np.random.default_rng(seed))
    sends, responses = history(scenario, truth, 20_521, np.random.default_rng(seed + 1))
    # between 0 and 300 sends a contact: keep each send (and its response) with a
    # probability drawn per contact
    rng = np.random.default_rng(seed + 2)
    keep = rng.uniform(0.0, 1.0, size=(sends.shape[0], 1))
    responses, missed = rng.binomial(responses, keep), rng.binomial(sends - responses, keep)
    sends = responses + missed
    prior = fit_prior(sends, responses, period=scenario.settings.slots)
    rows = rng.integers(0, sends.shape[0], size=size)
    zones = tuple(ZONES[i] for i in rng.choice(len(ZONES), size=size, p=[0.4, 0.3, 0.15, 0.15]))
    return Population(
        SendTimeDecider(scenario.settings, prior),
        sends[rows],
        responses[rows],
        zones,
        tuple(_blob(sends[r], responses[r]) for r in rows[:stored]),
    )


def _blob(sends: np.ndarray, responses: np.ndarray) -> bytes:
    """The stored bytes of a contact with these counts, all on one recent day."""
    events: list[SlotEvent] = []
    for cell in np.flatnonzero(sends):
        events += [SlotEvent("send", int(cell), 20_520, 0, 0, len(events))] * int(sends[cell])
        events += [SlotEvent("response", int(cell), 20_520, 1, 0, len(events))] * int(
            responses[cell]
        )
    events = [
        SlotEvent(e.kind, e.cell, e.day, e.source, e.partition, i) for i, e in enumerate(events)
    ]
    state, _ = apply_slot_events(ContactSlots(), events, History())
    return encode_slots(state, 12, False)


def _batch(pop: Population, n: int, triggered: bool, seed: int) -> SendTimeBatch:
    rng = np.random.default_rng(seed)
    launch = LAUNCH + (rng.uniform(0, 7 * 86_400, size=n) if triggered else np.zeros(n))
    requests = [
        SendTimeRequest(
            f"ct-{i}",
            "camp-bench",
            float(launch[i]),
            86_400.0,
            profile_zone=pop.zones[i % len(pop.zones)],
        )
        for i in range(n)
    ]
    settings = pop.decider.settings
    return SendTimeBatch.from_requests(requests, settings, pop.sends[:n], pop.responses[:n])


def workloads(pop: Population, config: BenchConfig) -> list[Workload]:
    rng = np.random.default_rng(config.seed)
    decider = pop.decider
    out = []
    for n in config.batch_sizes:
        batch = _batch(pop, n, False, config.seed + n)
        out.append(Workload(f"batch {n}", _bound(decider.decide_batch, batch, rng), n))
    small = config.batch_sizes[0]
    triggered = _batch(pop, small, True, config.seed)
    out.append(
        Workload(f"batch {small} triggered", _bound(decider.decide_batch, triggered, rng), small)
    )
    plain = _batch(pop, small, False, config.seed)
    today = decider.local_days(plain)
    blobs = pop.blobs[:small]

    def decode_and_decide() -> object:
        counts = window_counts(blobs, today, 12, False, decider.settings.history)
        return decider.decide_batch(
            replace(plain, sends=counts.sends, responses=counts.responses), rng
        )

    out.append(Workload(f"batch {small} +decode", decode_and_decide, small))
    request = SendTimeRequest("ct-1", "camp-bench", LAUNCH, 86_400.0, zone="Europe/Berlin")
    sends, responses = pop.sends[0], pop.responses[0]
    out.append(Workload("scalar", lambda: decider.decide(request, rng, sends, responses), 1))
    return out


def _bound(
    f: Callable[[SendTimeBatch, np.random.Generator], object],
    batch: SendTimeBatch,
    rng: np.random.Generator,
) -> Callable[[], object]:
    return lambda: f(batch, rng)


def timed(
    work: Sequence[Workload], repeats: int, min_seconds: float
) -> tuple[dict[str, Rate], dict[str, Rate]]:
    """Like `bench.measure` (calibrated, interleaved repetitions), recording per
    repetition both decisions per wall-clock second and per second of this process's
    CPU time: on a shared machine the first also counts other processes' turns on the
    pinned core, the second does not."""
    for w in work:
        w.calibrate(min_seconds)
    wall: dict[str, list[float]] = {w.name: [] for w in work}
    cpu: dict[str, list[float]] = {w.name: [] for w in work}
    for _ in range(repeats):
        for w in work:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(w.calls):
                w.call()
            t1, c1 = time.perf_counter(), time.process_time()
            wall[w.name].append(w.calls * w.per_call / (t1 - t0))
            cpu[w.name].append(w.calls * w.per_call / max(c1 - c0, 1e-9))
    return (
        {k: Rate(tuple(v)) for k, v in wall.items()},
        {k: Rate(tuple(v)) for k, v in cpu.items()},
    )


def run(config: BenchConfig) -> dict[str, Any]:
    pop = population(max(config.batch_sizes), config.seed, config.contacts, config.batch_sizes[0])
    with pinned(config.pin_cpu):
        info = machine_info()
        work = workloads(pop, config)
        rates, cpu_rates = timed(work, config.repeats, config.min_seconds)
    first = _batch(pop, config.batch_sizes[0], False, config.seed)
    sample = pop.decider.decide_batch(first, np.random.default_rng(1))
    reasons = np.bincount(sample.reason, minlength=len(REASONS))
    return {
        "benchmark": "sendtime",
        "config": asdict(config),
        "machine": info | {"pinned_to_cpu": config.pin_cpu},
        "prior": {
            "routines": pop.decider.prior.routines,
            "median_strength": pop.decider.prior.strength,
        },
        "sample_reasons": {name: int(reasons[i]) for i, name in enumerate(REASONS)},
        "rates": {name: rate.to_json() for name, rate in rates.items()},
        "cpu_rates": {name: rate.to_json() for name, rate in cpu_rates.items()},
        "target_decisions_per_second": TARGET,
    }


def format_table(result: dict[str, Any]) -> str:
    pin = result["machine"]["pinned_to_cpu"]
    where = f"pinned to CPU {pin}" if pin is not None else "not pinned"
    load = ", ".join(f"{x:.1f}" for x in result["machine"]["load_average"])
    lines = [
        f"send-time decisions per second ({where}; median of {result['config']['repeats']}; "
        f"load average {load}; prior with {result['prior']['routines']} routines)",
        f"{'workload':24}{'per wall s':>12}{'us':>8}{'±%':>6}{'per CPU s':>12}{'us':>8}  target",
    ]
    for name, rate in result["rates"].items():
        wall, cpu = rate["median"], result["cpu_rates"][name]["median"]
        mark = "" if name == "scalar" else ("  >= 100k" if wall >= TARGET else "  < 100k")
        lines.append(
            f"{name:24}{wall:>12,.0f}{1e6 / wall:>8.2f}{rate['spread_pct']:>6.1f}"
            f"{cpu:>12,.0f}{1e6 / cpu:>8.2f}{mark}"
        )
    lines.append(f"reasons in one batch: {result['sample_reasons']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sendtime_bench",
        description="Send-time decisions per second on one pinned core, in batches and singly.",
    )
    parser.add_argument("--quick", action="store_true", help="3 short repetitions (smoke run)")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to; -1: no pinning")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1000, 10_000], metavar="N",
        help="batch sizes to time (default 1000 10000; the first is also used for the "
        "triggered and decode workloads)",
    )  # fmt: skip
    parser.add_argument(
        "--contacts", type=int, default=20_000,
        help="contacts of the simulated account the prior is fitted to (default 20000)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="report path (default bench/results/)"
    )
    args = parser.parse_args(argv)
    config = BenchConfig(
        batch_sizes=tuple(args.batch_sizes),
        pin_cpu=None if args.cpu < 0 else args.cpu,
        contacts=args.contacts,
    )
    if args.quick:
        config = replace(config, repeats=QUICK_REPEATS, min_seconds=QUICK_SECONDS)
    result = run(config)
    print(format_table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
