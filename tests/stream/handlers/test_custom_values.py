"""Custom-field values on selection requests: checked against the account's declarations,
used by the `model` method for the request's own decision, kept in the contact's profile
(compare-and-set, merged again after a conflict), and a value that does not fit dropped
with its reason in the response and the metric."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from selector import account_from_dict
from selector.custom_fields import CategoricalField
from selector.model.artifact import ContextualModel
from selector.model.examples import examples_from_events
from selector.model.profile import EMPTY, add_event
from selector.model.record import decode, encode
from selector.model.train import train
from stream.handlers.catalog import Catalogs
from stream.handlers.custom_values import CustomWriter
from stream.handlers.models import ModelBook
from stream.handlers.profiles import CooldownsWithProfiles, MemoryProfiles, Write
from stream.handlers.selection import SelectionService
from stream.handlers.stores import MemoryCooldowns
from stream.ops.metrics import Metrics
from tests.selector.model.conftest import account_doc, world_events
from tests.stream.handlers.service_fixtures import catalog_table, record

ACCOUNT = "acct-m"
FIELDS = [
    {"name": "plan", "type": "categorical", "values": ["free", "pro"]},
    {"name": "age", "type": "numeric", "min": 18, "max": 99},
]
MODEL_ONLY = [{"method": "model", "traffic_pct": 100}]
THOMPSON = [{"method": "thompson_single_step", "traffic_pct": 100}]


@pytest.fixture(scope="module")
def model() -> ContextualModel:
    """A model of `plan` (the account's first field): free contacts click deal, pro ones
    premium (`tests.selector.model.conftest`)."""
    fields = (CategoricalField("plan", ("free", "pro")),)
    account = account_from_dict(account_doc())
    events, custom = world_events(40_000, 4_000, seed=1)
    examples = examples_from_events(account, events, fields, 1e9, 3600.0, 1e12, custom)
    return train(account, examples, fields, 1e9, version=3, now=1.2e6)[0]


def service(
    profiles: MemoryProfiles,
    metrics: Metrics,
    book: ModelBook | None = None,
    methods: list[dict[str, Any]] = MODEL_ONLY,
    writer: CustomWriter | None = None,
) -> SelectionService:
    doc = account_doc(methods=methods, cooldown_seconds=0, custom_fields=FIELDS)
    doc["account_id"] = ACCOUNT
    values = metrics.model.custom_values
    return SelectionService(
        catalog=Catalogs(catalog_table(ACCOUNT, doc).get).get,
        stats={}.get,
        cooldowns=CooldownsWithProfiles(MemoryCooldowns(), profiles),
        metrics=metrics,
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=4,
        clock=lambda: 1.3e6,
        models=(book or ModelBook()).get,
        custom=writer
        or CustomWriter(
            profiles,
            retention_seconds=1e7,
            on_outcome=lambda outcome, n: values.labels(outcome).inc(n),
        ),
    )


def requests(customs: Sequence[tuple[str, dict[str, Any] | None]]) -> list[Any]:
    out = []
    for i, (contact, custom) in enumerate(customs):
        doc: dict[str, Any] = {
            "schema": "selection_request.v1",
            "request_id": f"r{i}",
            "account_id": ACCOUNT,
            "campaign_id": "camp",
            "contact_id": contact,
        }
        if custom is not None:
            doc["custom"] = custom
        out.append(record(doc, "selection-requests", i, key=ACCOUNT.encode()))
    return out


def outcome(metrics: Metrics, name: str) -> float:
    value: float = metrics.model.custom_values.labels(name)._value.get()
    return value


async def test_the_model_uses_the_values_a_request_carries_and_they_are_stored(
    model: ContextualModel,
) -> None:
    book, profiles, metrics = ModelBook(), MemoryProfiles(), Metrics()
    assert book.apply(ACCOUNT.encode(), model.to_bytes()) == "loaded"
    asks = [(f"p{i}", {"plan": "pro"}) for i in range(300)]
    asks += [(f"f{i}", {"plan": "free", "age": 30}) for i in range(300)]
    bodies = [orjson.loads(a.value) for a in await service(profiles, metrics, book).answer(
        requests(asks)
    )]  # fmt: skip
    assert {(b["status"], b["method"], b["reason"]) for b in bodies} == {("ok", "model", "none")}
    pro = [b["creative_id"] for b in bodies[:300]]
    free = [b["creative_id"] for b in bodies[300:]]
    # the model learned that pro contacts click premium, free ones deal
    assert pro.count("premium") > 2 * free.count("premium")
    assert free.count("deal") > 2 * pro.count("deal")
    assert all("custom_dropped" not in b for b in bodies)
    stored = decode(profiles.values[(ACCOUNT, "f7")])
    assert not isinstance(stored, str) and stored.custom == (0.0, 30.0)
    assert decode(profiles.values[(ACCOUNT, "p7")]).custom == (1.0,)  # type: ignore[union-attr]
    assert outcome(metrics, "stored") == 300 + 600


async def test_stored_values_serve_a_later_request_that_carries_none(
    model: ContextualModel,
) -> None:
    book, profiles, metrics = ModelBook(), MemoryProfiles(), Metrics()
    book.apply(ACCOUNT.encode(), model.to_bytes())
    selection = service(profiles, metrics, book)
    await selection.answer(requests([(f"p{i}", {"plan": "pro"}) for i in range(300)]))
    later = [orjson.loads(a.value) for a in await selection.answer(
        requests([(f"p{i}", None) for i in range(300)])
    )]  # fmt: skip
    fresh = [orjson.loads(a.value) for a in await selection.answer(
        requests([(f"n{i}", None) for i in range(300)])
    )]  # fmt: skip
    share = [sum(b["creative_id"] == "premium" for b in bodies) for bodies in (later, fresh)]
    assert share[0] > 1.5 * share[1]


async def test_a_value_that_does_not_fit_is_dropped_named_and_counted() -> None:
    profiles, metrics = MemoryProfiles(), Metrics()
    custom = {"plan": "gold", "age": 120, "tier": 3, "region": None}
    asks = [("u1", custom), ("u2", {"age": "old", "plan": 1}), ("u3", {"age": 41})]
    bodies = [orjson.loads(a.value) for a in await service(profiles, metrics).answer(
        requests(asks)
    )]  # fmt: skip
    assert [b["status"] for b in bodies] == ["ok"] * 3  # decided all the same
    assert bodies[0]["custom_dropped"] == [
        {"field": "plan", "reason": "unknown_category"},
        {"field": "age", "reason": "out_of_bounds"},
        {"field": "tier", "reason": "unknown_field"},
        {"field": "region", "reason": "unknown_field"},
    ]
    assert bodies[1]["custom_dropped"] == [
        {"field": "age", "reason": "not_a_number"},
        {"field": "plan", "reason": "not_a_string"},
    ]
    assert "custom_dropped" not in bodies[2]
    counts = {
        r: outcome(metrics, r) for r in ("unknown_category", "out_of_bounds", "unknown_field")
    }
    assert counts == {"unknown_category": 1, "out_of_bounds": 1, "unknown_field": 2}
    assert outcome(metrics, "not_a_number") == outcome(metrics, "not_a_string") == 1
    assert (ACCOUNT, "u1") not in profiles.values and (ACCOUNT, "u2") not in profiles.values
    assert decode(profiles.values[(ACCOUNT, "u3")]).custom == (None, 41.0)  # type: ignore[union-attr]
    assert metrics.dead_letters.labels("invalid_value", "selection-requests")._value.get() == 0


async def test_values_are_kept_for_an_account_without_the_model_method_and_null_clears() -> None:
    profiles, metrics = MemoryProfiles(), Metrics()
    history = add_event(EMPTY, "click", "deal", 1e6, 0)
    profiles.values[(ACCOUNT, "u1")] = encode(history)
    selection = service(profiles, metrics, methods=THOMPSON)
    await selection.answer(requests([("u1", {"plan": "pro", "age": 50})]))
    kept = decode(profiles.values[(ACCOUNT, "u1")])
    assert not isinstance(kept, str)
    assert kept.custom == (1.0, 50.0) and kept.recent == history.recent  # history untouched
    await selection.answer(requests([("u1", {"plan": None})]))
    assert decode(profiles.values[(ACCOUNT, "u1")]).custom == (None, 50.0)  # type: ignore[union-attr]


class RacingProfiles(MemoryProfiles):
    """A store where an event is folded into the profile between the read and the write."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = 0

    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        if not self.raced:
            self.raced = 1
            for pair, _, _ in writes:
                self.values[pair] = encode(add_event(EMPTY, "send", "deal", 5.0, 0))
        return await super().write_profiles(writes, ttl_seconds)


async def test_a_profile_changed_meanwhile_is_read_and_merged_again() -> None:
    profiles, metrics = RacingProfiles(), Metrics()
    await service(profiles, metrics).answer(requests([("u1", {"age": 20})]))
    merged = decode(profiles.values[(ACCOUNT, "u1")])
    assert not isinstance(merged, str)
    assert merged.custom == (None, 20.0) and len(merged.recent) == 1  # both kept
    assert outcome(metrics, "stored") == 1


class DownProfiles(MemoryProfiles):
    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        raise ConnectionError("down")


async def test_a_store_that_fails_costs_the_values_not_the_answers() -> None:
    profiles, metrics = DownProfiles(), Metrics()
    values = metrics.model.custom_values
    writer = CustomWriter(
        profiles, retention_seconds=1e7, on_outcome=lambda o, n: values.labels(o).inc(n)
    )
    answers = await service(profiles, metrics, writer=writer).answer(
        requests([("u1", {"age": 20, "plan": "pro"}), ("u2", {"age": 30})])
    )
    assert [orjson.loads(a.value)["status"] for a in answers] == ["ok", "ok"]
    assert outcome(metrics, "store_failure") == 3 and writer.failing


@pytest.mark.parametrize(
    ("custom", "reason"),
    [
        ([1, 2], "wrong_type"),
        ({f"f{i}": 1 for i in range(9)}, "invalid_value"),
        ({"x" * 65: 1}, "invalid_value"),
        ({"plan": ["pro"]}, "wrong_type"),
        ({"plan": True}, "wrong_type"),
        ({"plan": "p" * 201}, "invalid_value"),
    ],
)
async def test_a_custom_that_breaks_the_schema_refuses_the_request(
    custom: Any, reason: str
) -> None:
    metrics = Metrics()
    answers = await service(MemoryProfiles(), metrics).answer(requests([("u1", custom)]))
    body = orjson.loads(answers[0].value)
    assert body["status"] == "error" and body["error"]["reason"] == reason
    assert "custom" in body["error"]["message"]
