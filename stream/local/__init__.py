"""The project's own local Kafka and Redis, for integration tests, demos and CI.

DESIGN.md section 5 asks for real components, started by the project itself on a fresh
machine with only Java, Maven and Python: :mod:`stream.local.kafka` resolves Kafka's jars
from Maven Central and runs one KRaft node, :mod:`stream.local.redis` runs Debian's
``redis-server``. ``python -m stream.local --help`` is the command-line entry point.

This module holds the few process and port helpers both servers share.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    The kernel picks it (bind to port 0), so parallel test sessions do not collide the way
    fixed ports would. There is a small race until the server binds it; callers start the
    server straight away.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return ``count`` distinct free ports, all held open until every one is chosen.

    Holding them together is what makes them distinct: asking :func:`free_port` twice may
    return the same port once the first socket is closed.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Tell whether a TCP connect to ``host:port`` succeeds (the server has bound it)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a server log, for error messages that explain."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> int:
    """Stop ``proc``: SIGTERM, wait up to ``grace_s``, then SIGKILL. Return its exit code.

    SIGTERM first so Kafka does a controlled shutdown and flushes its logs; SIGKILL only so
    a hung server can never outlive the test session.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            progress(f"pid {proc.pid} ignored SIGTERM for {grace_s:.0f}s; sending SIGKILL")
            proc.kill()
            proc.wait()
    return proc.returncode


def progress(message: str) -> None:
    """Print one progress line to stderr, where it does not mix with machine-read stdout."""
    print(f"[stream.local {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end from synchronous code, even inside a running event loop.

    Servers start synchronously (fixtures, CLI) but probe with asyncio clients; under a
    running loop asyncio.run would refuse, so there the coroutine gets its own loop in a
    short-lived thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
