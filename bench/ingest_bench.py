"""CPU per event of the stats path, without Kafka or Redis (target: <= 20 us per event,
50,000 events/s on one core).

The same calls the stats agent makes per batch (`IngestionService.ingest`, which decodes
and checks each message, asks the dedup store, folds the stats and then the contact
profiles), on in-memory stores: `MemoryDedup` behind the `GuardedDedup` the service
wraps it in, `MemoryProfiles`, and a dict as the stats table (written back after every
batch, as the agent does).

Workload: `event_batch.v1` messages of 100 events of one kind and one account (70%
sends, 23% clicks, 7% conversions), 4 accounts of 5 creatives (two with forgetting on),
20,000 contacts, 5% of the events re-published with an earlier event's id (upstream
duplicates), clicks carrying their send's time and conversions their click's. A warm-up
pass gives the profiles a history first; then N messages are timed, `--per-batch`
messages per `ingest` call.

CPU time (`time.process_time`) per event, split by step: decode and checks
(`IngestionService._open`), dedup (`_duplicates`), stats fold (`_fold`), profile fold
(`ProfileFolder.fold`); `other` is the rest of `ingest`. `--digest` prints a hash of the
stored results (stats ledgers as the changelog stores them, profile bytes, metrics), the
same for any implementation that gives the same values.

Run it as `python -m bench ingest [--quick]` or `python -m bench.ingest_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client import generate_latest

from bench import machine_info, pinned
from selector.ingest import Ledger
from stream.handlers.catalog import Catalogs, apply_catalog_message
from stream.handlers.ingestion import IngestionService
from stream.handlers.profiles import MemoryProfiles, ProfileFolder
from stream.handlers.stores import MemoryDedup
from stream.ops.metrics import Metrics
from stream.wire import ledger_codec
from stream.wire.batches import EVENT_BATCH
from stream.wire.envelope import Incoming

DEFAULT_JSON = Path(__file__).parent / "results" / "ingest.json"
TOPICS = {"sends": "send", "clicks": "click", "conversions": "conversion"}
TOPIC_OF = {kind: topic for topic, kind in TOPICS.items()}
MIX = (("send", 0.70), ("click", 0.93), ("conversion", 1.0))
ACCOUNTS = 4
CREATIVES = 5
PARTITIONS = 2
STEPS = ("decode+checks", "dedup", "stats fold", "profile fold", "other")
START = 1_767_225_600.0  # 2026-01-01


@dataclass(frozen=True, slots=True)
class Config:
    messages: int = 1000  # timed messages per repetition
    warmup: int = 400  # messages before the timed ones
    per_message: int = 100
    per_batch: int = 10  # messages per ingest call
    contacts: int = 20_000
    duplicates: float = 0.05
    repeats: int = 3
    seed: int = 7
    pin_cpu: int | None = 1


def account_id(a: int) -> str:
    return f"acct-{a}"


def catalog_table() -> dict[bytes, Any]:
    """Each account's catalog through the real catalog path."""
    table: dict[bytes, Any] = {}
    for a in range(ACCOUNTS):
        name = account_id(a)
        settings: dict[str, Any] = {"goal": "revenue", "learning_threshold": 100}
        if a % 2 == 0:
            settings["half_life_seconds"] = 7 * 86400.0
        parts = {
            "offers": [{"offer_id": "o1", "payout": 30.0, "payout_type": "cpa"}],
            "creatives": [
                {"creative_id": f"cr-{i}", "offer_id": "o1", "type": "automated",
                 "status": "active"}
                for i in range(CREATIVES)
            ],
            "campaigns": [
                {"campaign_id": "spring", "default_creative_id": "cr-0", "mode": "automated",
                 "automated_percent": 80.0, "manual_creative_ids": [], "rotation": "random"}
            ],
            "settings": settings,
        }  # fmt: skip
        for kind, field in (
            ("offers", "offers"),
            ("creatives", "creatives"),
            ("campaigns", "campaigns"),
            ("account_settings", "settings"),
        ):
            body = orjson.dumps({"schema": f"{kind}.v1", "account_id": name, field: parts[field]})
            message = Incoming(body, name.encode(), f"catalog-{kind}", 0, 0)
            key, value, letter = apply_catalog_message(kind, message, table.get, 1 << 20, "dl", 0)
            if letter is not None or value is None:
                raise RuntimeError(f"catalog {kind} of {name} refused")
            table[key] = value
    return table


