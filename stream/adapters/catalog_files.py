"""Catalog files: YAML or JSON documents of accounts' catalogs and settings, checked against
the codec the worker runs, turned into snapshot messages and published to the compacted
catalog topics (`creative-select publish-catalog`, the demo and the benchmarks)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiokafka.errors import KafkaError

from selector.domain import Account, ConfigError, account_from_dict
from stream.adapters.producer import open_producer, send_messages
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import (
    TOPICS,
    AccountSettingsSnapshot,
    CampaignsSnapshot,
    CreativesSnapshot,
    OffersSnapshot,
    encode,
    key_of,
)

MAX_ERRORS = 20


_LISTS = ("offers", "creatives", "campaigns")


# The four parts of an account's catalog, in publishing order.
Snapshots = tuple[OffersSnapshot, CreativesSnapshot, CampaignsSnapshot, AccountSettingsSnapshot]


class CatalogFileError(Exception):
    """A catalog file that cannot be read or is invalid; one line per problem."""


@dataclass(frozen=True, slots=True)
class AccountCatalog:
    """One validated account and its four snapshot messages, in publishing order."""

    account: Account
    messages: Snapshots

    @property
    def account_id(self) -> str:
        return self.account.account_id


def snapshot_messages(
    account: Account,
    send_time: Mapping[str, Any] | None = None,
    sending_hours: Mapping[str, Mapping[str, str]] | None = None,
) -> Snapshots:
    """Offers, creatives, campaigns, settings: each part after the parts it refers to, so
    a worker reading them in order never sees a reference to something not yet sent. The
    send-time parts (the account's `send_time` block, campaigns' own `sending_hours`)
    ride on the settings and campaigns."""
    return (
        OffersSnapshot(account.account_id, account.offers),
        CreativesSnapshot(account.account_id, account.creatives),
        CampaignsSnapshot(account.account_id, account.campaigns, dict(sending_hours or {})),
        AccountSettingsSnapshot(account.account_id, account.settings, send_time),
    )


def account_messages(document: Mapping[str, Any]) -> tuple[Account, Snapshots]:
    """The domain account of a document and its four messages. The send-time parts are
    not the domain's: they are taken out before it reads the document, and the wire check
    (`validate_documents`) judges them on the bytes sent."""
    if not isinstance(document, Mapping):
        raise ConfigError("account", f"must be an object; got {type(document).__name__}")
    values = dict(document)
    send_time = values.pop("send_time", None)
    hours: dict[str, Any] = {}
    campaigns = []
    for item in values.get("campaigns", []):
        if isinstance(item, Mapping) and "sending_hours" in item:
            item = dict(item)
            found = item.pop("sending_hours")
            if found is not None:
                hours[str(item.get("campaign_id"))] = found
        campaigns.append(item)
    if "campaigns" in values:
        values["campaigns"] = campaigns
    account = account_from_dict(values)
    return account, snapshot_messages(account, send_time, hours)


def load_documents(path: Path) -> list[Any]:
    """The account documents of a file: one document, `accounts: [...]`, or a list."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(f"{path}: cannot read the catalog: {exc}") from None
    is_json = path.suffix.lower() == ".json"
    try:
        doc = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML"
        raise CatalogFileError(f"{path}: not valid {kind}: {exc}") from None
    if isinstance(doc, dict) and "accounts" in doc:
        if set(doc) != {"accounts"}:
            extra = ", ".join(sorted(map(str, set(doc) - {"accounts"})))
            raise CatalogFileError(f"{path}: unknown top-level field(s) {extra}")
        doc = doc["accounts"]
    documents = [doc] if isinstance(doc, dict) else doc
    if not isinstance(documents, list):
        raise CatalogFileError(f"{path}: expected an account or `accounts:` with a list of them")
    if not documents:
        raise CatalogFileError(f"{path}: no accounts")
    return documents


def _label(document: Any, index: int) -> str:
    account_id = document.get("account_id") if isinstance(document, dict) else None
    return f"account {account_id}" if isinstance(account_id, str) else f"account #{index + 1}"


