"""A real worker process for integration tests: `creative-select worker` in a subprocess
with its own topic prefix, group, state directory and web port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from stream.local import free_port
from stream.settings import Settings


def worker_settings(
    bootstrap: str, redis_url: str, state_dir: Path, **extra: str
) -> dict[str, str]:
    name = uuid.uuid4().hex[:8]
    env = {
        "CS_KAFKA_BOOTSTRAP": bootstrap,
        "CS_REDIS_URL": redis_url,
        "CS_TOPIC_PREFIX": f"t{name}-",
        "CS_APP_ID": f"cs-{name}",
        "CS_STATE_DIR": str(state_dir),
        "CS_WEB_PORT": str(free_port()),
        "CS_PARTITIONS": "4",
        "CS_LOG_LEVEL": "info",
    }
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = Settings.from_env(env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CS_WEB_PORT']}"

    def start(self, timeout: float = 90.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.tail()}")
            if self.health() is not None and self._assigned():
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout}s: {self.tail()}")

    def _assigned(self) -> bool:
        return "Worker]: Ready" in self.log_path.read_text(errors="replace")

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return dict(json.loads(response.read()))
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def wait_for(
        self, name: str, value: float, timeout: float = 60.0, **labels: str
    ) -> float:
        deadline = time.monotonic() + timeout
        seen = 0.0
        while time.monotonic() < deadline:
            try:
                seen = self.metric(name, **labels)
            except OSError:
                seen = 0.0
            if seen >= value:
                return seen
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{name}{labels} reached {seen}, not {value}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_matches(self, pattern: str) -> bool:
        return re.search(pattern, self.log_path.read_text(errors="replace")) is not None
