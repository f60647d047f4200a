"""A local stack for demos, benchmarks and integration tests: the project's own Kafka and
Redis (or given ones), every topic, and `creative-select worker` in a subprocess.

`Worker` runs any command line that starts a worker (by default this interpreter's
`python -m stream.cli worker`; the wheel test passes an installed `creative-select`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stream.adapters.topic_specs import all_topics, ensure_topics
from stream.local import free_port
from stream.settings import Settings

KAFKA_HEAP = ("128m", "384m")
PARTITIONS = 4


def warn(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


class Worker:
    """`creative-select worker` in a subprocess, logging to a file."""

    def __init__(
        self, env: dict[str, str], log_path: Path, command: Sequence[str] | None = None
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.command = list(command or [sys.executable, "-m", "stream.cli", "worker"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CS_WEB_PORT']}"

    def start(self, timeout: float = 120.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command,
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

    def dump_stacks(self, settle: float = 2.0) -> None:
        """Have the worker write every thread's stack (SIGUSR1) and every asyncio task's
        chain of awaits (SIGUSR2) to its log: what a worker that does not stop is doing."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=settle)

    def stop(self, grace: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                warn(f"the worker ignored SIGTERM for {grace:.0f}s; killing it (stacks in its log)")
                self.dump_stacks()
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
        env |= worker_env(bootstrap, redis_url, prefix, root)
        settings = Settings.from_env(env)
        asyncio.run(ensure_topics(settings, all_topics(settings)))
        if prefix:  # on a broker that was given: say where the topics are, for `report`
            warn(f"topics: CS_TOPIC_PREFIX={prefix} CS_APP_ID={env['CS_APP_ID']}")
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
        if done:
            shutil.rmtree(root, ignore_errors=True)
        else:
            warn(f"kept {root} for its logs (the run did not finish)")


def worker_env(bootstrap: str, redis_url: str | None, prefix: str, root: Path) -> dict[str, str]:
    """The settings of a local worker: its own app id, state folder and web port."""
    return {
        "CS_KAFKA_BOOTSTRAP": bootstrap,
        "CS_REDIS_URL": redis_url or "redis://127.0.0.1:6379/0",
        "CS_TOPIC_PREFIX": prefix,
        "CS_APP_ID": f"creative-select-demo-{uuid.uuid4().hex[:8]}",
        "CS_STATE_DIR": str(root / "state"),
        "CS_WEB_PORT": str(free_port()),
        "CS_PARTITIONS": str(PARTITIONS),
        "CS_LOG_LEVEL": "info",
    }


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
