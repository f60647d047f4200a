"""`creative-select topics create|list`: declare every topic of schemas/topics.yaml.

The worker's faust app declares its own topics too; creating them up front lets the
catalog be published and the sender start before the first worker does, with the
partition count and cleanup policy the contract names rather than a broker default.

`--reply-topic SENDER` also creates a sender's own reply topic, named with the reply
prefix (`CS_TOPIC_PREFIX` + `CS_REPLY_TOPIC_PREFIX` + SENDER): the only topics besides
the responses topic that the worker answers a request's `reply_to` on by default.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError

from stream.adapters.topic_specs import TopicSpec, all_topics, describe_topics, ensure_topics
from stream.handlers.reply_to import ReplyPolicy
from stream.settings import Settings, SettingsError

EXAMPLE = """\
examples:
  CS_KAFKA_BOOTSTRAP=127.0.0.1:9092 creative-select topics create
  CS_TOPIC_PREFIX=staging. creative-select topics create --partitions 12
  creative-select topics create --reply-topic sender-eu   # + selection-replies.sender-eu
  creative-select topics list

Names get CS_TOPIC_PREFIX; the partition count defaults to CS_PARTITIONS. Every keyed
topic must have the same count (co-partitioning), so change it only on an empty cluster.

Reply topics: a request answered elsewhere than selection-responses names its topic in
reply_to, and the worker answers only on topics under CS_REPLY_TOPIC_PREFIX (default
"selection-replies.", after CS_TOPIC_PREFIX) or matching CS_REPLY_TOPIC_PATTERN, never on
an internal topic, and only once the topic exists: anything else gets an error response
(forbidden_reply_to, unknown_reply_to) on selection-responses. --reply-topic SENDER
creates SENDER's reply topic; senders may create their own under the prefix as well."""


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
    create.add_argument(
        "--reply-topic",
        action="append",
        default=[],
        metavar="SENDER",
        dest="senders",
        help="also create SENDER's reply topic, named with the reply prefix (repeatable)",
    )
    create.set_defaults(func=run)
    listing = actions.add_parser("list", help="show each topic's partitions and cleanup policy")
    listing.set_defaults(func=run)


def reply_topics(settings: Settings, senders: Sequence[str]) -> list[TopicSpec]:
    """The reply topics of `senders`; ValueError for a name the worker would not answer on."""
    policy = ReplyPolicy.from_settings(settings)
    if senders and not policy.reply_prefix:
        raise ValueError("CS_REPLY_TOPIC_PREFIX is empty: senders have no reply topics")
    specs = [TopicSpec(policy.reply_prefix + sender, settings.partitions) for sender in senders]
    for spec in specs:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", spec.name) or policy.refusal(spec.name):
            raise ValueError(f"{spec.name!r} cannot be a reply topic")
    return specs


async def create(
    settings: Settings, out: Any = sys.stdout, senders: Sequence[str] = ()
) -> list[str]:
    """Create the missing topics (and the `senders`' reply topics); print and return
    their names."""
    specs = all_topics(settings) + reply_topics(settings, senders)
    created = await ensure_topics(settings, specs)
    for spec in specs:
        if spec.name in created:
            policy = "compact" if spec.compacted else "delete"
            print(f"created {spec.name} ({spec.partitions} partitions, {policy})", file=out)
    prefix = settings.topic(settings.reply_topic_prefix) if settings.reply_topic_prefix else ""
    where = f"{prefix}<sender> (--reply-topic SENDER)" if prefix else "none (no reply prefix)"
    print(f"senders' reply topics: {where}", file=out)
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
        senders = getattr(args, "senders", [])
        reply_topics(settings, senders)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            asyncio.run(create(settings, senders=senders))
        else:
            asyncio.run(show(settings))
    except (KafkaError, OSError) as exc:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {exc!r}", file=sys.stderr)
        return 1
    return 0