def messages(config: Config, count: int, rng: np.random.Generator) -> list[Incoming]:
    """`count` batch messages of the mix; offsets continue per topic-partition."""
    out: list[Incoming] = []
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    past: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    per_account = config.contacts // ACCOUNTS
    serial = 0
    clock = START
    for _ in range(count):
        roll = rng.random()
        kind = next(k for k, edge in MIX if roll < edge)
        a = int(rng.integers(ACCOUNTS))
        clock += float(rng.uniform(0.5, 1.5))
        events = []
        for _ in range(config.per_message):
            earlier = past[kind, a]
            if earlier and rng.random() < config.duplicates:
                events.append(dict(earlier[int(rng.integers(len(earlier)))]))
                continue
            serial += 1
            t = round(clock + float(rng.uniform(-30, 30)), 3)
            doc: dict[str, Any] = {
                "event_id": f"ev-{serial}",
                "contact_id": f"contact-{a}-{int(rng.integers(per_account))}",
                "creative_id": f"cr-{int(rng.integers(CREATIVES))}",
                "time": t,
            }
            if kind == "send":
                doc["campaign_id"] = "spring"
            elif kind == "click":
                doc["send_time"] = round(t - float(rng.exponential(3600)), 3)
            else:
                doc["revenue"] = round(float(rng.uniform(1, 90)), 2)
                doc["click_time"] = round(t - float(rng.exponential(6 * 3600)), 3)
            events.append(doc)
            earlier.append(doc)
            if len(earlier) > 2000:
                del earlier[:1000]
        body = {"schema": EVENT_BATCH, "kind": kind, "account_id": account_id(a), "events": events}
        topic, partition = TOPIC_OF[kind], a % PARTITIONS
        offset = offsets[topic, partition]
        offsets[topic, partition] += 1
        out.append(Incoming(orjson.dumps(body), account_id(a).encode(), topic, partition, offset))
    return out


class Timed:
    """CPU seconds spent in wrapped methods, by step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, step: str) -> None:
        inner = getattr(owner, name)
        seconds, clock = self.seconds, time.process_time
        if asyncio.iscoroutinefunction(inner):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return await inner(*args, **kwargs)
                finally:
                    seconds[step] += clock() - start

            setattr(owner, name, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return inner(*args, **kwargs)
                finally:
                    seconds[step] += clock() - start

            setattr(owner, name, timed)


class World:
    """The service, its stores and the stats table."""

    def __init__(self, catalogs: Callable[[bytes], Any]) -> None:
        self.table: dict[bytes, Ledger] = {}
        self.metrics = Metrics()
        self.profiles = MemoryProfiles()
        self.outcomes: dict[str, int] = defaultdict(int)
        self.folder = ProfileFolder(self.profiles, on_outcome=self._outcome)
        self.service = IngestionService(
            kinds=TOPICS,
            catalog=catalogs,
            stats=self.table.get,
            dedup=MemoryDedup(),
            metrics=self.metrics,
            dead_letters_topic="dead-letters",
            clock=lambda: START + 10 * 86400.0,
            profiles=self.folder,
        )
        self.letters = 0

    def _outcome(self, outcome: str, count: int) -> None:
        self.outcomes[outcome] += count

    async def feed(self, batches: Sequence[Sequence[Incoming]]) -> None:
        for batch in batches:
            updates, letters = await self.service.ingest(batch)
            self.table.update(updates)
            self.letters += len(letters)

    def digest(self) -> str:
        h = hashlib.sha256()
        for key in sorted(self.table):
            h.update(key + b"=" + ledger_codec.dumps(self.table[key]) + b"\n")
        for pair in sorted(self.profiles.values):
            h.update(repr(pair).encode() + b"=" + self.profiles.values[pair] + b"\n")
        h.update(repr(sorted(self.outcomes.items())).encode())
        h.update(str(self.letters).encode())
        for line in generate_latest(self.metrics.registry).splitlines():
            noise = (b"_created", b"_bucket", b"batch_size", b"seconds")
            if not line.startswith(b"#") and not any(n in line for n in noise):
                h.update(line + b"\n")
        return h.hexdigest()


def _batches(items: list[Incoming], size: int) -> list[list[Incoming]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_once(config: Config) -> tuple[dict[str, float], str, int]:
    """CPU seconds per step over the timed messages, the results' digest, events."""
    rng = np.random.default_rng(config.seed)
    stream = messages(config, config.warmup + config.messages, rng)
    catalogs = Catalogs(catalog_table().get).get
    world = World(catalogs)
    asyncio.run(world.feed(_batches(stream[: config.warmup], config.per_batch)))
    timed = Timed()
    timed.wrap(world.service, "_open", "decode+checks")
    timed.wrap(world.service, "_duplicates", "dedup")
    timed.wrap(world.service, "_fold", "stats fold")
    timed.wrap(world.folder, "fold", "profile fold")
    batches = _batches(stream[config.warmup :], config.per_batch)

    async def timed_feed() -> float:
        start = time.process_time()
        await world.feed(batches)
        return time.process_time() - start

    total = asyncio.run(timed_feed())
    seconds = dict(timed.seconds)
    seconds["other"] = total - sum(seconds.values())
    seconds["total"] = total
    return seconds, world.digest(), config.messages * config.per_message


