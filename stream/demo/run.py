"""The end-to-end demo: a simulated sender against a real worker, through Kafka and Redis.

`creative-select demo` (see `stream.commands.demo`) starts a local Kafka broker and Redis
(or reuses given ones), creates the topics, starts one worker process and publishes the
scenario's account. Then a simulated sender plays the scenario in rounds over simulated
time: each round it asks the service for a creative for a batch of contacts
(`SelectionClient.select_many`, the simulated time as the request time), draws clicks and
conversions from the scenario's true rates for the creative each contact got, publishes
the sends at once and the clicks and conversions once the simulated clock has passed the
send time plus the scenario's feedback delay. The learning loop closes through Kafka: the
worker's stats agent applies the events and its selection agent decides on them.

At the end the report is built from what went through Kafka alone: the sends, clicks,
conversions and selection-responses topics are read from the beginning, each send joined
to its answer by `request_id`, and `selector.report.build_report` summarizes them.

Simulated time is epoch seconds that end before the wall clock, so the worker's
too-far-in-the-future check never rejects an event; the report counts from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.domain import DAY_SECONDS
from selector.report import Report, build_report
from selector.scenario import Phase, Scenario
from selector.simulate import SimulationResult
from selector.stats import AccountStats
from stream.adapters.producer import all_topics, describe_topics, ensure_topics, kafka_config
from stream.client import SelectionClient
from stream.commands.publish_catalog import publish, validate_documents
from stream.local import free_port
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import (
    TOPICS,
    ClickEvent,
    ConversionEvent,
    SelectionError,
    SelectionResponse,
    SendEvent,
)

Array = np.ndarray[Any, Any]
CATALOG_METRIC = "creative_selection_catalog_updates_total"
EVENTS_METRIC = "creative_selection_events_total"
KAFKA_HEAP = ("128m", "384m")
PARTITIONS = 4


def warn(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


# --- the scenario as a catalog, and its truth -----------------------------------------------


def account_document(scenario: Scenario) -> dict[str, Any]:
    """The scenario's account as a catalog document (`account_from_dict`'s shape): its
    settings, offers, creatives and campaign, without the true rates only a simulation has.
    """
    account = scenario.account
    settings = dataclasses.asdict(account.settings)
    settings["methods"] = {m["method"]: m["traffic_pct"] for m in settings["methods"]}
    settings = {k: v for k, v in settings.items() if v is not None}
    return {
        "account_id": account.account_id,
        "settings": settings,
        "offers": [dataclasses.asdict(o) for o in account.offers],
        "creatives": [dataclasses.asdict(c) for c in account.creatives],
        "campaigns": [_plain(dataclasses.asdict(c)) for c in account.campaigns],
    }


def _plain(value: Any) -> Any:
    """Tuples to lists and None fields dropped, so the document reads like a file."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Truth:
    """One phase of the scenario's truth, indexed by segment x creative."""

    phase: Phase
    click: Array
    conversion: Array
    value: Array  # revenue per send, or click rate for the clicks goal
    pays_per_click: Array  # payout of a click (cto offers), else 0
    pays_per_conversion: Array  # payout of a conversion (cpa offers), else 0
    candidate: Array


def truths(scenario: Scenario) -> list[Truth]:
    out = []
    for phase in scenario.phases():
        account = phase.account
        payout = {o.offer_id: o.payout for o in account.offers}
        cto_offer = {o.offer_id: o.payout_type == "cto" for o in account.offers}
        pays = np.array([payout[c.offer_id] for c in account.creatives])
        cto = np.array([cto_offer[c.offer_id] for c in account.creatives], dtype=bool)
        click, conv = phase.click_rate, phase.conversion_rate
        rps = click * np.where(cto, 1.0, conv) * pays
        value = click if account.settings.goal == "clicks" else rps
        candidate = np.array([c.is_candidate for c in account.creatives], dtype=bool)
        out.append(
            Truth(
                phase,
                click,
                conv,
                value,
                np.where(cto, pays, 0.0),
                np.where(cto, 0.0, pays),
                candidate,
            )
        )
    return out