def _wire_errors(messages: Snapshots, settings: Settings) -> list[str]:
    """What the worker's decoder would reject, checked on the exact bytes we would send."""
    limits = codec.Limits(
        settings.max_message_bytes,
        max_revenue=settings.max_revenue,
        max_future_seconds=settings.max_future_seconds,
    )
    errors = []
    for message in messages:
        decoded = codec.decode(
            message.kind,
            encode(message),
            key=key_of(message),
            max_bytes=settings.max_message_bytes,
            limits=limits,
        )
        if isinstance(decoded, codec.Rejected):
            errors.append(f"{TOPICS[message.kind]}: {decoded.reason}: {decoded.detail}")
    return errors


def validate_documents(documents: Sequence[Any], settings: Settings) -> list[AccountCatalog]:
    """Every account validated, or `CatalogFileError` listing every invalid one."""
    catalogs: list[AccountCatalog] = []
    errors: list[str] = []
    seen: set[str] = set()
    for index, document in enumerate(documents):
        label = _label(document, index)
        parts = document if isinstance(document, dict) else {}
        not_lists = [f for f in _LISTS if not isinstance(parts.get(f, []), list)]
        if not_lists:  # the domain would iterate them and fail without naming the field
            errors.extend(f"{label}: {field}: must be a list" for field in not_lists)
            continue
        try:
            account, messages = account_messages(document)
        except (ValueError, TypeError) as exc:  # ConfigError names the field
            errors.append(f"{label}: {exc}")
            continue
        if account.account_id in seen:
            errors.append(f"{label}: account_id: appears more than once in the file")
            continue
        seen.add(account.account_id)
        wire = _wire_errors(messages, settings)
        errors.extend(f"{label}: {error}" for error in wire)
        if not wire:
            catalogs.append(AccountCatalog(account, messages))
    if errors:
        shown = errors[:MAX_ERRORS]
        more = [f"... and {len(errors) - MAX_ERRORS} more"] if len(errors) > MAX_ERRORS else []
        raise CatalogFileError("\n".join(["invalid catalog, nothing published:", *shown, *more]))
    return catalogs


def describe(catalog: AccountCatalog, settings: Settings) -> list[str]:
    """Lines saying what would be published for one account."""
    account = catalog.account
    methods = " ".join(f"{m.method}={m.traffic_pct:g}" for m in account.settings.methods)
    lines = [
        f"account {account.account_id}: {len(account.offers)} offers, "
        f"{len(account.creatives)} creatives, {len(account.campaigns)} campaigns; "
        f"goal {account.settings.goal}, methods {methods}"
    ]
    width = max(len(settings.topic(TOPICS[message.kind])) for message in catalog.messages)
    for message in catalog.messages:
        topic, size = settings.topic(TOPICS[message.kind]), len(encode(message))
        lines.append(f"  {topic:<{width}}  key {account.account_id}  {size:>6} bytes")
    return lines


async def publish(catalogs: Sequence[AccountCatalog], settings: Settings) -> dict[str, int]:
    """Publish part by part (every account's offers, then creatives, campaigns, settings),
    each part acknowledged before the next is sent. Returns each account's partition."""
    partitions: dict[str, int] = {}
    async with open_producer(settings) as producer:
        for part in range(4):
            messages = [c.messages[part] for c in catalogs]
            deliveries = await send_messages(producer, settings, messages)
            stored = await asyncio.gather(*deliveries)
            for catalog, metadata in zip(catalogs, stored, strict=True):
                partitions[catalog.account_id] = metadata.partition
    return partitions


async def publish_catalog_file(
    path: Path, settings: Settings, *, dry_run: bool = False, out: Any = None, err: Any = None
) -> int:
    """The command: validate `path`, then publish it (unless `dry_run`); an exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        catalogs = validate_documents(load_documents(path), settings)
    except CatalogFileError as exc:
        print(f"error: {exc}", file=err)
        return 2
    for catalog in catalogs:
        print("\n".join(describe(catalog, settings)), file=out)
    count = 4 * len(catalogs)
    if dry_run:
        print(f"dry run: {len(catalogs)} accounts valid, {count} messages not published", file=out)
        return 0
    started = time.perf_counter()
    try:
        partitions = await publish(catalogs, settings)
    except (KafkaError, OSError) as exc:
        print(f"error: Kafka at {settings.kafka_bootstrap}: {exc!r}", file=err)
        return 1
    elapsed = time.perf_counter() - started
    where = ", ".join(f"{a} -> partition {p}" for a, p in partitions.items())
    summary = f"{count} messages for {len(catalogs)} accounts in {elapsed:.2f} s ({where})"
    print(f"published {summary}", file=out)
    return 0
