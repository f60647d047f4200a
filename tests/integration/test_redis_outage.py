"""Through a Redis outage, on real Kafka and Redis: under 40 selection requests/s and 200
events/s (5% of them re-published event ids), Redis is (a) killed and restarted empty,
(b) frozen with SIGSTOP, for 25 s each. Every request is answered with a creative, the
cooldowns of the contacts the worker served hold, `/health` shows the state within
seconds, and the streamed stats equal the ground truth exactly, without the daily job.

The figures (answers, client-side latency before, during and after, `/health` timings,
counts against the truth) are printed; run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from selector.stats import Counts
from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.local import free_port
from stream.local.redis import RedisServer
from stream.wire.messages import SelectionResponse
from tests.integration.changelog import streamed_stats
from tests.integration.drill import CREATIVES, known_stream
from tests.integration.test_crash_safety import caught_up
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = [f"acct-{i}" for i in range(6)]
CONTACTS = [(ACCOUNTS[i % len(ACCOUNTS)], f"contact-{i}") for i in range(500)]
REQUEST_RATE, EVENT_RATE, DUPLICATE_SHARE = 40.0, 200.0, 0.05
OUTAGE_AT, OUTAGE_FOR, TRAFFIC_FOR = 15.0, 25.0, 70.0  # seconds from the start of traffic


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "settings": {"cooldown_seconds": 86400, "learning_threshold": 200},
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in CREATIVES],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


def event_stream(total: int, seed: int) -> tuple[list[Any], dict[str, dict[str, Counts]]]:
    """`total` events, 5% of them re-published copies of earlier ones, and the truth."""
    return known_stream(total, ACCOUNTS, DUPLICATE_SHARE, seed)


@dataclass(frozen=True, slots=True)
class Answered:
    sent: float  # seconds from the start of traffic
    latency: float | None  # None: no answer within the client's timeout
    account: str
    contact: str
    answer: Any


@dataclass(frozen=True, slots=True)
class Health:
    at: float
    body: dict[str, Any] | None


class Outage:
    """A Redis on a fixed port that can be killed and restarted empty, or frozen."""

    def __init__(self, root: Path) -> None:
        self.server = RedisServer(root / "redis", port=free_port())
        self.url = self.server.start()

    def begin(self, kind: str) -> None:
        assert self.server.pid is not None
        os.kill(self.server.pid, signal.SIGKILL if kind == "killed" else signal.SIGSTOP)

    def end(self, kind: str) -> None:
        if kind == "killed":
            self.server.stop()  # reaps the killed process
            self.server.start()  # the same port, nothing kept
        else:
            assert self.server.pid is not None
            os.kill(self.server.pid, signal.SIGCONT)


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Outage, WorkerProcess]]:
    redis = Outage(tmp_path)
    worker = WorkerProcess(
        worker_settings(kafka_bootstrap, redis.url, tmp_path / "state"), tmp_path / "worker.log"
    )
    try:
        worker.start()
        yield redis, worker
    finally:
        worker.stop()
        if redis.server.pid is not None:
            os.kill(redis.server.pid, signal.SIGCONT)
        redis.server.stop()


async def ask_steadily(client: SelectionClient, t0: float) -> list[Answered]:
    loop = asyncio.get_running_loop()

    async def one(i: int) -> Answered:
        account, contact = CONTACTS[i % len(CONTACTS)]
        sent = loop.time()
        try:
            answer: Any = await client.select(account, "k", contact, timeout=10.0)
            latency: float | None = loop.time() - sent
        except TimeoutError:
            answer, latency = None, None
        return Answered(sent - t0, latency, account, contact, answer)

    tasks = []
    for i in range(int(REQUEST_RATE * TRAFFIC_FOR)):
        await asyncio.sleep(max(0.0, t0 + i / REQUEST_RATE - loop.time()))
        tasks.append(asyncio.create_task(one(i)))
    return await asyncio.gather(*tasks)


async def publish_steadily(client: SelectionClient, events: list[Any], t0: float) -> None:
    loop, chunk = asyncio.get_running_loop(), 50
    for start in range(0, len(events), chunk):
        await asyncio.sleep(max(0.0, t0 + start / EVENT_RATE - loop.time()))
        await client.publish_events(events[start : start + chunk], batch_size=1)


async def watch_health(worker: WorkerProcess, t0: float, until: asyncio.Event) -> list[Health]:
    loop, seen = asyncio.get_running_loop(), []
    while not until.is_set():
        body = await asyncio.to_thread(worker.health)
        seen.append(Health(loop.time() - t0, body))
        await asyncio.sleep(0.25)
    return seen


async def break_redis(redis: Outage, kind: str, t0: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + OUTAGE_AT - loop.time()))
    redis.begin(kind)
    await asyncio.sleep(max(0.0, t0 + OUTAGE_AT + OUTAGE_FOR - loop.time()))
    await asyncio.to_thread(redis.end, kind)


def cooldown_breaches(answers: list[Answered]) -> list[tuple[str, str, str]]:
    """Automated, non-fallback answers that gave a contact a creative it already got
    (every creative's cooldown, a day, outlasts the test)."""
    given: dict[tuple[str, str], set[str]] = defaultdict(set)
    breaches = []
    for a in sorted(answers, key=lambda a: a.answer.decided_at):
        pair, answer = (a.account, a.contact), a.answer
        scored = answer.arm == "automated" and answer.pool != "fallback"
        if scored and answer.creative_id in given[pair]:
            breaches.append((a.account, a.contact, answer.creative_id))
        given[pair].add(answer.creative_id)
    return breaches


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
    return f"n={len(values)} p50={p50:.3f}s p99={p99:.3f}s max={ordered[-1]:.3f}s"


def health_timings(seen: list[Health]) -> tuple[float | None, float | None]:
    """Seconds from the outage's start to the first degraded report, and from its end to
    the last report that was not "ok"."""
    start, end = OUTAGE_AT, OUTAGE_AT + OUTAGE_FOR
    degraded = [h.at for h in seen if h.at >= start and (h.body or {}).get("status") == "degraded"]
    not_ok = [h.at for h in seen if (h.body or {}).get("status") != "ok" and h.at >= start]
    first = degraded[0] - start if degraded else None
    last = max(not_ok) - end if not_ok else None
    return first, last


async def run_traffic(
    redis: Outage, worker: WorkerProcess, kind: str, events: list[Any]
) -> tuple[list[Answered], list[Health]]:
    """Steady requests and events, Redis broken and restored meanwhile; returns once the
    stats have caught up with every event."""
    loop, stop_watching = asyncio.get_running_loop(), asyncio.Event()
    async with SelectionClient(worker.settings) as client:
        t0 = loop.time() + 0.5
        watching = asyncio.create_task(watch_health(worker, t0, stop_watching))
        outage = asyncio.create_task(break_redis(redis, kind, t0))
        publishing = asyncio.create_task(publish_steadily(client, events, t0))
        answers = await ask_steadily(client, t0)
        await publishing
        await outage
        await caught_up(worker.settings, timeout=180)
        stop_watching.set()
        return answers, await watching


SCRAPED = (
    "decisions_degraded_total",
    "dedup_retries_total",
    "dedup_refills_total",
    "dedup_refill_records_total",
    "cooldown_writes_replayed_total",
    "events_total",
)


def describe(kind: str, answers: list[Answered], seen: list[Health], scrape: Any) -> None:
    end = OUTAGE_AT + OUTAGE_FOR
    print(f"\nRedis {kind} for {OUTAGE_FOR:.0f} s at {OUTAGE_AT:.0f} s:")
    print(f"  requests {len(answers)}, answered {sum(a.latency is not None for a in answers)}")
    print(f"  creatives {sum(isinstance(a.answer, SelectionResponse) for a in answers)}")
    during = [a for a in answers if OUTAGE_AT <= a.sent < end]
    degraded = sum(getattr(a.answer, "cooldowns", None) == "degraded" for a in answers)
    print(f"  sent in the outage {len(during)}, marked degraded {degraded}")
    for name, part in (
        ("before", [a for a in answers if a.sent < OUTAGE_AT]),
        ("during", during),
        ("after", [a for a in answers if a.sent >= end]),
    ):
        print(f"  latency {name}: {percentiles([a.latency for a in part if a.latency])}")
    buckets: dict[int, list[float]] = defaultdict(list)
    for a in answers:
        buckets[int(a.sent // 2) * 2].append(a.latency or math.inf)
    print("  max latency per 2 s:", {t: round(max(v), 2) for t, v in sorted(buckets.items())})
    first, last = (None if t is None else round(t, 2) for t in health_timings(seen))
    print(f"  /health degraded {first} s after the start, ok again {last} s after the end")
    print(f"  metrics {scrape}")


@pytest.mark.parametrize("kind", ["killed", "frozen"])
async def test_a_redis_outage_loses_no_answer_no_cooldown_and_no_count(
    stack: tuple[Outage, WorkerProcess], kind: str
) -> None:
    redis, worker = stack
    settings = worker.settings
    await publish(validate_documents([catalog(a) for a in ACCOUNTS], settings), settings)
    await worker.wait_for("creative_selection_catalog_updates_total", 4 * len(ACCOUNTS))
    events, truth = event_stream(int(EVENT_RATE * TRAFFIC_FOR), seed=23)
    answers, seen = await run_traffic(redis, worker, kind, events)
    streamed = await streamed_stats(settings)
    scrape = {name: worker.metric(f"creative_selection_{name}") for name in SCRAPED}
    describe(kind, answers, seen, scrape)
    print(f"  events {len(events)}, streamed stats equal the truth: {streamed == truth}")

    assert all(a.latency is not None for a in answers), "a request went unanswered"
    assert all(isinstance(a.answer, SelectionResponse) for a in answers), "an error answer"
    degraded = [a for a in answers if a.answer.cooldowns == "degraded"]
    assert degraded and scrape["decisions_degraded_total"] == len(degraded)
    assert cooldown_breaches(answers) == []
    first_degraded, last_not_ok = health_timings(seen)
    assert first_degraded is not None and first_degraded <= 5.0
    assert last_not_ok is not None and last_not_ok <= 15.0
    assert (seen[-1].body or {}).get("status") == "ok"
    assert {(h.body or {}).get("status") for h in seen} <= {"ok", "degraded"}  # always ready
    assert scrape["dedup_retries_total"] > 0
    if kind == "killed":  # back empty: refilled from the topics
        assert scrape["dedup_refill_records_total"] > 0
    assert streamed == truth
