"""Helpers for testing the services without Kafka: a catalog table filled through the
real catalog path, and messages wrapped as consumed records."""

from __future__ import annotations

from typing import Any

import orjson

from stream.handlers.catalog import apply_catalog_message
from stream.wire.envelope import Incoming

ACCOUNT: dict[str, Any] = {
    "settings": {"goal": "revenue", "learning_threshold": 100, "cooldown_seconds": 3600},
    "offers": [{"offer_id": "o1", "payout": 30.0, "payout_type": "cpa"}],
    "creatives": [
        {"creative_id": f"c{i}", "offer_id": "o1", "type": "automated", "status": "active"}
        for i in range(3)
    ],
    "campaigns": [
        {
            "campaign_id": "k",
            "default_creative_id": "c0",
            "mode": "automated",
            "automated_percent": 80.0,
            "manual_creative_ids": [],
            "rotation": "random",
        }
    ],
}
PARTS = [
    ("offers", "offers"),
    ("creatives", "creatives"),
    ("campaigns", "campaigns"),
    ("account_settings", "settings"),
]


def catalog_table(account_id: str = "acme", account: dict[str, Any] = ACCOUNT) -> dict[bytes, Any]:
    table: dict[bytes, Any] = {}
    for kind, field in PARTS:
        body = orjson.dumps(
            {"schema": f"{kind}.v1", "account_id": account_id, field: account[field]}
        )
        message = Incoming(body, account_id.encode(), f"catalog-{kind}", 0, 0)
        key, value, letter = apply_catalog_message(kind, message, table.get, 65536, "dl", 0.0)
        assert letter is None and value is not None
        table[key] = value
    return table


def record(
    doc: dict[str, Any] | bytes,
    topic: str,
    offset: int,
    key: bytes | None = b"acme",
    partition: int = 0,
) -> Incoming:
    value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return Incoming(value, key, topic, partition, offset)


def request(i: int, contact: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "selection_request.v1",
        "request_id": f"r{i}",
        "account_id": "acme",
        "campaign_id": "k",
        "contact_id": contact or f"u{i}",
        "time": 1000.0,
        **extra,
    }


def event(kind: str, i: int, creative: str = "c1", **extra: Any) -> dict[str, Any]:
    doc = {
        "schema": f"{kind}.v1",
        "event_id": f"{kind}-{i}",
        "account_id": "acme",
        "contact_id": f"u{i}",
        "creative_id": creative,
        "time": 1000.0 + i,
        **extra,
    }
    if kind == "send":
        doc["campaign_id"] = "k"
    if kind == "conversion":
        doc.setdefault("revenue", 12.5)
    return doc
