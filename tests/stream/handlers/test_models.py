"""Models in a worker: the book of promoted models, and the selection's `model` method with
and without one (profiles read with the cooldowns, the Thompson fallback, the version on
the response, the metrics)."""

from __future__ import annotations

import math
from dataclasses import replace

import orjson
import pytest

from selector.model.artifact import ContextualModel
from selector.model.profile import EMPTY, add_event
from selector.model.record import encode
from stream.handlers.catalog import Catalogs
from stream.handlers.models import ModelBook
from stream.handlers.profiles import CooldownsWithProfiles, MemoryProfiles
from stream.handlers.selection import SelectionService
from stream.handlers.stores import MemoryCooldowns
from stream.ops.metrics import Metrics
from tests.selector.model.conftest import account_doc
from tests.stream.handlers.service_fixtures import catalog_table, record, request
from tests.stream.model_fixtures import MODEL_ONLY, model_account, trained_model

ACCOUNT = "acme"


@pytest.fixture(scope="module")
def model() -> ContextualModel:
    return trained_model(model_account(ACCOUNT, **MODEL_ONLY))


def test_the_book_keeps_the_newest_version_and_rejects_what_does_not_load(
    model: ContextualModel,
) -> None:
    metrics = Metrics()
    book = ModelBook(metrics.model)
    key = ACCOUNT.encode()
    assert book.apply(key, model.to_bytes()) == "loaded"
    newer = replace(model, version=2, trained_at=model.trained_at + 10)
    assert book.apply(key, newer.to_bytes()) == "loaded"
    assert book.apply(key, model.to_bytes()) == "older"  # the topic's history on a restart
    assert book.apply(key, b"{not json") == "rejected"
    assert book.apply(b"someone-else", newer.to_bytes()) == "rejected"  # key is not its account
    assert book.apply(None, newer.to_bytes()) == "rejected"
    found = book.get(key)
    assert found is not None and found.version == 2
    loads = metrics.model.model_loads
    assert [loads.labels(o)._value.get() for o in ("loaded", "older", "rejected")] == [2, 1, 3]
    assert metrics.model.models_in_use._value.get() == 1
    assert metrics.model.model_newest_trained._value.get() == newer.trained_at
    assert book.apply(key, None) == "loaded" and book.get(key) is None  # a tombstone
    assert math.isnan(metrics.model.model_oldest_trained._value.get())


def service(
    models: ModelBook, profiles: MemoryProfiles, metrics: Metrics, **settings: object
) -> SelectionService:
    doc = account_doc(**{**MODEL_ONLY, "cooldown_seconds": 0, **settings})
    return SelectionService(
        catalog=Catalogs(catalog_table(ACCOUNT, doc).get).get,
        stats={}.get,
        cooldowns=CooldownsWithProfiles(MemoryCooldowns(), profiles),
        metrics=metrics,
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=4,
        clock=lambda: 1e6,
        models=models.get,
    )


def requests(n: int) -> list:  # type: ignore[type-arg]
    docs = [request(i, campaign_id="camp", time=1e6) for i in range(n)]
    return [record(d, "selection-requests", i) for i, d in enumerate(docs)]


async def test_without_a_model_the_method_falls_back_to_thompson(model: ContextualModel) -> None:
    metrics = Metrics()
    answers = await service(ModelBook(), MemoryProfiles(), metrics).answer(requests(50))
    bodies = [orjson.loads(a.value) for a in answers]
    assert {(b["method"], b["reason"], b["pool"]) for b in bodies} == {
        ("model", "model_unavailable", "learning")  # Thompson's learning pool: no sends yet
    }
    assert all("model_version" not in b for b in bodies)
    counted = metrics.model.model_requests
    assert counted.labels("model")._value.get() == 0
    assert counted.labels("fallback")._value.get() == 50


async def test_with_a_model_each_contact_is_scored_and_the_version_answered(
    model: ContextualModel,
) -> None:
    metrics = Metrics()
    book = ModelBook()
    book.apply(ACCOUNT.encode(), replace(model, version=7).to_bytes())
    profiles = MemoryProfiles()
    clicked = add_event(EMPTY, "click", "deal", 1e6 - 3600, 0)
    profiles.values[(ACCOUNT, "u0")] = encode(clicked)
    answers = await service(book, profiles, metrics).answer(requests(400))
    bodies = [orjson.loads(a.value) for a in answers]
    assert {(b["method"], b["reason"], b.get("model_version")) for b in bodies} == {
        ("model", "none", 7)
    }
    share = sum(b["creative_id"] == "deal" for b in bodies) / len(bodies)
    assert share > 0.6  # the model knows deal clicks 2.5-6 times as often
    assert all(0.0 < b["propensity"] <= 1.0 for b in bodies)
    assert metrics.model.model_requests.labels("model")._value.get() == 400
