"""Through Kafka on loopback, one worker (DESIGN.md section 6): selections/s sustained,
request->response latency at a fixed rate, stats events/s with dedup on; each next to
plain aiokafka's produce and consume rates on the same messages, in the same run.

Kafka (KRaft), Redis and one `creative-select worker` process (Redis cooldowns, Redis
dedup) are started as the demo starts them (`stream.local.harness.services`). The load
generator and the raw-client probe are processes of their own (`bench.stream_load`).
With pinning (the default) the worker and Redis share one core (the worker waits for
every Redis round trip, so they take turns) and the broker, the load generator and this
process the other; the raw probe runs on the worker's core while the worker is idle. On
a 2-core machine nothing more can be separated.

Run it as `python -m stream.cli bench stream [--quick]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import machine_info
from bench import stream_load as sl
from bench import stream_raw as raw
from bench.stream_layout import Layout, note, our_redis, pin_process_tree, placed, receive, spawn
from bench.stream_measure import (
    Collector,
    CpuMeter,
    latency_summary,
    steady_rate,
    wait_all,
)
from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.topic_specs import TopicSpec, ensure_topics
from stream.demo.run import CATALOG_METRIC, EVENTS_METRIC
from stream.local.harness import Services, services

DEFAULT_JSON = Path(__file__).parent / "results" / "stream.json"
TARGETS = {"selections": 20_000.0, "p99_ms": 20.0, "events": 50_000.0}
SELECT_AGENT = "answer_selection_requests"
LEARNED_METRIC = "creative_selection_sendtime_events_total"
VERSIONS = ("numpy", "aiokafka", "faust-streaming", "redis", "orjson")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    accounts: int = 4
    contacts: int = 200_000
    requests: int = 300_000
    events: int = 300_000
    raw_messages: int = 200_000
    rate: float = 2000.0
    latency_seconds: float = 40.0
    warmup_seconds: float = 5.0
    duplicate_pct: float = 1.0
    pin: bool = True
    progress: bool = True
    bootstrap: str | None = None
    redis_url: str | None = None
    seed: int = 7
    batch: int = 100  # requests per message; 1: single selection_request.v1 messages
    linger_ms: float = 2.0


QUICK = {
    "requests": 15_000,
    "events": 15_000,
    "raw_messages": 10_000,
    "latency_seconds": 4.0,
    "warmup_seconds": 1.0,
}


async def measure_raw(load: sl.Load, count: int, layout: Layout) -> dict[str, Any]:
    base = load.settings.topic("bench-raw")
    specs = [TopicSpec(f"{base}-{k}", load.settings.partitions) for k in raw.KINDS]
    await ensure_topics(load.settings, specs)
    process, pipe = spawn(raw.raw_process, load, count, base, layout.worker)
    result = await receive(pipe, process)
    process.join()
    return dict(result)


async def measure_stats(
    load: sl.Load, found: Services, layout: Layout, bar: tqdm
) -> dict[str, Any]:
    worker = found.worker
    before = await asyncio.to_thread(worker.metric, EVENTS_METRIC)
    applied0 = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="applied")
    duplicate0 = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="duplicate")
    learned0 = await asyncio.to_thread(worker.metric, LEARNED_METRIC)
    process, pipe = spawn(sl.publish_process, load, "events", layout.others)
    total, learned = await receive(pipe, process)
    meter = CpuMeter(worker, "count_outcomes")
    meter.start()
    pipe.send("go")
    published = asyncio.ensure_future(receive(pipe, process))
    bar.reset(total)
    # done when the stats agent and the send-time learner (the same topics, its own
    # stream buffer) have both read everything: the slower one sets the rate a worker
    # keeps up with; a faster agent's lead only lasts while the buffers hold the backlog
    counters = [(EVENTS_METRIC, before, total), (LEARNED_METRIC, learned0, learned)]
    samples, (counted, learnt) = await wait_all(worker, counters, bar)
    cpu = meter.stop(total)
    publisher = await published
    process.join()
    applied = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="applied")
    duplicate = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="duplicate")
    return {
        "events": total,
        "counted": counted[-1][1],
        "learned": learnt[-1][1],
        "learned_expected": learned,
        # each agent on its own over its steady window (the stats agent runs ahead
        # while the backlog fits its buffer)
        "stats_agent_per_second": steady_rate(counted, total),
        "learner_per_second": steady_rate(learnt, learned),
        "applied": applied - applied0,
        "duplicates": duplicate - duplicate0,
        "duplicates_published": total - sl.unique_count(total, load),
        "per_second": steady_rate(samples, total),
        "publish_per_second": total / publisher["seconds"],
        **cpu,
    }


async def measure_selections(
    load: sl.Load, layout: Layout, bar: tqdm, meter: CpuMeter
) -> dict[str, Any]:
    async with Collector(load.settings, b"t", load.requests) as collector:
        process, pipe = spawn(sl.publish_process, load, "requests", layout.others)
        total = await receive(pipe, process)
        bar.reset(total)
        meter.start()
        pipe.send("go")
        published = asyncio.ensure_future(receive(pipe, process))
        await collector.collect(bar.update)
        cpu = meter.stop(total)
        publisher = await published
        process.join()
    done = [(t, n) for n, t in enumerate(collector.arrivals, start=1)]
    return collector.counts() | {
        "per_second": steady_rate(done, total),
        "publish_per_second": total / publisher["seconds"],
        **cpu,
    }


async def measure_latency(
    load: sl.Load, config: StreamConfig, layout: Layout, bar: tqdm, meter: CpuMeter | None
) -> dict[str, Any]:
    """Paced requests to the worker (`meter` given) or, without one, to an aiokafka echo
    on the worker's core: the same round trip through Kafka with no worker in it."""
    count = int(config.rate * config.latency_seconds)
    base = load.settings.topic("bench-raw")
    echoed = (f"{base}-echo-requests", f"{base}-echo-responses")
    source, target = (None, None) if meter else echoed
    async with Collector(load.settings, b"l" if meter else b"e", count, target) as collector:
        echo = None
        if meter is None:
            echo = spawn(raw.echo_process, load, source, target, count, layout.worker)
            await receive(echo[1], echo[0])
        process, pipe = spawn(sl.paced_process, load, config.rate, count, source, layout.others)
        await receive(pipe, process)
        bar.reset(count)
        t0 = time.monotonic() + 0.2
        if meter is not None:
            meter.start()
        pipe.send(t0)
        sender = asyncio.ensure_future(receive(pipe, process))
        await collector.collect(bar.update)
        cpu = meter.stop(count) if meter is not None else {}
        sent = await sender
        process.join()
        if echo is not None:
            await receive(echo[1], echo[0])
            echo[0].join()
    warmup = int(config.rate * config.warmup_seconds)
    summary = latency_summary(collector.latencies(t0, config.rate), warmup)
    behind = sent["max_behind_schedule_seconds"] * 1e3
    extra = {"rate": config.rate, "max_behind_schedule_ms": behind}
    return collector.counts() | summary | cpu | extra


