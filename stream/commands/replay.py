"""`creative-select replay`: backfill sends, clicks and conversions from JSON Lines files
(plain or gzip) or from a topic's offset or time range, resumably and without double
counting; see `stream.replay` for how, and the README's "Backfills" for the guarantees.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from tqdm import tqdm

from stream.replay import progress as p
from stream.replay.inputs import FileSource, Item, Source, TopicSource, saved_ranges
from stream.replay.ranges import parse_offsets, parse_time, topic_ranges
from stream.replay.run import MAX_REPORTED, Options, ReplayError, Result, replay, survey, why
from stream.settings import Settings, SettingsError

EXAMPLES = """\
examples:
  creative-select replay events.jsonl.gz --dry-run        # check every line, publish nothing
  creative-select replay events.jsonl.gz --rate 5000      # backfill a file, resumably
  creative-select replay --from-topic archive-sends --since 2026-11-01 --until 2026-11-08
  creative-select replay --from-topic old.clicks --start-offset 0:1200,1:900 --end-offset 5000
  creative-select replay --from-topic dead-letters --since 2026-11-30T06:00Z   # after a fix

Input: one send.v1, click.v1 or conversion.v1 object per line (as send-events reads), or
the records of a topic: events as written, or dead letters, whose originals are replayed
(dead letters of selection requests and catalogs are counted as ignored).

Resuming: progress is checkpointed (default ./NAME.replay.json, NAME being the file or
topic name) as the broker acknowledges events; rerun the same command after Ctrl-C or a
crash and it goes on where it stopped. A finished checkpoint makes a rerun do nothing;
--fresh starts over (events already in the target are still skipped).

No double counts: events whose (account_id, kind, event_id) is already in the target
topics are skipped (counted as present), also long after the Redis dedup records expired.
This reads the target partitions of the replayed accounts once before publishing;
--no-skip-existing saves that read and relies on the stats agent's Redis dedup
(CS_DEDUP_TTL_SECONDS) and the daily job instead.

