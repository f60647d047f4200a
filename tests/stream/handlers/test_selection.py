"""The selection agent's work, without Kafka: every request gets one answer."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection
from typing import Any

import orjson
import pytest

from selector import Selector
from selector.ingest import Ledger
from selector.stats import AccountStats, Counts
from stream.handlers.catalog import Catalogs
from stream.handlers.cooldowns import GuardedCooldowns
from stream.handlers.reply_to import ReplyPolicy
from stream.handlers.selection import SelectionService
from stream.handlers.stores import MemoryCooldowns
from stream.ops.metrics import Metrics
from stream.settings import Settings
from tests.stream.handlers.flaky_stores import FlakyCooldowns, Outage
from tests.stream.handlers.service_fixtures import catalog_table, record, request


def service(table=None, stats=None, cooldowns=None, metrics=None):  # type: ignore[no-untyped-def]
    table = catalog_table() if table is None else table
    return SelectionService(
        catalog=Catalogs(table.get).get,
        stats=(stats or {}).get,
        cooldowns=cooldowns or MemoryCooldowns(),
        metrics=metrics or Metrics(),
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=3,
        clock=lambda: 1000.0,
    )


def by_topic(out):  # type: ignore[no-untyped-def]
    responses = [orjson.loads(o.value) for o in out if o.topic == "selection-responses"]
    letters = [orjson.loads(o.value) for o in out if o.topic == "dead-letters"]
    return responses, letters


async def test_every_request_gets_exactly_one_response_invalid_ones_included() -> None:
    batch = [record(request(i), "selection-requests", i) for i in range(50)]
    batch.append(record(b"{not json", "selection-requests", 50))
    batch.append(record({**request(51), "contact_id": 7}, "selection-requests", 51))
    batch.append(record(request(52, campaign_id="nope"), "selection-requests", 52))
    batch.append(
        record({**request(53), "account_id": "ghost"}, "selection-requests", 53, key=b"ghost")
    )
    metrics = Metrics()
    responses, letters = by_topic(await service(metrics=metrics).answer(batch))
    assert len(responses) == 54
    ok = [r for r in responses if r["status"] == "ok"]
    errors = {r["request_id"]: r["error"]["reason"] for r in responses if r["status"] == "error"}
    assert len(ok) == 50
    assert errors == {
        None: "malformed_json",
        "r51": "wrong_type",
        "r52": "unknown_campaign",
        "r53": "unknown_account",
    }
    assert sorted(letter["reason"] for letter in letters) == sorted(errors.values())
    assert {letter["source"]["offset"] for letter in letters} == {50, 51, 52, 53}
    assert metrics.selection_errors.labels("unknown_campaign")._value.get() == 1


async def test_responses_carry_no_contact_id() -> None:
    responses, _ = by_topic(await service().answer([record(request(1, "555-0100"), "sr", 1)]))
    assert "555-0100" not in orjson.dumps(responses).decode()


async def test_cooldowns_are_read_and_recorded() -> None:
    cooldowns = MemoryCooldowns()
    svc = service(cooldowns=cooldowns)
    chosen = set()
    for i in range(3):  # the same contact three times: three different creatives
        responses, _ = by_topic(await svc.answer([record(request(i, "same"), "sr", i)]))
        chosen.add(responses[0]["creative_id"])
        assert responses[0]["pool"] != "fallback"
    assert chosen == {"c0", "c1", "c2"} or len(chosen) == 3
    responses, _ = by_topic(await svc.answer([record(request(9, "same"), "sr", 9)]))
    if responses[0]["arm"] == "automated":
        assert responses[0]["pool"] == "fallback" and responses[0]["reason"] == "all_in_cooldown"


async def test_decisions_read_the_stats_table() -> None:
    stats = AccountStats().merge(
        AccountStats(
            counts={  # type: ignore[arg-type]
                "c0": Counts(5000, 250, 25, 750_000_000),
                "c1": Counts(5000, 1000, 300, 9_000_000_000),
                "c2": Counts(5000, 250, 25, 750_000_000),
            }
        )
    )
    svc = service(stats={b"acme": Ledger(stats)})
    batch = [record(request(i), "sr", i) for i in range(400)]
    responses, _ = by_topic(await svc.answer(batch))
    automated = [r for r in responses if r["arm"] == "automated"]
    assert sum(r["creative_id"] == "c1" for r in automated) / len(automated) > 0.95
    assert {r["params_version"] for r in automated} == {stats.version}


@pytest.mark.parametrize("bad", [b"", b"[]", b"null", b"x" * 70_000])
async def test_garbage_never_raises(bad: bytes) -> None:
    responses, letters = by_topic(await service().answer([record(bad, "sr", 0)]))
    assert len(responses) == 1 and responses[0]["status"] == "error"
    assert len(letters) == 1


async def test_a_cooldown_store_outage_answers_with_creatives_marked_degraded() -> None:
    outage = Outage()
    metrics = Metrics()
    guard = GuardedCooldowns(FlakyCooldowns(outage), metrics, timeout=0.05, clock=lambda: 1000.0)
    svc = service(cooldowns=guard, metrics=metrics)
    exact, _ = by_topic(await svc.answer([record(request(0, "same"), "sr", 0)]))
    assert exact[0]["status"] == "ok" and "cooldowns" not in exact[0]
    outage.mode = "down"
    responses, letters = by_topic(
        await svc.answer([record(request(i), "sr", i) for i in range(10, 14)])
    )
    for i in (1, 2):  # the same contact again, one batch each
        answered, more = by_topic(await svc.answer([record(request(i, "same"), "sr", i)]))
        responses, letters = responses + answered, letters + more
    assert letters == [] and len(responses) == 6
    assert all(r["status"] == "ok" and r["cooldowns"] == "degraded" for r in responses)
    assert metrics.degraded_decisions._value.get() == 6
    same = [exact[0], *responses[4:]]
    # three creatives, so each of the contact's creatives is still in cooldown from the
    # worker's own record when it asks again: never the same one twice
    assert all(r["arm"] == "automated" for r in same)
    assert len({r["creative_id"] for r in same}) == 3


class Cluster:
    """Topic metadata that answers once `release` is set, as a slow broker would."""

    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.release = asyncio.Event()
        self.asked = 0

    async def existing(self, names: Collection[str]) -> set[str]:
        self.asked += 1
        await self.release.wait()
        return self.topics & set(names)


def replying_service(cluster: Cluster, cooldowns: MemoryCooldowns, metrics: Metrics):  # type: ignore[no-untyped-def]
    return SelectionService(
        catalog=Catalogs(catalog_table().get).get,
        stats={}.get,
        cooldowns=cooldowns,
        metrics=metrics,
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=3,
        clock=lambda: 1000.0,
        reply_policy=ReplyPolicy.from_settings(Settings(app_id="cs")),
        reply_topics=cluster,
        reply_check_seconds=5.0,
    )


async def test_a_forbidden_reply_to_gets_an_error_on_the_default_topic_and_no_decision() -> None:
    cooldowns, metrics = MemoryCooldowns(), Metrics()
    svc = replying_service(Cluster(set()), cooldowns, metrics)
    targets = ["cs-account-to-stats-changelog", "catalog-offers", "sends", "elsewhere"]
    batch = [record(request(i, reply_to=t), "sr", i) for i, t in enumerate(targets)]
    out, held = await svc.answer_ready(batch)
    assert held is None and {o.topic for o in out} == {"selection-responses", "dead-letters"}
    responses, letters = by_topic(out)
    assert [r["error"]["reason"] for r in responses] == ["forbidden_reply_to"] * 4
    assert [r["request_id"] for r in responses] == ["r0", "r1", "r2", "r3"]
    assert "'sends' is an internal topic" in responses[2]["error"]["message"]
    assert [letter["reason"] for letter in letters] == ["forbidden_reply_to"] * 4
    assert await cooldowns.last_sent([("acme", "u0"), ("acme", "u3")]) == [{}, {}]
    refused = metrics.reply_to_refused
    assert refused.labels("internal_topic")._value.get() == 3
    assert refused.labels("not_allowed")._value.get() == 1
    assert metrics.selection_errors.labels("forbidden_reply_to")._value.get() == 4


async def test_a_reply_topic_being_checked_holds_up_no_other_answer() -> None:
    cluster, metrics = Cluster({"selection-replies.eu"}), Metrics()
    svc = replying_service(cluster, MemoryCooldowns(), metrics)
    batch = [
        record(request(0), "sr", 0),
        record(request(1, reply_to="selection-replies.eu"), "sr", 1),
        record(request(2, reply_to="selection-replies.gone"), "sr", 2),
        record(request(3, reply_to="selection-responses"), "sr", 3),
    ]
    out, held = await svc.answer_ready(batch)  # the cluster has not answered yet
    assert held is not None and [m.offset for m in held.messages] == [1, 2]
    assert sorted(r["request_id"] for r in by_topic(out)[0]) == ["r0", "r3"]
    assert all(r["status"] == "ok" for r in by_topic(out)[0])
    cluster.release.set()
    late = await svc.answer_held(held)
    assert [(o.topic, orjson.loads(o.value).get("request_id")) for o in late] == [
        ("selection-responses", "r2"),
        ("dead-letters", None),  # a dead letter holds the request in `original`
        ("selection-replies.eu", "r1"),
    ]
    assert orjson.loads(late[0].value)["error"]["reason"] == "unknown_reply_to"
    assert orjson.loads(late[2].value)["status"] == "ok"
    # the next batch uses what the check found: no second check, nothing held
    again = [
        record(request(4, reply_to="selection-replies.eu"), "sr", 4),
        record(request(5, reply_to="selection-replies.gone"), "sr", 5),
    ]
    out, held = await svc.answer_ready(again)
    assert held is None and cluster.asked == 1
    assert [o.topic for o in out] == ["selection-responses", "dead-letters", "selection-replies.eu"]
    assert metrics.reply_to_refused.labels("missing_topic")._value.get() == 2


async def test_answer_gives_every_request_one_response_reply_topics_included() -> None:
    cluster = Cluster({"selection-replies.eu"})
    cluster.release.set()
    svc = replying_service(cluster, MemoryCooldowns(), Metrics())
    targets = [None, "selection-replies.eu", "selection-replies.gone", "sends", None]
    batch = [record(request(i, reply_to=t), "sr", i) for i, t in enumerate(targets)]
    out = await svc.answer(batch)
    answers = [o for o in out if o.topic != "dead-letters"]
    assert sorted(orjson.loads(o.value)["request_id"] for o in answers) == [
        f"r{i}" for i in range(5)
    ]
    assert sum(o.topic == "dead-letters" for o in out) == 2


# --- batch envelopes (stream.wire.batches) ------------------------------------------------


def request_batch(items: list[dict], account: str = "acme") -> bytes:  # type: ignore[type-arg]
    doc = {"schema": "selection_request_batch.v1", "account_id": account, "requests": items}
    return orjson.dumps(doc)


def answers_in(out):  # type: ignore[no-untyped-def]
    """(response messages, every response in them, dead letters)."""
    messages = [o for o in out if o.topic != "dead-letters"]
    found = []
    for o in messages:
        body = orjson.loads(o.value)
        found += body.get("responses", [body])
    return messages, found, [orjson.loads(o.value) for o in out if o.topic == "dead-letters"]


async def test_a_batch_gets_one_answer_per_request_in_one_response_batch() -> None:
    items = [{k: v for k, v in request(i).items() if k != "schema"} for i in range(40)]
    single = record(request(99), "selection-requests", 7)
    out = await service().answer([record(request_batch(items), "selection-requests", 6), single])
    messages, found, letters = answers_in(out)
    assert len(messages) == 2 and not letters  # one batch, one single answer
    batch = orjson.loads(messages[0].value)
    assert batch["schema"] == "selection_response_batch.v1"
    assert [r["request_id"] for r in batch["responses"]] == [f"r{i}" for i in range(40)]
    assert all(r["status"] == "ok" for r in found) and len(found) == 41
    assert orjson.loads(messages[1].value)["request_id"] == "r99"


async def test_bad_items_get_their_own_error_and_dead_letter_the_rest_are_decided() -> None:
    items = [
        {k: v for k, v in request(0).items() if k != "schema"},
        {**request(1), "contact_id": 7},
        {**request(2), "account_id": "other"},
        {**request(3), "campaign_id": "nope"},
        request(4),
    ]
    metrics = Metrics()
    out = await service(metrics=metrics).answer(
        [record(request_batch(items), "selection-requests", 6)]
    )
    _, found, letters = answers_in(out)
    status = {r["request_id"]: r.get("error", {}).get("reason", "ok") for r in found}
    assert status == {
        "r0": "ok",
        "r1": "wrong_type",
        "r2": "invalid_value",
        "r3": "unknown_campaign",
        "r4": "ok",
    }
    assert sorted(d["reason"] for d in letters) == [
        "invalid_value",
        "unknown_campaign",
        "wrong_type",
    ]
    assert all(d["source"]["offset"] == 6 for d in letters)
    assert sorted(d["detail"][:11] for d in letters) == [
        "requests[1]",
        "requests[2]",
        "requests[3]",
    ]
    originals = [orjson.loads(base64.b64decode(d["original"])) for d in letters]
    assert sorted(o["request_id"] for o in originals) == ["r1", "r2", "r3"]  # the item alone


async def test_a_refused_envelope_answers_every_request_id_it_names() -> None:
    items = [{k: v for k, v in request(i).items() if k != "schema"} for i in range(3)]
    out = await service().answer(
        [record(request_batch(items), "selection-requests", 6, key=b"someone-else")]
    )
    _, found, letters = answers_in(out)
    assert [(r["request_id"], r["error"]["reason"]) for r in found] == [
        (f"r{i}", "invalid_value") for i in range(3)
    ]
    assert len(letters) == 1  # the message, once


async def test_a_failed_batch_answers_each_of_its_requests() -> None:
    items = [{k: v for k, v in request(i).items() if k != "schema"} for i in range(3)]
    batch = [record(request_batch(items), "sr", 6), record(request(9), "sr", 7)]
    out = service().internal_error(batch, RuntimeError("boom"))
    messages, found, letters = answers_in(out)
    assert sorted(r["request_id"] for r in found) == ["r0", "r1", "r2", "r9"]
    assert {r["error"]["reason"] for r in found} == {"internal_error"}
    assert len(messages) == 2 and len(letters) == 2


async def test_batched_requests_share_one_cooldown_round_trip() -> None:
    cooldowns = CountingCooldowns()
    items = [{k: v for k, v in request(i, "same").items() if k != "schema"} for i in range(3)]
    out = await service(cooldowns=cooldowns).answer([record(request_batch(items), "sr", 1)])
    _, found, _ = answers_in(out)
    assert (cooldowns.reads, cooldowns.writes) == (1, 1) and len(found) == 3


class CountingCooldowns(MemoryCooldowns):
    def __init__(self) -> None:
        super().__init__()
        self.reads = self.writes = 0

    async def last_sent(self, pairs):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().last_sent(pairs)

    async def record(self, sends):  # type: ignore[no-untyped-def]
        self.writes += 1
        return await super().record(sends)


async def test_a_large_batch_is_decided_in_rounds_and_answered_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stream.handlers.selection.ROUND", 3)
    cooldowns = CountingCooldowns()
    items = [{k: v for k, v in request(i).items() if k != "schema"} for i in range(10)]
    out = await service(cooldowns=cooldowns).answer([record(request_batch(items), "sr", 1)])
    messages, found, _ = answers_in(out)
    assert (cooldowns.reads, cooldowns.writes) == (4, 4)
    assert len(messages) == 1 and [r["request_id"] for r in found] == [f"r{i}" for i in range(10)]


async def test_a_few_requests_decided_one_by_one_have_the_batch_paths_propensities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls of a few requests take the scalar path (`account_decisions.SMALL`): the same
    answers' shape and the same exact propensity per creative as the vectorized path."""
    from stream.handlers import account_decisions

    async def propensities(small: int, size: int) -> tuple[dict[str, float], float]:
        monkeypatch.setattr(account_decisions, "SMALL", small)
        metrics = Metrics()
        svc = service(stats={b"acme": Ledger(AccountStats())}, metrics=metrics)
        batch = [record(request(i), "selection-requests", i) for i in range(300)]
        out = []
        for start in range(0, len(batch), size):
            out += await svc.answer(batch[start : start + size])
        responses, letters = by_topic(out)
        assert len(responses) == 300 and letters == []
        seen: dict[str, float] = {}
        for r in responses:
            if r["arm"] == "automated":
                assert seen.setdefault(r["creative_id"], r["propensity"]) == r["propensity"]
        counted = sum(s.value for m in metrics.decisions.collect() for s in m.samples
                      if s.name.endswith("_total"))  # fmt: skip
        return seen, counted

    vectorized_calls: list[int] = []
    batch_path = Selector.decide_batch

    def counted_batch_path(self: Selector, *args: Any, **kwargs: Any) -> Any:
        vectorized_calls.append(1)
        return batch_path(self, *args, **kwargs)

    monkeypatch.setattr(Selector, "decide_batch", counted_batch_path)
    one_by_one, counted = await propensities(account_decisions.SMALL, 4)
    assert vectorized_calls == []  # the scalar path decided every call
    vectorized, counted_batch = await propensities(0, 300)
    assert one_by_one == pytest.approx(vectorized, rel=1e-12)
    assert len(one_by_one) == 3 and counted == counted_batch == 300
