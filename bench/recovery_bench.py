"""What a table recovery costs: records/s and seconds per 100,000 keys, for a worker that
starts cold and for a takeover after a worker is SIGKILLed, without and with standby
replicas (`CS_TABLE_STANDBY_REPLICAS`).

    python -m bench.recovery_bench [--keys 100000] [--json PATH]

Starts the project's own Kafka (or uses `--bootstrap`), fills the stats table's changelog
with `--keys` accounts (one ledger each, as the stats agent writes them), then for each
scenario starts `creative-select worker` processes and reads, from the worker's log, how
long Faust spent reading changelogs ("Restoring state" to "Done reading"). The catalog
and answers tables are empty, so the time is the stats table's. Figures go in
deploy/README.md, "Rebalances"; on a shared machine repeat and compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from selector.ingest import Ledger
from selector.stats import AccountStats
from stream.local import free_port
from stream.local.harness import Worker
from stream.local.kafka import KafkaBroker
from stream.wire.ledger_codec import dumps

SESSION_TIMEOUT = 6.0
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def ledger(i: int) -> Ledger:
    stats = AccountStats()
    for n in range(4):
        for _ in range(1 + (i + n) % 3):
            stats = stats.apply("send", f"c{n}", 1000.0 + i)
    applied = {f"sends:{i % 4}": i, f"clicks:{i % 4}": i // 3}
    return Ledger(stats, MappingProxyType(applied))


async def fill(bootstrap: str, topic: str, keys: int) -> int:
    """Produce one ledger per key to the changelog; returns the bytes written."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    await producer.start()
    size = 0
    try:
        pending = []
        for i in range(keys):
            value = dumps(ledger(i))
            size += len(value)
            pending.append(await producer.send(topic, value, key=f"acct-{i}".encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return size


async def records_in(bootstrap: str, topic: str, partitions: list[int]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def recoveries(log: Path) -> list[float]:
    """Seconds each changelog read took, in the order of the worker's log."""
    out, started = [], None
    for line in log.read_text(errors="replace").splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if "Restoring state from changelog topics" in line:
            started = at
        elif "Done reading from changelog topics" in line and started is not None:
            out.append(at - started)
            started = None
    return out


def wait_for(test: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def healthy(worker: Worker) -> bool:
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Bench:
    def __init__(self, bootstrap: str, root: Path, keys: int) -> None:
        self.bootstrap, self.root, self.keys = bootstrap, root, keys
        name = uuid.uuid4().hex[:8]
        self.env = {
            "CS_KAFKA_BOOTSTRAP": bootstrap,
            "CS_TOPIC_PREFIX": f"r{name}-",
            "CS_APP_ID": f"rb-{name}",
            "CS_PARTITIONS": "4",
            "CS_COOLDOWN_STORE": "memory",
            "CS_SESSION_TIMEOUT_SECONDS": str(SESSION_TIMEOUT),
            "CS_LOG_LEVEL": "info",
        }
        self.changelog = f"{self.env['CS_APP_ID']}-account-to-stats-changelog"

    def worker(self, name: str, standbys: int) -> Worker:
        env = {
            **self.env,
            "CS_WEB_PORT": str(free_port()),
            "CS_STATE_DIR": str(self.root / name),
            "CS_GROUP_INSTANCE_ID": name,
            "CS_TABLE_STANDBY_REPLICAS": str(standbys),
        }
        return Worker(env, self.root / f"{name}.log")

    def prepare(self) -> int:
        """A worker declares every topic; then the changelog is filled."""
        first = self.worker("declare", 0)
        first.start()
        first.stop()
        return asyncio.run(fill(self.bootstrap, self.changelog, self.keys))

    def cold(self) -> dict[str, float]:
        worker = self.worker(f"cold-{uuid.uuid4().hex[:4]}", 0)
        started = time.monotonic()
        worker.start(timeout=600)
        ready = time.monotonic() - started
        worker.stop()
        seconds = recoveries(worker.log_path)[0]
        return self.figures(self.keys, self.keys, seconds) | {"to_healthy_seconds": ready}

    def takeover(self, standbys: int) -> dict[str, float]:
        tag = uuid.uuid4().hex[:4]
        a, b = (
            self.worker(f"a{standbys}-{tag}", standbys),
            self.worker(f"b{standbys}-{tag}", standbys),
        )
        a.start(timeout=600)
        b.start(timeout=600)
        wait_for(lambda: healthy(a) and healthy(b), 600, "the two workers did not settle")
        time.sleep(3.0 * standbys)  # the standby catches up with its changelog partitions
        before = len(recoveries(a.log_path))
        assert b.proc is not None
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        killed = time.monotonic()
        wait_for(lambda: len(recoveries(a.log_path)) > before, 600, "no takeover recovery")
        wait_for(lambda: healthy(a), 600, "the survivor did not become healthy")
        ready = time.monotonic() - killed
        a.stop()
        seconds = recoveries(a.log_path)[-1]
        moved = self.keys // 2  # the killed worker's two partitions, about half the keys
        return self.figures(moved, moved, seconds) | {"kill_to_healthy_seconds": ready}

    @staticmethod
    def figures(keys: int, records: int, seconds: float) -> dict[str, float]:
        return {
            "keys": keys,
            "records": records,
            "recovery_seconds": round(seconds, 3),
            "records_per_second": round(records / seconds) if seconds else 0.0,
            "seconds_per_100k_keys": round(seconds * 100_000 / keys, 3),
        }


def run(bootstrap: str, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        bench = Bench(bootstrap, Path(tmp), keys)
        size = bench.prepare()
        report: dict[str, Any] = {"keys": keys, "changelog_bytes": size}
        report["records"] = asyncio.run(records_in(bootstrap, bench.changelog, [0, 1, 2, 3]))
        report["cold_start"] = bench.cold()
        report["takeover_standby_0"] = bench.takeover(0)
        report["takeover_standby_1"] = bench.takeover(1)
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery_bench", description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    if args.bootstrap:
        report = run(args.bootstrap, args.keys)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="recovery-kafka-") as tmp,
            KafkaBroker(Path(tmp)) as broker,
        ):
            report = run(broker.bootstrap, args.keys)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
