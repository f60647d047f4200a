"""`creative-select worker`: run a stream-processing worker (all agents)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "worker",
        help="run a worker: catalog, stats and selection agents",
        description=(
            "Run a worker that consumes the catalog, outcome and selection-request topics, "
            "keeps per-account stats, and answers selection requests. Settings come from "
            "CS_* environment variables (see README); metrics and /health are served on "
            "CS_WEB_HOST:CS_WEB_PORT."
        ),
        epilog="example:\n  CS_KAFKA_BOOTSTRAP=127.0.0.1:9092 creative-select worker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--loglevel", default=None, help="log level (default: CS_LOG_LEVEL, else info)"
    )
    parser.add_argument(
        "--no-create-topics",
        action="store_true",
        help="do not create missing topics at start (when ops manage topics themselves)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import faulthandler
    import signal

    from stream.adapters.topic_specs import all_topics, ensure_topics
    from stream.worker.app import app, settings

    if not args.no_create_topics:
        asyncio.run(ensure_topics(settings, all_topics(settings)))
    level = args.loglevel or settings.log_level
    sys.argv = ["creative-select", "worker", "--loglevel", level]
    # `kill -USR1 <pid>` writes every thread's stack to stderr: what a worker whose event
    # loop stopped answering (no /health) is doing
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGUSR2, _dump_tasks)  # and USR2 every asyncio task's stack
    app.main()
    return 0


def _dump_tasks(signum: int, frame: object) -> None:
    """Write where every task of the running event loop waits to stderr (`kill -USR2`):
    each task's chain of awaits, coroutine by coroutine and through async generators
    (`async for`), down to the future it waits for. What a worker whose agents or
    recovery stopped advancing is waiting on."""
    import asyncio

    loop = asyncio._get_running_loop()
    if loop is None:
        return
    for task in asyncio.all_tasks(loop):
        print(f"--- {task.get_name()}", file=sys.stderr)
        for line in await_chain(task.get_coro()):
            print(f"    {line}", file=sys.stderr)
    sys.stderr.flush()


def await_chain(awaitable: object, limit: int = 40) -> list[str]:
    """Where a coroutine waits: one line per frame (file:line function), then what the
    innermost one awaits. An `async for` waits on an `async_generator_asend`, whose
    generator is found through `gc.get_referents` (it has no attribute for it)."""
    import gc
    import inspect

    lines: list[str] = []
    current: object = awaitable
    for _ in range(limit):
        frame = getattr(current, "cr_frame", None) or getattr(current, "ag_frame", None)
        if frame is None:
            frame = getattr(current, "gi_frame", None)
        if frame is not None:
            info = inspect.getframeinfo(frame, context=0)
            lines.append(f"{info.filename}:{info.lineno} {info.function}")
            nxt = (
                getattr(current, "cr_await", None)
                or getattr(current, "ag_await", None)
                or getattr(current, "gi_yieldfrom", None)
            )
        elif inspect.iscoroutine(current) or inspect.isasyncgen(current):
            return lines  # finished: nothing to wait for
        elif type(current).__name__ in ("async_generator_asend", "async_generator_athrow"):
            gens = [r for r in gc.get_referents(current) if inspect.isasyncgen(r)]
            nxt = gens[0] if gens else None
        else:
            lines.append(f"awaits {current!r:.300}")
            return lines
        if nxt is None:
            return lines
        current = nxt
    return lines
