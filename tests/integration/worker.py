"""A real worker process for integration tests: the demo's `Worker` launcher
(`creative-select worker` in a subprocess) with its own topic prefix, group, state
directory and web port, plus what tests need beyond the demo: SIGKILL, the raw scrape,
the health body and the parsed settings."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from stream.local import free_port
from stream.local.harness import Worker
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
    # Tests share one Redis: each worker's dedup, cooldown and profile keys stay its own
    # (a worker given another's topics shares its keys too).
    env.setdefault("CS_REDIS_KEY_PREFIX", env["CS_TOPIC_PREFIX"])
    return env


class WorkerProcess(Worker):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        self.settings = Settings.from_env(env)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return dict(json.loads(response.read()))
        except OSError:
            return None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def log_matches(self, pattern: str) -> bool:
        return re.search(pattern, self.log_path.read_text(errors="replace")) is not None
