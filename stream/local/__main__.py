"""Command line: ``python -m stream.local {kafka,redis,fetch-jars}``.

``kafka`` and ``redis`` run a server in the foreground, print one ``NAME=value`` line on
stdout (for ``eval``/``grep`` in scripts; progress goes to stderr) and stop it cleanly on
Ctrl-C or SIGTERM. ``fetch-jars`` only fills the jar cache, which CI runs to warm it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from stream.adapters.topic_specs import TopicSpec
from stream.local import progress
from stream.local.jars import DEFAULT_CACHE_DIR, KAFKA_VERSION, ensure_kafka_jars
from stream.local.kafka import BrokerOptions, KafkaBroker, create_topics
from stream.local.redis import RedisServer


def parse_topic(text: str) -> TopicSpec:
    """Parse ``NAME[:PARTITIONS[:compact]]``, e.g. ``contact_events:6`` or ``stats:6:compact``."""
    name, _, rest = text.partition(":")
    partitions, _, policy = rest.partition(":")
    if policy not in ("", "compact"):
        raise argparse.ArgumentTypeError(f"unknown cleanup policy {policy!r} (only 'compact')")
    try:
        return TopicSpec(name, int(partitions or 1), compacted=policy == "compact")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad topic {text!r}: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stream.local",
        description="Run the project's own local Kafka (KRaft) or Redis, for tests and demos.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_kafka_parser(commands)
    redis = commands.add_parser(
        "redis",
        help="run an in-memory redis-server until Ctrl-C",
        description="Start redis-server on a free loopback port (installing Debian's package "
        "when root and missing), print REDIS_URL=redis://... and run until Ctrl-C or SIGTERM.",
    )
    redis.add_argument("--data-dir", type=Path, help="working dir (default: a temporary dir)")
    fetch = commands.add_parser(
        "fetch-jars",
        help="only resolve Kafka's jars into the cache (warms CI)",
        description="Run Maven once if the jars are missing; print the jar directory.",
    )
    _add_cache_dir(fetch)
    return parser


def _add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"jar and Maven repository cache (default {DEFAULT_CACHE_DIR})",
    )


def _add_kafka_parser(commands: Any) -> None:
    kafka = commands.add_parser(
        "kafka",
        help=f"run one Kafka {KAFKA_VERSION} node until Ctrl-C",
        description="Resolve Kafka's jars if needed, start one broker+controller on a free "
        "loopback port, print KAFKA_BOOTSTRAP=HOST:PORT and run until Ctrl-C or SIGTERM.",
    )
    kafka.add_argument(
        "--data-dir",
        type=Path,
        help="keep logs and data here across runs (default: a temporary dir removed at exit)",
    )
    kafka.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="num.partitions for topics created without a count (default 1)",
    )
    kafka.add_argument(
        "--topic",
        type=parse_topic,
        action="append",
        default=[],
        metavar="NAME[:PARTITIONS[:compact]]",
        help="create this topic once the broker serves; repeatable",
    )
    kafka.add_argument(
        "--auto-create-topics",
        action="store_true",
        help="let producers create unknown topics (off: topics are declared)",
    )
    kafka.add_argument("--heap-max", default="512m", help="JVM -Xmx (default 512m)")
    _add_cache_dir(kafka)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C, so ``with`` blocks stop the server on either one.

    Installed before the server starts: a SIGTERM during start-up unwinds too, instead of
    killing Python and orphaning the server in its own session.
    """

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def serve_until_interrupted(still_running: Callable[[], bool]) -> int:
    """Block until Ctrl-C/SIGTERM (exit 0) or until the server dies on its own (exit 1)."""
    try:
        while still_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        progress("interrupted: stopping")
        return 0
    progress("the server exited on its own")
    return 1


def run_kafka(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kafka-"))
    options = BrokerOptions(
        num_partitions=args.partitions,
        auto_create_topics=args.auto_create_topics,
        heap_max=args.heap_max,
        cache_dir=args.cache_dir,
    )
    broker = KafkaBroker(data_dir, options)
    try:
        with broker:
            if args.topic:
                created = asyncio.run(create_topics(broker.bootstrap, args.topic))
                progress(f"created topics: {', '.join(created) or '(all existed)'}")
            print(f"KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
            return serve_until_interrupted(lambda: broker.running)
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_redis(args: argparse.Namespace) -> int:
    with RedisServer(args.data_dir) as server:
        print(f"REDIS_URL={server.url}", flush=True)
        return serve_until_interrupted(lambda: server.running)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupt_on_sigterm()
    try:
        if args.command == "kafka":
            return run_kafka(args)
        if args.command == "redis":
            return run_redis(args)
        print(ensure_kafka_jars(args.cache_dir), flush=True)
        return 0
    except KeyboardInterrupt:
        progress("interrupted during start-up")
        return 130


if __name__ == "__main__":
    sys.exit(main())