def truth_at(table: Sequence[Truth], offset: float) -> Truth:
    return [t for t in table if t.phase.start_seconds <= offset][-1]


# --- the worker process -----------------------------------------------------------------------


class Worker:
    """`creative-select worker` in a subprocess, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CS_WEB_PORT']}"

    def start(self, timeout: float = 120.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the worker cleanly
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.proc.returncode}):\n{self.tail()}")
            if self._healthy() and "Worker]: Ready" in self._text():
                return
            time.sleep(0.3)
        raise TimeoutError(f"the worker was not ready in {timeout:.0f}s:\n{self.tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                return True
        except OSError:
            return False

    def _text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self._text().splitlines()[-lines:])

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not (line.startswith(name + "{") or line.startswith(name + " ")):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def wait_for(
        self, name: str, value: float, timeout: float = 120.0, **labels: str
    ) -> float:
        """Poll /metrics until `name{labels}` reaches `value`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = 0.0
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                seen = await asyncio.to_thread(self.metric, name, **labels)
            if seen >= value:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}{labels or ''} reached {seen:g}, not {value:g}")
            await asyncio.sleep(0.1)

    def stop(self, grace: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                warn(f"the worker ignored SIGTERM for {grace:.0f}s; killing it")
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


# --- the services -----------------------------------------------------------------------------


@dataclass
class Services:
    """What the demo runs on: the worker's settings and the worker itself."""

    settings: Settings
    worker: Worker
    root: Path


@contextlib.contextmanager
def services(
    bootstrap: str | None = None,
    redis_url: str | None = None,
    keep_running: bool = False,
) -> Iterator[Services]:
    """Kafka, Redis, topics and one ready worker; stopped on exit unless `keep_running`.

    Given a `bootstrap`, the demo reuses that broker with topics of its own (a unique
    prefix); given a `redis_url`, that Redis. Without redis-server the worker keeps its
    cooldowns in memory, with a warning.
    """
    root = Path(tempfile.mkdtemp(prefix="creative-select-demo-"))
    stoppers: list[Callable[[], None]] = []
    env: dict[str, str] = {}
    done = False
    try:
        if bootstrap is None:
            from stream.local.kafka import BrokerOptions, KafkaBroker

            broker = KafkaBroker(
                root / "kafka",
                BrokerOptions(
                    num_partitions=PARTITIONS, heap_min=KAFKA_HEAP[0], heap_max=KAFKA_HEAP[1]
                ),
            )
            stoppers.append(broker.stop)
            bootstrap = broker.start()
            prefix = ""
        else:
            prefix = f"demo{uuid.uuid4().hex[:8]}-"
        if redis_url is None:
            redis_url = _start_redis(root, stoppers, env)
        name = uuid.uuid4().hex[:8]
        env |= {
            "CS_KAFKA_BOOTSTRAP": bootstrap,
            "CS_REDIS_URL": redis_url or "redis://127.0.0.1:6379/0",
            "CS_TOPIC_PREFIX": prefix,
            "CS_APP_ID": f"creative-select-demo-{name}",
            "CS_STATE_DIR": str(root / "state"),
            "CS_WEB_PORT": str(free_port()),
            "CS_PARTITIONS": str(PARTITIONS),
            "CS_LOG_LEVEL": "info",
        }
        settings = Settings.from_env(env)
        asyncio.run(ensure_topics(settings, all_topics(settings)))
        worker = Worker(env, root / "worker.log")
        stoppers.append(worker.stop)
        warn(f"starting the worker (log: {worker.log_path})")
        started = time.monotonic()
        worker.start()
        warn(f"worker ready in {time.monotonic() - started:.1f}s at {worker.url}")
        found = Services(settings, worker, root)
        yield found
        done = True
    finally:
        if keep_running and done:
            _hold(env, root)
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                warn(f"while stopping: {type(exc).__name__}: {exc}")
        shutil.rmtree(root, ignore_errors=True)


def _start_redis(root: Path, stoppers: list[Callable[[], None]], env: dict[str, str]) -> str | None:
    from stream.local.redis import RedisServer

    server = RedisServer(root / "redis")
    try:
        url = server.start()
    except Exception as exc:  # any failure: no Redis, use memory
        warn(
            f"WARNING: no Redis ({type(exc).__name__}: {exc}); the worker keeps cooldowns in "
            "memory (CS_COOLDOWN_STORE=memory), which a production deployment must not do"
        )
        env["CS_COOLDOWN_STORE"] = "memory"
        return None
    stoppers.append(server.stop)
    return url


def _hold(env: dict[str, str], root: Path) -> None:
    """--keep-running: print where everything is and wait for Ctrl-C."""
    print("\nStill running (Ctrl-C stops everything):", flush=True)
    for key in ("CS_KAFKA_BOOTSTRAP", "CS_REDIS_URL", "CS_TOPIC_PREFIX", "CS_COOLDOWN_STORE"):
        if key in env:
            print(f"  {key}={env[key]}", flush=True)
    print(f"  metrics: http://127.0.0.1:{env['CS_WEB_PORT']}/metrics", flush=True)
    print(f"  worker log: {root / 'worker.log'}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        warn("stopping")


# --- the simulated sender ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderStats:
    requests: int
    responses: int
    errors: int
    unanswered: int
    events_published: int
    wall_seconds: float


class Sender:
    """Plays the scenario's sender against the service, round by round."""

    def __init__(
        self,
        scenario: Scenario,
        settings: Settings,
        worker: Worker,
        sends: int,
        seed: int,
        start_time: float,
        batch_size: int,
    ) -> None:
        self.scenario = scenario
        self.settings = settings
        self.worker = worker
        self.sends = sends
        self.start_time = start_time
        self.batch_size = batch_size
        self.truths = truths(scenario)
        contact_rng, self.outcome_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
        )
        self.contact_rng = contact_rng
        shares = scenario.segment_shares()
        self.segment_of = contact_rng.choice(shares.size, size=scenario.contacts, p=shares)
        self.account_id = scenario.account.account_id
        self.campaign_id = scenario.account.campaigns[0].campaign_id
        self.creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
        self.index = {cid: k for k, cid in enumerate(self.creative_ids)}
        self.best = int(np.argmax(self.truths[0].value[0]))
        self.pending: deque[tuple[float, list[ClickEvent | ConversionEvent]]] = deque()
        self.published = 0
        self.requests = self.responses = self.errors = self.unanswered = 0
        self.best_share = math.nan

    @property
    def seconds_per_send(self) -> float:
        return DAY_SECONDS / self.scenario.sends_per_day

    async def run(self, progress: Callable[[int, float], None] | None = None) -> SenderStats:
        started = time.monotonic()
        async with SelectionClient(self.settings, timeout=120.0) as client:
            for first in range(0, self.sends, self.batch_size):
                size = min(self.batch_size, self.sends - first)
                offset = first * self.seconds_per_send
                await self._deliver_feedback(client, offset)
                await self._round(client, offset, size)
                await self._wait_applied()
                if progress is not None:
                    progress(first + size, self.best_share)
            await self._deliver_feedback(client, math.inf)
            await self._wait_applied(timeout=300.0)
        return SenderStats(
            self.requests,
            self.responses,
            self.errors,
            self.unanswered,
            self.published,
            time.monotonic() - started,
        )

    async def _round(self, client: SelectionClient, offset: float, size: int) -> None:
        now = self.start_time + offset
        contacts = self.contact_rng.choice(self.scenario.contacts, size=size, replace=False)
        requests = [(self.account_id, self.campaign_id, f"contact-{c}", now) for c in contacts]
        answers = await client.select_many(requests, return_exceptions=True)
        self.requests += size
        truth = truth_at(self.truths, offset)
        due = offset + self.scenario.feedback_delay_seconds
        sends: list[SendEvent] = []
        feedback: list[ClickEvent | ConversionEvent] = []
        automated = best = 0
        rand = self.outcome_rng.random((size, 2))
        for i, (contact, answer) in enumerate(zip(contacts.tolist(), answers, strict=True)):
            if isinstance(answer, SelectionError):
                self.errors += 1
                continue
            if not isinstance(answer, SelectionResponse):
                self.unanswered += 1
                continue
            self.responses += 1
            k = self.index[answer.creative_id]
            if answer.arm == "automated":
                automated += 1
                best += k == self.best
            contact_id, segment = f"contact-{contact}", int(self.segment_of[contact])
            send_id = f"send-{answer.request_id}"
            sends.append(
                SendEvent(
                    send_id,
                    self.account_id,
                    self.campaign_id,
                    contact_id,
                    answer.creative_id,
                    now,
                    request_id=answer.request_id,
                )
            )
            if rand[i, 0] >= truth.click[segment, k]:
                continue
            at = self.start_time + due
            common = (self.account_id, contact_id, answer.creative_id, at)
            feedback.append(
                ClickEvent(f"click-{answer.request_id}", *common, send_id, self.campaign_id)
            )
            if rand[i, 1] < truth.conversion[segment, k]:
                revenue = float(truth.pays_per_conversion[k])
                feedback.append(
                    ConversionEvent(
                        f"conv-{answer.request_id}",
                        *common,
                        revenue,
                        send_id,
                        self.campaign_id,
                    )
                )
        if automated:
            self.best_share = best / automated
        self.published += await client.publish_events(sends)
        self.pending.append((due, feedback))

    async def _deliver_feedback(self, client: SelectionClient, offset: float) -> None:
        while self.pending and self.pending[0][0] <= offset:
            _, events = self.pending.popleft()
            self.published += await client.publish_events(events)

    async def _wait_applied(self, timeout: float = 120.0) -> None:
        """Until the worker has taken in every event published so far (applied or not), so
        each round decides on the stats its simulated time would have."""
        await self.worker.wait_for(EVENTS_METRIC, self.published, timeout=timeout)


# --- the report, from what went through Kafka -----------------------------------------------


async def read_topics(settings: Settings, kinds: Sequence[str]) -> dict[str, list[Any]]:
    """Every decodable message of each kind's topic, from the beginning to the current end."""
    topics = {settings.topic(TOPICS[kind]): kind for kind in kinds}  # type: ignore[index]
    consumer = AIOKafkaConsumer(**kafka_config(settings), group_id=None, enable_auto_commit=False)
    out: dict[str, list[Any]] = {kind: [] for kind in kinds}
    await consumer.start()
    try:
        described = await describe_topics(settings, topics)
        partitions = [
            TopicPartition(topic, p)
            for topic, state in described.items()
            for p in range(state.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                kind = topics[tp.topic]
                for record in records:
                    decoded = codec.decode(kind, record.value)
                    if not isinstance(decoded, codec.Rejected):
                        out[kind].append(decoded)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


def build_result(
    scenario: Scenario,
    messages: Mapping[str, list[Any]],
    segment_of: Array,
    start_time: float,
    seed: int,
    account_id: str,
) -> tuple[SimulationResult, dict[str, int]]:
    """Per send (joined to its selection answer by request_id, and to its click and
    conversion by send_event_id): the columns `build_report` takes. Expected and oracle
    values come from the scenario's truth; the oracle's eligible creatives replay the
    cooldowns from the sends themselves."""
    answers = {
        r.request_id: r
        for r in messages["selection_response"]
        if isinstance(r, SelectionResponse) and r.account_id == account_id
    }
    sends = sorted(
        (s for s in messages["send"] if s.account_id == account_id),
        key=lambda s: (s.time, s.event_id),
    )
    clicked = {c.send_event_id for c in messages["click"] if c.account_id == account_id}
    converted = {
        c.send_event_id: c.revenue for c in messages["conversion"] if c.account_id == account_id
    }
    table = truths(scenario)
    creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
    index = {cid: k for k, cid in enumerate(creative_ids)}
    window = scenario.account.settings.cooldown_seconds
    last_sent: dict[str, dict[int, float]] = {}
    n = len(sends)
    cols: dict[str, Array] = {
        "time": np.zeros(n),
        "contact": np.zeros(n, dtype=np.int32),
        "segment": np.zeros(n, dtype=np.uint8),
        "creative": np.zeros(n, dtype=np.int16),
        "arm": np.zeros(n, dtype=np.uint8),
        "method": np.zeros(n, dtype=np.uint8),
        "pool": np.zeros(n, dtype=np.uint8),
        "propensity": np.full(n, np.nan),
        "click": np.zeros(n, dtype=bool),
        "conversion": np.zeros(n, dtype=bool),
        "revenue": np.zeros(n),
        "expected": np.zeros(n),
        "oracle": np.zeros(n),
    }
    unmatched = 0
    keep = np.ones(n, dtype=bool)
    for i, send in enumerate(sends):
        answer = answers.get(send.request_id or "")
        if answer is None:
            unmatched += 1
            keep[i] = False
            continue
        offset = send.time - start_time
        truth = truth_at(table, offset)
        contact = int(send.contact_id.rsplit("-", 1)[1])
        segment = int(segment_of[contact])
        k = index[send.creative_id]
        history = last_sent.setdefault(send.contact_id, {})
        eligible = truth.candidate.copy()
        for j, when in history.items():
            if send.time - when < window:
                eligible[j] = False
        values = truth.value[segment]
        expected = float(values[k])
        oracle = float(values[eligible].max()) if eligible.any() else expected
        history[k] = send.time
        click = send.event_id in clicked
        conversion = send.event_id in converted
        revenue = click * float(truth.pays_per_click[k]) + converted.get(send.event_id, 0.0)
        row = {
            "time": offset, "contact": contact, "segment": segment, "creative": k,
            "arm": ARMS.index(answer.arm), "method": DECIDED_BY.index(answer.method),
            "pool": POOLS.index(answer.pool),
            "propensity": math.nan if answer.propensity is None else answer.propensity,
            "click": click, "conversion": conversion, "revenue": revenue,
            "expected": expected, "oracle": oracle,
        }  # fmt: skip
        for name, value in row.items():
            cols[name][i] = value
    result = SimulationResult(
        scenario=f"{scenario.name} (demo through Kafka)",
        seed=seed,
        goal=scenario.account.settings.goal,
        creative_ids=creative_ids,
        final_stats=AccountStats(),
        **{name: column[keep] for name, column in cols.items()},
    )
    counts = {
        "sends": n,
        "responses": len(answers),
        "clicks": len(clicked),
        "conversions": len(converted),
        "sends_without_response": unmatched,
    }
    return result, counts


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    report: Report
    sender: SenderStats
    kafka_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "sender": dataclasses.asdict(self.sender),
            "kafka": self.kafka_counts,
        }


async def run_demo(
    scenario: Scenario,
    found: Services,
    *,
    sends: int,
    seed: int,
    batch_size: int | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> DemoOutcome:
    """Publish the catalog, play the sender, wait for the worker, and report from Kafka."""
    settings, worker = found.settings, found.worker
    before = await asyncio.to_thread(worker.metric, CATALOG_METRIC)
    catalogs = validate_documents([account_document(scenario)], settings)
    await publish(catalogs, settings)
    await worker.wait_for(CATALOG_METRIC, before + 4, timeout=60.0)
    batch = min(batch_size or scenario.batch_size, scenario.contacts)
    seconds = sends / scenario.sends_per_day * DAY_SECONDS
    # simulated time ends (feedback included) an hour before the wall clock
    start_time = math.floor(time.time() - seconds - scenario.feedback_delay_seconds - 3600)
    sender = Sender(scenario, settings, worker, sends, seed, start_time, batch)
    stats = await sender.run(progress)
    applied = await asyncio.to_thread(worker.metric, EVENTS_METRIC, outcome="applied")
    messages = await read_topics(settings, ["send", "click", "conversion", "selection_response"])
    result, counts = build_result(
        scenario, messages, sender.segment_of, start_time, seed, scenario.account.account_id
    )
    counts["events_applied"] = int(applied)
    return DemoOutcome(build_report(result), stats, counts)