async def _publish_catalog(load: sl.Load, found: Services) -> None:
    before = await asyncio.to_thread(found.worker.metric, CATALOG_METRIC)
    catalogs = validate_documents(sl.catalog_documents(load), found.settings)
    await publish(catalogs, found.settings)
    await found.worker.wait_for(CATALOG_METRIC, before + 4 * load.accounts, timeout=60.0)


def _load(config: StreamConfig, env: dict[str, str]) -> sl.Load:
    return sl.Load(
        env=env,
        accounts=config.accounts,
        contacts=config.contacts,
        requests=config.requests,
        events=config.events,
        duplicate_pct=config.duplicate_pct,
        seed=config.seed,
        batch=config.batch,
        linger_ms=config.linger_ms,
    )


def run(config: StreamConfig) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready document."""
    layout = Layout.of(config.pin, config.bootstrap is None and config.redis_url is None)
    started = time.perf_counter()
    bar = tqdm(total=1, file=sys.stderr, disable=not config.progress, unit="msg")
    with placed(layout), bar, services(config.bootstrap, config.redis_url) as found:
        pid = found.worker.proc.pid if found.worker.proc else None
        redis = our_redis(found.settings.redis_url)
        for process in (pid, redis):
            if layout.worker is not None and process is not None:
                pin_process_tree(process, layout.worker)
        note(f"worker pid {pid}, Redis pid {redis}; {layout.describe()}")
        info = machine_info(VERSIONS)
        load = _load(config, found.worker.env)
        result: dict[str, Any] = {}

        def phase(name: str) -> None:
            bar.set_description(name)
            if not config.progress:
                note(name)

        async def phases() -> None:
            await _publish_catalog(load, found)
            phase("raw aiokafka")
            result["raw"] = await measure_raw(load, config.raw_messages, layout)
            phase("stats events")
            result["stats"] = await measure_stats(load, found, layout, bar)
            phase("selections, max rate")
            result["selections"] = await measure_selections(
                load, layout, bar, CpuMeter(found.worker, SELECT_AGENT)
            )
            phase(f"raw echo latency at {config.rate:,.0f}/s")
            result["raw_latency"] = await measure_latency(load, config, layout, bar, None)
            phase(f"latency at {config.rate:,.0f}/s")
            meter = CpuMeter(found.worker, SELECT_AGENT)
            result["latency"] = await measure_latency(load, config, layout, bar, meter)

        asyncio.run(phases())
    return {
        "benchmark": "stream",
        "machine": info | {"layout": asdict(layout), "layout_note": layout.describe()},
        "settings": asdict(config),
        "load": {
            "accounts": load.accounts,
            "creatives_per_account": sl.CREATIVES,
            "goal": "revenue",
            "sends_per_creative": load.sends_per_creative,
            "learning_threshold": load.learning_threshold,
            "request_batch": load.batch,
            "linger_ms": load.linger_ms,
            "worker_env": {k: v for k, v in load.env.items() if k.startswith("CS_SELECT")},
        },
        "seconds": time.perf_counter() - started,
        **result,
        "targets": targets(result),
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [
        ("selections/s sustained", result["selections"]["per_second"], TARGETS["selections"]),
        ("stats events/s with dedup", result["stats"]["per_second"], TARGETS["events"]),
    ]
    out = [{"name": n, "value": v, "target": t, "met": v >= t} for n, v, t in checks]
    p99 = result["latency"]["p99_ms"]
    rate = f"{result['latency']['rate']:,.0f}"
    out.append(
        {"name": f"p99 ms at {rate}/s", "value": p99, "target": TARGETS["p99_ms"]}
        | {"met": p99 <= TARGETS["p99_ms"]}
    )
    return out


def report(config: StreamConfig, json_path: Path | None = None) -> dict[str, Any]:
    """Run, print the table on stdout and write the JSON (default bench/results/)."""
    from bench.stream_table import format_table

    result = run(config)
    path = json_path or DEFAULT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"wrote {path}", file=sys.stderr)
    return result
