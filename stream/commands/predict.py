"""`creative-select predict ACCOUNT CONTACT`: each creative's predicted click probability
and expected revenue for one contact, from the account's promoted model."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  creative-select predict acme ct-1042           # best first by the account's goal
  creative-select predict acme ct-1042 --json    # the same as JSON
  creative-select predict acme ct-1042 --level 0.95 --all-creatives

output, one line per creative (click probability, expected revenue per send, each with
its central interval from the model's posterior):
  loan-a: 12.1% click [10.9, 13.4], $0.45 expected revenue [0.39, 0.52]

It reads the account's catalog (catalog topics), its promoted model (the models topic,
as the workers do) and the contact's profile (Redis), with CS_* settings like the
worker's. A contact without a stored profile is predicted as one without history, and
the output says so. Expected revenue is per send: P(click) x P(conversion | click) x
payout (payout alone for per-click offers).
Exit status: 0 predicted, 1 no catalog or no promoted model for the account (the message
says what to do), 2 the topics or Redis could not be read.
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "predict",
        help="one contact's predicted click probability and revenue per creative",
        description=(
            "Predict, for one contact of an account, each creative's click probability and "
            "expected revenue per send with an interval, from the account's promoted "
            "contextual model and the contact's profile. Creatives are the active "
            "automated ones (the candidates), best first by the account's goal."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("account", metavar="ACCOUNT", help="account id")
    parser.add_argument("contact", metavar="CONTACT", help="contact id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--level", type=float, default=0.8, help="interval coverage, 0-1 (default 0.8)"
    )
    parser.add_argument(
        "--at", type=float, default=None, help="predict at this Unix time (default: now)"
    )
    parser.add_argument("--samples", type=int, default=2000, help="posterior draws (default 2000)")
    parser.add_argument("--seed", type=int, default=None, help="seed the draws (repeatable)")
    parser.add_argument(
        "--all-creatives", action="store_true", help="include paused and manual creatives"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException
    from redis.exceptions import RedisError

    from stream.adapters.kafka_reader import ReadError
    from stream.predictions import PredictionError, predict_contact
    from stream.settings import Settings, SettingsError

    if not 0.0 < args.level < 1.0 or args.samples < 10:
        print("predict: error: --level must be in (0, 1) and --samples >= 10", file=sys.stderr)
        return 2
    try:
        found = predict_contact(
            Settings.from_env(), args.account, args.contact, at=args.at,
            samples=args.samples, level=args.level, seed=args.seed,
            every_creative=args.all_creatives,
        )  # fmt: skip
    except PredictionError as exc:
        print(f"predict: {exc}", file=sys.stderr)
        return 1
    except (ReadError, SettingsError, KafkaException, RedisError, OSError) as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(found.to_dict(), indent=2) if args.json else found.text())
    return 0
