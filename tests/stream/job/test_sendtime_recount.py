"""The slot recount against the learner, without Kafka or Redis: the learner's stored
counts after a messy event stream (duplicate sends, repeated and early clicks, clicks on
unknown sends, another contact reusing an event id, the two topics read in any order)
are exactly the recount's; drift injected into a stored value is found with its size
and the correction removes it, once."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from selector.sendtime import SendTimeSettings, apply_slot_correction, decode_slots, encode_slots
from selector.sendtime.counts import ContactSlots, SlotDelta, position
from selector.sendtime.recount import Cut
from stream.handlers.sendtime_learning import SendTimeLearner
from stream.handlers.sendtime_store import MemorySendTimeStore, slots_key, zone_key
from stream.job.recompute import Plain
from stream.job.sendtime_recount import CORRECTION_SOURCE, LogFold, compare_account
from stream.ops.metrics import Metrics
from stream.wire.envelope import Incoming
from tests.stream.handlers.service_fixtures import record
from tests.stream.handlers.test_sendtime import click, send

BERLIN = ZoneInfo("Europe/Berlin")
CONTACTS = [f"ct-{i}" for i in range(6)]
SETTINGS = SendTimeSettings(slots=24, zone="Europe/Berlin")


def messy_log(seed: int) -> tuple[list[Incoming], list[Incoming]]:
    """Sends and clicks of six contacts over three weeks, with every kind of mess."""
    rng = random.Random(seed)
    sends: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for d in range(21):
        for c in CONTACTS:
            hour = rng.choice((7, 9, 12, 18, 20))
            t = datetime(2026, 2, 1 + d % 28, hour, 10, tzinfo=BERLIN).timestamp()
            sid = f"{c}-{d}"
            sends.append(send(0, c, t) | {"event_id": sid})
            if rng.random() < 0.3:
                sends.append(send(0, c, t + 5) | {"event_id": sid})  # upstream duplicate
            for _ in range(rng.choice((0, 0, 1, 2))):  # no click, one, or a repeat
                clicks.append(click(0, c, t + 900, sid) | {"event_id": f"k{len(clicks)}"})
    sends.append(send(0, "ct-0", sends[3]["time"]) | {"event_id": sends[3]["event_id"]})
    clicks.append(click(0, "ct-1", sends[0]["time"] + 60, "never-sent") | {"event_id": "kx"})
    return (
        [record(doc, "sends", i) for i, doc in enumerate(sends)],
        [record(doc, "clicks", i) for i, doc in enumerate(clicks)],
    )


def interleaved(sends: list[Incoming], clicks: list[Incoming], seed: int) -> list[list[Incoming]]:
    """Both topics read in a random interleaving (each in its own order), in batches;
    clicks often before their sends."""
    rng = random.Random(seed)
    merged: list[Incoming] = []
    i = j = 0
    while i < len(sends) or j < len(clicks):
        if j < len(clicks) and (i == len(sends) or rng.random() < 0.6):
            merged.append(clicks[j])
            j += 1
        else:
            merged.append(sends[i])
            i += 1
    cuts = sorted(rng.sample(range(1, len(merged)), 12))
    return [merged[a:b] for a, b in zip([0, *cuts], [*cuts, len(merged)], strict=True)]


async def learned(batches: list[list[Incoming]], store: MemorySendTimeStore) -> None:
    learner = SendTimeLearner(
        store=store, metrics=Metrics(), kinds={"sends": "send", "clicks": "click"},
        record_ttl=86_400 * 30, settings_for=lambda account: SETTINGS,
    )  # fmt: skip
    for batch in batches:
        await learner.learn(batch)


def fold_of(sends: list[Incoming], clicks: list[Incoming]) -> LogFold:
    fold = LogFold(65_536)
    fold.feed("send", 0, [Plain(m.offset, m.key, m.value) for m in sends])
    fold.feed("click", 0, [Plain(m.offset, m.key, m.value) for m in clicks])
    return fold


def ends_of(sends: int, clicks: int) -> dict[str, int]:
    """The ends of the partitions read, as item positions."""
    return {"send:0": position(sends), "click:0": position(clicks)}


def check(store: MemorySendTimeStore, fold: LogFold, ends: dict[str, int]) -> Any:
    log = fold.logs["acme"]
    stored = {c: store.data.get(slots_key("acme", c)) for c in log.contacts()}
    raw = {c: store.data.get(zone_key("acme", c)) for c in stored}
    zones = {c: z.decode() if z else None for c, z in raw.items()}
    return compare_account(log, SETTINGS, stored, zones, ends)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_the_recount_is_what_the_learner_stored_in_any_reading_order(seed: int) -> None:
    sends, clicks = messy_log(seed)
    store = MemorySendTimeStore()
    store.data[zone_key("acme", "ct-2")] = b"America/New_York"  # decided in its own zone
    await learned(interleaved(sends, clicks, seed), store)
    fold = fold_of(sends, clicks)
    assert fold.records == {("send", "read"): len(sends), ("click", "read"): len(clicks)}
    found = check(store, fold, ends_of(len(sends), len(clicks)))
    assert (len(found.cuts), found.moving, found.missing) == (6, 0, 0)
    assert found.drifts == {}
    counted = sum(int(s.sends.sum()) for s in _states(store).values())
    assert counted == 6 * 21  # duplicates did not count


def _states(store: MemorySendTimeStore) -> dict[str, ContactSlots]:
    out = {}
    for c in CONTACTS:
        state = decode_slots(store.data[slots_key("acme", c)], 24, False)
        assert isinstance(state, ContactSlots)
        out[c] = state
    return out


async def test_injected_drift_is_found_exactly_and_corrected_once() -> None:
    sends, clicks = messy_log(7)
    store = MemorySendTimeStore()
    await learned(interleaved(sends, clicks, 7), store)
    fold = fold_of(sends, clicks)
    ends = ends_of(len(sends), len(clicks))
    truth = _states(store)
    # add 5 phantom sends and lose a response in a cell that has one
    state = truth["ct-4"]
    i = int(np.argmax(state.responses > 0))
    assert state.responses[i] > 0
    lost = SlotDelta(*(np.array([x]) for x in (state.bucket[i], state.cell[i], 5, -1)))
    broken, _ = apply_slot_correction(state, lost, CORRECTION_SOURCE, 0, 1)
    store.data[slots_key("acme", "ct-4")] = encode_slots(broken, 24, False)
    found = check(store, fold, ends)
    assert set(found.drifts) == {"ct-4"}
    delta = found.drifts["ct-4"]
    assert (int(delta.sends.sum()), int(delta.responses.sum())) == (-5, 1)
    # the correction the job makes: recount at the value's offsets, add the difference
    recounted = found.recount_one("ct-4", Cut.of(broken, 0))
    fixed, outcome = apply_slot_correction(broken, delta, CORRECTION_SOURCE, 0, 2)
    assert outcome == "applied"
    assert np.array_equal(fixed.sends, recounted.sends)
    assert np.array_equal(fixed.responses, recounted.responses)
    again, replay = apply_slot_correction(fixed, delta, CORRECTION_SOURCE, 0, 2)
    assert replay == "replayed" and again is fixed  # the same run again changes nothing
    store.data[slots_key("acme", "ct-4")] = encode_slots(fixed, 24, False)
    assert check(store, fold, ends).drifts == {}


async def test_values_past_the_log_read_are_moving_and_unstored_ones_missing() -> None:
    sends, clicks = messy_log(9)
    store = MemorySendTimeStore()
    await learned([sends + clicks], store)
    del store.data[slots_key("acme", "ct-5")]
    fold = fold_of(sends[:-20], clicks)  # the job read less than the learner
    found = check(store, fold, ends_of(len(sends) - 20, len(clicks)))
    assert found.missing == 1 and found.moving >= 1
    assert found.drifts == {}  # nothing compared that the job could not see whole
