"""Rebalances: two workers share four partitions while 40,000 events (5% re-published
event ids) and steady selection requests flow; one worker is SIGKILLed and restarted
after the session timeout (two rebalances: the group drops it, then it rejoins), or
stopped with SIGTERM and restarted the same way, or a third worker joins mid-stream
(the stream's last tenth waits until the disruption is over, so it always falls
mid-stream, however slow a restart is).
After catch-up the streamed stats equal the ground truth exactly, without the daily job,
no stats value in the changelog ever goes back, and every request has exactly one
answer on the responses topic (the same answer sent again counts as one).

By hand, more runs: `scripts/rebalance-drill 10` (see there), or one scenario with
`python -m pytest -m integration tests/integration/test_rebalance.py -k sigkill -s`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.catalog_files import publish, validate_documents
from tests.integration import drill
from tests.integration.changelog import regressions, streamed_stats
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = float(os.environ.get("DRILL_SESSION", "10"))
TOTAL = 40_000
EVENT_RATE = float(os.environ.get("DRILL_RATE", "1000"))  # events/s
REQUEST_RATE = 20.0  # requests/s, for as long as the events flow
# seconds into the stream: by default a quarter of its duration
DISRUPT_AT = float(os.environ.get("DRILL_DISRUPT_AT", str(0.25 * TOTAL / EVENT_RATE)))
# seconds from stopping a worker to restarting it: beyond the session timeout
RESTART_AFTER = float(os.environ.get("DRILL_RESTART_AFTER", str(SESSION_TIMEOUT + 4.0)))
# Events and requests per message: 1 publishes single v1 messages; more, batch envelopes
# of one account (the client's default is 100).
BATCH = int(os.environ.get("DRILL_BATCH", "1"))


class Group:
    """Workers of one consumer group: same topics and group id, their own instance id,
    web port and state directory."""

    def __init__(self, bootstrap: str, redis_url: str, root: Path) -> None:
        self.root = root
        self.base = worker_settings(
            bootstrap,
            redis_url,
            root / "state",
            CS_SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT),
            CS_STATS_BATCH="500",
        )
        # each drill its own dedup records: the streams repeat their event ids
        self.base["CS_REDIS_KEY_PREFIX"] = self.base["CS_APP_ID"] + ":"
        self.workers: dict[str, WorkerProcess] = {}

    def worker(self, name: str) -> WorkerProcess:
        if name not in self.workers:
            env = worker_settings(
                self.base["CS_KAFKA_BOOTSTRAP"], self.base["CS_REDIS_URL"], self.root / name
            )
            env = {
                **self.base,
                "CS_WEB_PORT": env["CS_WEB_PORT"],
                "CS_STATE_DIR": env["CS_STATE_DIR"],
                "CS_GROUP_INSTANCE_ID": f"drill-{name}",
            }
            self.workers[name] = WorkerProcess(env, self.root / f"{name}.log")
        return self.workers[name]

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


@pytest.fixture
def group(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Group]:
    workers = Group(kafka_bootstrap, redis_url, tmp_path)
    yield workers
    workers.stop()


Disruption = Callable[[Group], Awaitable[None]]


async def kill_and_restart(group: Group) -> None:
    group.worker("b").kill()
    await asyncio.sleep(RESTART_AFTER)  # the group drops it: a first rebalance
    await asyncio.to_thread(group.worker("b").start)  # it rejoins: a second


async def stop_and_restart(group: Group) -> None:
    await asyncio.to_thread(group.worker("b").stop)
    await asyncio.sleep(RESTART_AFTER)
    await asyncio.to_thread(group.worker("b").start)


async def third_joins(group: Group) -> None:
    await asyncio.to_thread(group.worker("c").start)


async def drill_run(group: Group, disrupt: Disruption) -> None:
    first = group.worker("a")
    first.start()
    settings = first.settings
    names = drill.accounts(settings.partitions)
    await publish(validate_documents([drill.catalog(a) for a in names], settings), settings)
    await first.wait_for("creative_selection_catalog_updates_total", 4 * len(names))
    await asyncio.to_thread(group.worker("b").start)
    events, truth = drill.known_stream(TOTAL, names)
    commits = drill.CommitSampler(settings, (*drill.EVENT_TOPICS, "selection-requests"))
    commits.start()
    traffic = drill.Traffic(settings, events, names, EVENT_RATE, REQUEST_RATE, batch=BATCH)
    flow = asyncio.create_task(traffic.run())
    await asyncio.sleep(DISRUPT_AT)
    assert not flow.done(), "the stream ended before the disruption began"
    await disrupt(group)
    traffic.over.set()  # the stream's last tenth follows the disruption
    await flow
    took = await drill.stats_caught_up(settings, timeout=240)
    found = await drill.answers(settings, traffic.requests, timeout=120)
    await commits.stop()
    (group.root / "commits.json").write_text(json.dumps(commits.samples))
    streamed = await streamed_stats(settings)
    report = drill.answer_report(traffic.requests, found)
    back = await regressions(settings)
    print(f"stream's tail held {traffic.held_seconds:.1f}s for the disruption to end")
    print(f"caught up {took:.1f}s after the stream; {len(traffic.requests)} requests: {report}")
    print("stats differences:", drill.stats_differences(streamed, truth) or "none")
    print(f"values that went back ({len(back)}):", back[:40] or "none")
    print("commits that stood still:", commits.stalls())
    unanswered = {r for r in traffic.requests if r not in found}
    if unanswered:
        print("unanswered:", await drill.positions(settings, "selection-requests", unanswered))
    healths = await settle(group)
    print("health:", healths)
    assert all(h["partitions_to_read_back"] == 0 for h in healths.values())
    assert drill.stats_differences(streamed, truth) == {}
    assert streamed == truth
    assert back == []
    assert report["unanswered"] == report["different"] == 0
    assert report["one"] + report["repeated"] == len(traffic.requests)


async def settle(group: Group, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The running workers' /health once none has messages left to read back."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        healths = {
            name: await asyncio.to_thread(health_body, w)
            for name, w in group.workers.items()
            if w.proc is not None and w.proc.poll() is None
        }
        left = sum(h.get("partitions_to_read_back", 1) for h in healths.values())
        if not left or asyncio.get_running_loop().time() > deadline:
            for name, health in healths.items():
                if not health or health.get("status") != "ok":  # stacks go to its log
                    print(f"{name} not ok: {health}")
                    for signum in (signal.SIGUSR1, signal.SIGUSR2):
                        group.workers[name].proc.send_signal(signum)  # type: ignore[union-attr]
            keys = (
                "resumes_from_record",
                "redelivered_requests_skipped",
                "partitions_to_read_back",
            )
            return {n: {k: h.get(k) for k in keys} for n, h in healths.items()}
        await asyncio.sleep(1.0)


def health_body(worker: WorkerProcess) -> dict[str, Any]:
    """`/health`'s body, a 503's included ({} when the worker does not answer)."""
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))
    except OSError:
        return {}


async def test_sigkill_and_restart_after_the_session_timeout(group: Group) -> None:
    await drill_run(group, kill_and_restart)


async def test_sigterm_and_restart_after_the_session_timeout(group: Group) -> None:
    await drill_run(group, stop_and_restart)


async def test_a_third_worker_joins_mid_stream(group: Group) -> None:
    await drill_run(group, third_joins)
