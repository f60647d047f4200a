"""Outcomes by arm: the arm recomputed from an event is the arm the selection gave, only
applied events count, and events without a known campaign are `unattributed`."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from selector import AccountStats, RequestBatch, Selector, account_from_dict
from selector.ingest import Ledger, SourcedEvent, apply_events, apply_rows
from selector.view import compile_account
from stream.handlers.attribution import ARM_LABELS, applied_flags, arms_of
from stream.handlers.catalog import Catalogs
from stream.handlers.ingestion import IngestionService
from stream.handlers.stores import MemoryDedup
from stream.ops import metrics as metrics_module
from stream.ops.metrics import Metrics
from tests.stream.handlers.service_fixtures import ACCOUNT, catalog_table, event, record

KINDS = {"sends": "send", "clicks": "click", "conversions": "conversion"}
MANUAL: dict[str, Any] = {
    **ACCOUNT,
    "account_id": "acme",
    "campaigns": [
        *ACCOUNT["campaigns"],
        {
            "campaign_id": "m",
            "default_creative_id": "c0",
            "mode": "manual",
            "manual_creative_ids": ["c1", "c2"],
        },
        {"campaign_id": "half", "default_creative_id": "c0", "automated_percent": 50},
    ],
}


def value(counter: Any, *labels: str) -> float:
    return float(counter.labels(*labels)._value.get())


def test_the_arm_labels_are_the_ones_the_metrics_start_with() -> None:
    assert ARM_LABELS == metrics_module.ARM_LABELS


def test_arms_of_agree_with_the_decisions() -> None:
    account = account_from_dict(MANUAL)
    selector = Selector(account)
    contacts = [f"+1415555{i:04d}" for i in range(2000)]
    campaigns = [("k", "m", "half")[i % 3] for i in range(2000)]
    batch = RequestBatch.from_columns(campaigns, contacts, np.full(2000, 10.0))
    decided = selector.decide_batch(AccountStats(), batch, np.random.default_rng(0))
    arms = arms_of(compile_account(account), campaigns, contacts)
    assert arms == [d.arm for d in decided.decisions()]
    assert {"automated", "control", "manual"} == set(arms)


def test_events_without_a_known_campaign_are_unattributed() -> None:
    view = compile_account(account_from_dict(MANUAL))
    assert arms_of(view, [None, "gone", ""], ["a", "b", "c"]) == ["unattributed"] * 3
    assert arms_of(None, ["k"], ["a"]) == ["unattributed"]
    assert arms_of(view, [], []) == []


# (partition, offset, duplicate, index in the message's batch)
positions = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 30), st.booleans(), st.integers(0, 3)),
    max_size=40,
)


@given(positions, positions)
def test_applied_flags_match_apply_events(first: list[Any], second: list[Any]) -> None:
    def events(rows: list[Any]) -> list[SourcedEvent]:
        return [SourcedEvent("send", "c1", 1.0, 0, "t", p, o, d, index=i) for p, o, d, i in rows]

    ledger, _ = apply_events(Ledger(), events(first))
    batch = events(second)
    _, outcome = apply_events(ledger, batch)
    assert sum(applied_flags(ledger, batch)) == outcome["send", "applied"]
    rows = [
        (e.kind, e.creative_id, e.time, e.revenue_micros, e.topic, e.partition, e.offset,
         e.duplicate, e.origin_time, e.index)
        for e in batch
    ]  # fmt: skip
    assert apply_rows(ledger, rows)[2] == applied_flags(ledger, batch)  # the stats agent's


def test_every_event_of_a_batch_message_counts_by_arm() -> None:
    batch = [SourcedEvent("send", "c1", 1.0, 0, "t", 0, 7, index=i) for i in range(5)]
    assert applied_flags(Ledger(), batch) == [True] * 5
    ledger, _ = apply_events(Ledger(), batch)
    assert applied_flags(ledger, batch) == [False] * 5  # the message again: applied whole


class Harness:
    def __init__(self) -> None:
        self.table: dict[bytes, Any] = {}
        self.metrics = Metrics()
        self.service = IngestionService(
            kinds=KINDS,
            catalog=Catalogs(catalog_table("acme", MANUAL).get).get,
            stats=self.table.get,
            dedup=MemoryDedup(),
            metrics=self.metrics,
            dead_letters_topic="dead-letters",
            clock=lambda: 2000.0,
        )

    async def feed(self, batch: list[Any]) -> None:
        updates, _ = await self.service.ingest(batch)
        self.table.update(updates)

    def arm(self, counter: str, arm: str) -> float:
        return value(getattr(self.metrics, counter), arm)


def expected_arms(contacts: list[str], campaign: str = "k") -> dict[str, int]:
    view = compile_account(account_from_dict(MANUAL))
    arms = arms_of(view, [campaign] * len(contacts), contacts)
    return {arm: arms.count(arm) for arm in ARM_LABELS}


async def test_sends_clicks_and_revenue_are_counted_by_arm_once() -> None:
    h = Harness()
    sends = [record(event("send", i), "sends", i) for i in range(200)]
    clicks = [record(event("click", i, campaign_id="k"), "clicks", i) for i in range(100)]
    anonymous = [record(event("click", i), "clicks", i) for i in range(100, 150)]
    conversions = [
        record(event("conversion", i, campaign_id="k", revenue=2.25), "conversions", i)
        for i in range(40)
    ]
    batch = sends + clicks + anonymous + conversions
    await h.feed(batch)
    await h.feed(batch)  # re-delivered after a crash: not counted again
    contacts = [f"u{i}" for i in range(200)]
    arms = expected_arms(contacts)
    assert arms["automated"] > 100 and arms["control"] > 20
    for arm in ("automated", "control"):
        assert h.arm("arm_sends", arm) == arms[arm]
        assert h.arm("arm_clicks", arm) == expected_arms(contacts[:100])[arm]
        conversions_in_arm = expected_arms(contacts[:40])[arm]
        assert h.arm("arm_conversions", arm) == conversions_in_arm
        assert h.arm("arm_revenue", arm) == 2.25 * conversions_in_arm
    assert h.arm("arm_clicks", "unattributed") == 50
    assert h.arm("arm_sends", "unattributed") == 0


async def test_upstream_duplicates_and_rejected_events_are_not_counted() -> None:
    h = Harness()
    await h.feed([record(event("send", 1), "sends", 0)])
    duplicate = record(event("send", 1), "sends", 1)  # same event id, another offset
    unknown = record(event("send", 2, creative="nope"), "sends", 2)
    await h.feed([duplicate, unknown])
    total = sum(h.arm("arm_sends", arm) for arm in ARM_LABELS)
    assert total == 1
