"""`creative-select publish-catalog FILE`: publish accounts' catalogs and settings.

FILE (YAML or JSON) holds one account document, the shape `selector.account_from_dict`
takes, or several under `accounts:`. Every account is validated before anything is
sent: by the domain (ids that resolve, shares that sum to 100, ...) and by the very
decoder the worker's catalog agent runs (id lengths, ceilings, message size), so what
this command accepts the worker accepts. Each account becomes four full snapshots on
the compacted catalog topics, keyed by account id; the worker picks them up live.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from stream.adapters.catalog_files import publish_catalog_file
from stream.settings import Settings, SettingsError

EXAMPLE = """\
examples:
  creative-select publish-catalog catalogs/example.yaml --dry-run
  CS_KAFKA_BOOTSTRAP=127.0.0.1:9092 creative-select publish-catalog catalogs/example.yaml

Exit codes: 0 published (or valid, with --dry-run), 2 invalid file (nothing published),
1 Kafka failed. Run `creative-select topics create` once first."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "publish-catalog",
        help="validate and publish accounts' offers, creatives, campaigns and settings",
        description="Validate every account of FILE, then publish four snapshot messages "
        "per account (offers, creatives, campaigns, settings) to the compacted catalog "
        "topics, keyed by account_id. Running workers apply them without a restart. "
        "Nothing is published if any account is invalid.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="YAML or JSON catalog")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and show what would be published"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(publish_catalog_file(args.file, settings, dry_run=args.dry_run))
