"""`creative-select topics create|list`: declare every topic of schemas/topics.yaml.

The worker's faust app declares its own topics too; creating them up front lets the
catalog be published and the sender start before the first worker does, with the
partition count and cleanup policy the contract names rather than a broker default.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import Any

from aiokafka.errors import KafkaError

from stream.adapters.topic_specs import all_topics, describe_topics, ensure_topics
from stream.settings import Settings, SettingsError

EXAMPLE = """\
examples:
  CS_KAFKA_BOOTSTRAP=127.0.0.1:9092 creative-select topics create
  CS_TOPIC_PREFIX=staging. creative-select topics create --partitions 12
  creative-select topics list

Names get CS_TOPIC_PREFIX; the partition count defaults to CS_PARTITIONS. Every keyed
topic must have the same count (co-partitioning), so change it only on an empty cluster."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create or list the service's Kafka topics",
        description="Create (idempotently) or list every topic in schemas/topics.yaml, "
        "with its partition count and cleanup policy (catalog topics are compacted).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create the topics that do not exist yet")
    create.add_argument(
        "--partitions", type=int, metavar="N", help="partitions per topic (default CS_PARTITIONS)"
    )
    create.set_defaults(func=run)
    listing = actions.add_parser("list", help="show each topic's partitions and cleanup policy")
    listing.set_defaults(func=run)


async def create(settings: Settings, out: Any = sys.stdout) -> list[str]:
    """Create the missing topics; print and return their names."""
    specs = all_topics(settings)
    created = await ensure_topics(settings, specs)
    for spec in specs:
        if spec.name in created:
            policy = "compact" if spec.compacted else "delete"
            print(f"created {spec.name} ({spec.partitions} partitions, {policy})", file=out)
    print(f"{len(created)} created, {len(specs) - len(created)} already existed", file=out)
    return created


async def show(settings: Settings, out: Any = sys.stdout) -> int:
    """Print one line per topic; returns how many are missing."""
    specs = all_topics(settings)
    states = await describe_topics(settings, [s.name for s in specs])
    width = max(len(s.name) for s in specs)
    print(f"{'topic':<{width}}  partitions  cleanup.policy", file=out)
    for spec in specs:
        state = states.get(spec.name)
        if state is None:
            print(f"{spec.name:<{width}}  missing", file=out)
        else:
            print(f"{spec.name:<{width}}  {state.partitions:>10}  {state.cleanup_policy}", file=out)
    return len(specs) - len(states)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if getattr(args, "partitions", None) is not None:
            settings = dataclasses.replace(settings, partitions=args.partitions)
            settings.validate()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            asyncio.run(create(settings))
        else:
            asyncio.run(show(settings))
    except (KafkaError, OSError) as exc:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {exc!r}", file=sys.stderr)
        return 1
    return 0
