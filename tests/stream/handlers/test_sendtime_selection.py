"""A send-time request with `select_creative`: the answer carries the creative too, as
the selection service decides it at the answered send time (cooldown recorded from then);
a selection that fails is an error object beside a send time that stands; requests
without the flag are answered byte for byte as before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream.handlers.catalog import Catalogs
from stream.handlers.selection import SelectionService
from stream.handlers.sendtime_selection import Selected, selections_of
from stream.handlers.sendtime_store import MemorySendTimeStore
from stream.handlers.stores import MemoryCooldowns
from stream.ops.metrics import Metrics
from stream.wire.messages import SelectionError, SelectionRequest, SelectionResponse
from stream.wire.sendtime_messages import SendTimeAnswer
from tests.stream.handlers.service_fixtures import catalog_table, record
from tests.stream.handlers.test_sendtime import LAUNCH, answers, ask, service

CREATIVES = {"c0", "c1", "c2"}  # the fixture catalog's, campaign "k"


def selection(cooldowns: MemoryCooldowns, metrics: Metrics) -> SelectionService:
    return SelectionService(
        catalog=Catalogs(catalog_table().get).get,
        stats={}.get,
        cooldowns=cooldowns,
        metrics=metrics,
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=3,
        clock=lambda: LAUNCH,
    )


def combined(**kw: Any) -> tuple[Any, MemoryCooldowns, Metrics]:
    cooldowns, metrics = MemoryCooldowns(), Metrics()
    select = selections_of(selection(cooldowns, metrics))
    return service(MemorySendTimeStore(), metrics, select=select, **kw), cooldowns, metrics


async def test_the_flag_brings_the_campaigns_creative_decided_at_the_send_time() -> None:
    svc, cooldowns, metrics = combined()
    batch = [record(ask(i, campaign_id="k", select_creative=True), "str", i) for i in range(40)]
    out = await svc.answer(batch)
    assert all(o.topic == "send-time-responses" for o in out)  # no dead letter
    found = answers(out)
    assert len(found) == 40
    for i, a in enumerate(found):
        assert isinstance(a, SendTimeAnswer) and a.request_id == f"q{i}"
        s = a.selection
        assert isinstance(s, SelectionResponse), s
        assert (s.request_id, s.account_id, s.campaign_id) == (f"q{i}", "acme", "k")
        assert s.creative_id in CREATIVES and s.decided_at == LAUNCH
        assert s.arm in ("automated", "control") and 0 <= (s.propensity or 0) <= 1
        # the cooldown runs from the send time, as for a selection asked then
        (last,) = await cooldowns.last_sent([("acme", f"ct-{i}")])
        assert last == {s.creative_id: a.send_at}
    assert len({a.selection.creative_id for a in found if a.selection is not None}) > 1
    counted = metrics.decisions.collect()[0].samples
    assert sum(x.value for x in counted if x.name.endswith("_total")) == 40


async def test_a_second_ask_for_the_same_contact_respects_the_first_ones_cooldown() -> None:
    svc, _, _ = combined()
    chosen = set()
    for i in range(3):  # the same contact and launch: within the 1 h cooldown each time
        doc = ask(1, campaign_id="k", select_creative=True, request_id=f"again-{i}")
        (a,) = answers(await svc.answer([record(doc, "str", i)]))
        assert isinstance(a, SendTimeAnswer) and isinstance(a.selection, SelectionResponse)
        chosen.add(a.selection.creative_id)
    assert chosen == CREATIVES


async def test_without_the_flag_the_answers_are_byte_for_byte_those_without_selection() -> None:
    with_select, cooldowns, _ = combined()
    plain = service(MemorySendTimeStore(), Metrics())
    for flag in (None, False):
        extra = {} if flag is None else {"select_creative": flag}
        batch = [record(ask(i, campaign_id="k", **extra), "str", i) for i in range(30)]
        got, expected = await with_select.answer(batch), await plain.answer(batch)
        assert got == expected
        assert all(b"selection" not in o.value for o in got)
    assert await cooldowns.last_sent([("acme", "ct-1")]) == [{}]


async def test_a_failed_selection_is_an_error_object_and_the_send_time_stands() -> None:
    svc, _, metrics = combined()
    docs = [
        ask(0, select_creative=True),  # campaign "news": not in the selection catalog
        {**ask(1, select_creative=True), "account_id": "ghost"},
        ask(2, campaign_id="k", select_creative=True),
    ]
    out = await svc.answer(
        [record(d, "str", i, key=d["account_id"].encode()) for i, d in enumerate(docs)]
    )
    assert all(o.topic == "send-time-responses" for o in out)
    found = {a.request_id: a for a in answers(out)}
    assert set(found) == {"q0", "q1", "q2"}
    for rid, reason in (("q0", "unknown_campaign"), ("q1", "unknown_account")):
        a = found[rid]
        assert isinstance(a, SendTimeAnswer) and LAUNCH <= a.send_at <= LAUNCH + 86_400
        assert isinstance(a.selection, SelectionError) and a.selection.reason == reason
        assert a.selection.request_id == rid
        assert "ct-" not in a.selection.message
    assert isinstance(found["q2"], SendTimeAnswer)
    assert isinstance(found["q2"].selection, SelectionResponse)
    assert metrics.selection_errors.labels("unknown_campaign")._value.get() == 1
    assert metrics.dead_letters.labels("unknown_campaign", "")._value.get() == 0


async def test_a_selection_that_raises_or_is_not_wired_leaves_the_send_times() -> None:
    async def broken(pairs: Sequence[tuple[SelectionRequest, float]]) -> list[Selected]:
        raise ConnectionError("down")

    metrics = Metrics()
    for svc in (
        service(MemorySendTimeStore(), metrics, select=broken),
        service(MemorySendTimeStore(), metrics),
    ):
        batch = [record(ask(i, select_creative=True), "str", i) for i in range(3)]
        batch.append(record(ask(9), "str", 9))
        found = answers(await svc.answer(batch))
        assert all(isinstance(a, SendTimeAnswer) for a in found)
        errors = [a.selection for a in found if isinstance(a, SendTimeAnswer)]
        assert [type(e) for e in errors] == [SelectionError] * 3 + [type(None)]
        assert all(e.reason == "internal_error" for e in errors if isinstance(e, SelectionError))
    assert metrics.selection_errors.labels("internal_error")._value.get() == 6