def run(config: Config) -> dict[str, Any]:
    samples: dict[str, list[float]] = defaultdict(list)
    digests = set()
    with pinned(config.pin_cpu):
        for _ in range(config.repeats):
            seconds, digest, events = run_once(config)
            digests.add(digest)
            for step, s in seconds.items():
                samples[step].append(1e6 * s / events)
    if len(digests) != 1:
        raise RuntimeError("repetitions of one seeded workload gave different results")
    return {
        "settings": {
            "messages": config.messages,
            "events_per_message": config.per_message,
            "messages_per_batch": config.per_batch,
            "contacts": config.contacts,
            "duplicates": config.duplicates,
            "repeats": config.repeats,
            "seed": config.seed,
        },
        "machine": {**machine_info(), "pinned_to_cpu": config.pin_cpu},
        "load_average": list(_loadavg()),
        "us_per_event": {
            step: {"median": statistics.median(v), "min": min(v), "samples": v}
            for step, v in samples.items()
        },
        "digest": digests.pop(),
    }


def _loadavg() -> tuple[float, ...]:
    try:
        import os

        return os.getloadavg()
    except OSError:
        return ()


def format_table(result: dict[str, Any]) -> str:
    rows = result["us_per_event"]
    lines = [f"{'step':<16}{'us/event (median)':>20}{'min':>10}"]
    for step in (*STEPS, "total"):
        r = rows[step]
        lines.append(f"{step:<16}{r['median']:>20.2f}{r['min']:>10.2f}")
    total = rows["total"]["median"]
    lines.append(f"events/s on one core (median): {1e6 / total:,.0f}")
    lines.append(f"load average: {', '.join(f'{x:.2f}' for x in result['load_average'])}")
    return "\n".join(lines)


QUICK = {"messages": 200, "warmup": 100, "repeats": 1}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_bench",
        description="CPU per event of the stats path (decode, dedup, stats and profile "
        "folds) on in-memory stores.",
    )
    parser.add_argument("--quick", action="store_true", help="200 messages, one repetition")
    parser.add_argument("--messages", type=int, default=None, help="timed messages (1000)")
    parser.add_argument("--warmup", type=int, default=None, help="messages before (400)")
    parser.add_argument("--per-batch", type=int, default=10, help="messages per ingest call")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=1, help="core to pin to; -1: no pinning")
    parser.add_argument("--digest", action="store_true", help="print the results' hash")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    config = Config(per_batch=args.per_batch, seed=args.seed)
    if args.quick:
        config = replace(config, **QUICK)
    for name in ("messages", "warmup", "repeats"):
        if getattr(args, name) is not None:
            config = replace(config, **{name: getattr(args, name)})
    config = replace(config, pin_cpu=None if args.cpu < 0 else args.cpu)
    result = run(config)
    print(format_table(result))
    if args.digest:
        print(f"digest: {result['digest']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