Rejected input is reported with its line (or partition and offset) and reason, counted
per reason, and written in full to the rejects file (default ./NAME.rejects.jsonl).
Exit codes: 0 done, 1 some input rejected or Kafka failed (checkpoint kept),
2 bad usage or a checkpoint of another replay, 130 interrupted (checkpoint kept)."""


RESUME_HINT = "what the broker acknowledged is checkpointed; rerun the command to resume"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="backfill outcome events from files or topics, resumably, without double counts",
        description="Replay sends, clicks and conversions into the event topics, from JSON "
        "Lines files or from a topic's offset or time range, with a progress bar, a rate "
        "limit, checkpoints and a dry run.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", type=Path, nargs="?", help="JSON Lines (.gz ok)")
    _add_topic_options(parser.add_argument_group("replaying from a topic instead of a file"))
    parser.add_argument(
        "--rate", type=float, metavar="N", help="at most N events published a second"
    )
    parser.add_argument("--dry-run", action="store_true", help="check and count, publish nothing")
    parser.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="default ./NAME.replay.json"
    )
    parser.add_argument("--resume", action="store_true", help="fail unless the checkpoint exists")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--rejects", type=Path, metavar="PATH", help="default ./NAME.rejects.jsonl")
    parser.add_argument(
        "--no-skip-existing",
        dest="skip_existing",
        action="store_false",
        help="do not index the target topics (rely on the Redis dedup and the daily job)",
    )
    parser.add_argument(
        "--to-prefix", metavar="PREFIX", help="target topic prefix (CS_TOPIC_PREFIX)"
    )
    parser.set_defaults(func=run)


def _add_topic_options(topic: Any) -> None:
    topic.add_argument("--from-topic", metavar="NAME", help="full topic name to read")
    start = topic.add_mutually_exclusive_group()
    start.add_argument("--start-offset", metavar="SPEC", help="N or P:N,P:N (default: first)")
    start.add_argument("--since", metavar="TIME", help="ISO time: first record at or after it")
    end = topic.add_mutually_exclusive_group()
    end.add_argument("--end-offset", metavar="SPEC", help="exclusive; N or P:N,P:N (default: end)")
    end.add_argument(
        "--until", metavar="TIME", help="ISO time, exclusive (default: the end at start)"
    )


def _usage_error(args: argparse.Namespace) -> str | None:
    if (args.file is None) == (args.from_topic is None):
        return "give either FILE or --from-topic NAME"
    ranged = (args.start_offset, args.end_offset, args.since, args.until)
    if args.file is not None and any(x is not None for x in ranged):
        return "--start-offset, --end-offset, --since and --until go with --from-topic"
    if args.file is not None and not args.file.is_file():
        return f"{args.file}: no such file"
    if args.rate is not None and args.rate <= 0:
        return "--rate must be > 0"
    if args.resume and args.fresh:
        return "--resume and --fresh exclude each other"
    return None


async def _source(args: argparse.Namespace, settings: Settings, now: float) -> Source:
    if args.file is not None:
        return FileSource(args.file, settings, now)
    names = ("start_offset", "end_offset", "since", "until")
    selection = {name: getattr(args, name) for name in names}
    ranges = _resumed_ranges(args, selection) or await topic_ranges(
        settings,
        args.from_topic,
        start=parse_offsets(args.start_offset) if args.start_offset else None,
        end=parse_offsets(args.end_offset) if args.end_offset else None,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
    )
    return TopicSource(settings, args.from_topic, ranges, now, selection)


def _resumed_ranges(
    args: argparse.Namespace, selection: dict[str, Any]
) -> dict[int, tuple[int, int]] | None:
    """A rerun reads the ranges its checkpoint resolved (the topic's end has moved)."""
    if args.dry_run or args.fresh:
        return None
    try:
        saved = p.load(_options(args).checkpoint or Path())
    except (ValueError, OSError):
        return None  # the replay itself reports an unreadable checkpoint
    return None if saved is None else saved_ranges(saved.source, args.from_topic, selection)


def _options(args: argparse.Namespace) -> Options:
    name = args.file.name if args.file is not None else args.from_topic
    return Options(
        rate=args.rate,
        skip_existing=args.skip_existing,
        checkpoint=args.checkpoint or Path(f"{name}.replay.json"),
        rejects=args.rejects or Path(f"{name}.rejects.jsonl"),
        fresh=args.fresh,
        resume=args.resume,
    )


def _listing(counts: dict[str, int]) -> str:
    inner = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f" ({inner})" if inner else ""


def describe(tally: dict[str, int], *, valid: str = "published") -> str:
    """`published 990 (click 250, send 740), present 10, rejected 3 (wrong_type 3), ...`"""
    totals = p.outcome_totals(tally)
    parts = []
    for outcome in p.OUTCOMES:
        label = valid if outcome == "published" else outcome
        parts.append(f"{label} {totals[outcome]}{_listing(p.by_outcome(tally, outcome))}")
    return ", ".join(parts)


async def _dry_run(source: Source, rejects: Path | None) -> int:
    out = p.RejectsFile(rejects) if rejects else None
    shown = 0

    def report(item: Item) -> None:
        nonlocal shown
        error = item.line.error or ""
        if shown < MAX_REPORTED:
            print(f"{item.where}: {error}", file=sys.stderr)
        shown += 1
        if out is not None:
            out.write(item.where, *why(item), item.raw)

    result = await survey(source, on_reject=report)
    if out is not None:
        out.close()
    totals = p.outcome_totals(result.tally)
    counts = describe(result.tally, valid="valid")
    print(f"dry run, nothing published: {result.total} events, {counts}")
    return 1 if totals["rejected"] else 0


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    source = await _source(args, settings, time.time())
    if args.dry_run:
        return await _dry_run(source, args.rejects)
    options = _options(args)
    started = time.perf_counter()
    result: Result = await replay(source, settings, options)
    if result.already_done:
        print(f"already complete per {options.checkpoint}: {describe(result.tally)}")
        return 0
    elapsed = time.perf_counter() - started
    resumed = f", resumed after {result.resumed}" if result.resumed else ""
    print(f"replayed in {elapsed:.1f} s{resumed}: {describe(result.tally)}")
    rejected = p.outcome_totals(result.tally)["rejected"]
    if rejected:
        print(f"rejected input written to {options.rejects}", file=sys.stderr)
    return 1 if rejected else 0


def run(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.to_prefix is not None:
        settings = dataclasses.replace(settings, topic_prefix=args.to_prefix)
    try:
        return asyncio.run(_main(args, settings))
    except (ReplayError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        tqdm.write(f"error: Kafka at {settings.kafka_bootstrap}: {exc!r}", file=sys.stderr)
        print(RESUME_HINT, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; {RESUME_HINT}", file=sys.stderr)
        return 130
