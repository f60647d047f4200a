"""A throwaway Redis server from Debian's ``redis-server`` package, for tests and demos.

It runs in memory only (no RDB snapshots, no AOF) on a free loopback port, so tests never
meet a developer's own Redis nor leave files behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import redis

from stream.local import LOOPBACK, free_port, log_tail, progress, stop_process
from stream.local.tls import Certificates

_DEBIAN_BINARY = Path("/usr/bin/redis-server")


class RedisSetupError(RuntimeError):
    """redis-server could not be found, installed or started; the message says why."""


def ensure_redis_server() -> str:
    """Return the path of ``redis-server``, installing Debian's package if root may.

    Installing is what makes a fresh CI machine work with no manual step; without root the
    error says which command to run instead of failing half-way through apt.
    """
    found = _find_redis_server()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RedisSetupError(
            "redis-server is not installed; run: sudo apt-get install -y redis-server"
        )
    progress("redis-server is missing: installing Debian's package with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise RedisSetupError(f"{' '.join(command)} failed:\n{output}")
    found = _find_redis_server()
    if found is None:
        raise RedisSetupError("apt-get installed redis-server but it is not on PATH")
    return found


def _find_redis_server() -> str | None:
    """PATH first; then Debian's location, since /usr/bin may be missing from a CI's PATH."""
    found = shutil.which("redis-server")
    if found is None and _DEBIAN_BINARY.is_file():
        return str(_DEBIAN_BINARY)
    return found


def redis_command(
    binary: str,
    port: int,
    data_dir: Path,
    host: str = LOOPBACK,
    *,
    password: str | None = None,
    tls: Certificates | None = None,
) -> list[str]:
    """The server's command line: loopback only, in memory, logging to stdout; with `tls`
    the port speaks TLS only (no client certificates asked), with `password` AUTH is
    required."""
    secure: list[str] = []
    if password:
        secure += ["--requirepass", password]
    if tls is not None:
        secure += ["--tls-port", str(port), "--tls-auth-clients", "no"]
        secure += ["--tls-cert-file", str(tls.server_cert), "--tls-key-file", str(tls.server_key)]
        secure += ["--tls-ca-cert-file", str(tls.ca)]
    return [
        binary,
        "--port",
        "0" if tls is not None else str(port),
        "--bind",
        host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--logfile",
        "",
        *secure,
    ]


class RedisServer:
    """A redis-server process started by :meth:`start`, ended by :meth:`stop`; a context manager.

    ``start`` returns only after the server answers PING. With `port` it always listens
    there, so a stopped server can be started again at the same URL (empty: it keeps
    nothing on disk), as a Redis that restarted.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        start_timeout_s: float = 15.0,
        stop_timeout_s: float = 10.0,
        password: str | None = None,
        tls: Certificates | None = None,
        port: int | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._fixed_port = port
        self._password = password
        self._tls = tls
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._temp_dir: Path | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the Redis server is not started")
        scheme = "rediss" if self._tls is not None else "redis"
        return f"{scheme}://{LOOPBACK}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server on a free port, wait for PING, and return its URL."""
        if self._proc is not None:
            raise RuntimeError("the Redis server is already started")
        binary = ensure_redis_server()
        data_dir = self._data_dir
        if data_dir is None:
            data_dir = self._temp_dir = Path(tempfile.mkdtemp(prefix="redis-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        port = self._fixed_port or free_port()
        self._log_path = data_dir / "redis.log"
        self._log_file = self._log_path.open("ab")
        self._proc = subprocess.Popen(
            redis_command(binary, port, data_dir, password=self._password, tls=self._tls),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._port = port
        try:
            self._wait_for_ping(port)
        except BaseException:
            self.stop()
            raise
        progress(f"Redis serves on {self.url} (pid {self._proc.pid})")
        return self.url

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; remove a temporary dir. Idempotent."""
        if self._proc is not None:
            stop_process(self._proc, self._stop_timeout_s)
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        self._port = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_for_ping(self, port: int) -> None:
        assert self._proc is not None and self._log_path is not None
        deadline = time.monotonic() + self._start_timeout_s
        client = redis.Redis(
            host=LOOPBACK,
            port=port,
            socket_connect_timeout=0.5,
            password=self._password,
            ssl=self._tls is not None,
            ssl_ca_certs=str(self._tls.ca) if self._tls is not None else None,
        )
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RedisSetupError(
            f"redis-server did not answer PING (exit code {self._proc.poll()}). "
            f"Log tail ({self._log_path}):\n{log_tail(self._log_path)}"
        )
