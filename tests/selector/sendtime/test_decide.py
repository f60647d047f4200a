"""The send-time decision: arms, exploration, propensities that match what the policy does,
zones and their fallbacks, deferrals, the no-allowed-time rule, determinism, validation."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from selector.domain import ConfigError
from selector.sendtime.batch import REASONS, SendTimeBatch
from selector.sendtime.decide import SendTimeDecider
from selector.sendtime.hours import QuietHours
from selector.sendtime.prior import SlotPrior
from selector.sendtime.settings import (
    SendTimeRequest,
    SendTimeSettings,
    rejection,
    sendtime_settings_from_dict,
)

BERLIN = ZoneInfo("Europe/Berlin")
# Tuesday 2026-03-03 15:00 in Berlin
LAUNCH = datetime(2026, 3, 3, 15, 0, tzinfo=BERLIN).timestamp()


def requests(n: int, **overrides: object) -> list[SendTimeRequest]:
    base = {"launch_time": LAUNCH, "window_seconds": 86_400.0, "zone": "Europe/Berlin"}
    return [SendTimeRequest(f"ct-{i}", "camp-1", **(base | overrides)) for i in range(n)]  # type: ignore[arg-type]


def decider(**settings: object) -> SendTimeDecider:
    s = SendTimeSettings(**settings)  # type: ignore[arg-type]
    return SendTimeDecider(s, SlotPrior.uniform(s.cells))


def local_hour(t: float) -> float:
    local = datetime.fromtimestamp(t, BERLIN)
    return local.hour + local.minute / 60


def test_the_control_split_is_stable_and_close_to_its_share() -> None:
    d = decider(control_pct=20.0)
    batch = SendTimeBatch.from_requests(requests(20_000), d.settings)
    first = d.decide_batch(batch, np.random.default_rng(1))
    second = d.decide_batch(batch, np.random.default_rng(2))
    assert np.array_equal(first.arm, second.arm)
    assert 0.19 < (first.arm == 1).mean() < 0.21
    control = first.arm == 1
    assert np.all(first.send_at[control] == np.ceil(LAUNCH))
    assert {REASONS[r] for r in first.reason[control]} == {"control"}
    # another launch of the campaign draws a fresh control group
    later = SendTimeBatch.from_requests(requests(20_000, launch_id="second"), d.settings)
    other = d.decide_batch(later, np.random.default_rng(1)).arm == 1
    assert 0.03 < (control & other).mean() < 0.05


def test_a_contact_with_a_clear_best_slot_gets_it_and_a_propensity_that_says_so() -> None:
    d = decider(control_pct=0.0, exploration_pct=0.0)
    sends = np.zeros((1, 12), int)
    responses = np.zeros((1, 12), int)
    sends[0, 4:11] = 60
    responses[0, 4:11] = 6
    responses[0, 5] = 40  # 10:00-12:00 local
    decision = d.decide(requests(1)[0], np.random.default_rng(0), sends, responses)
    assert decision.slot == 5 and decision.reason == "sampled"
    assert decision.propensity > 0.999
    assert 10 <= local_hour(decision.send_at) < 12
    # the next morning: the window starts at 15:00
    assert decision.send_at - LAUNCH > 18 * 3600


def test_reported_propensities_match_the_observed_slot_frequencies() -> None:
    d = decider(control_pct=0.0, exploration_pct=10.0)
    rng = np.random.default_rng(3)
    sends = rng.integers(0, 12, size=(1, 12))
    responses = rng.binomial(sends, 0.3)
    n = 40_000
    batch = SendTimeBatch.from_requests(
        requests(n), d.settings, np.repeat(sends, n, axis=0), np.repeat(responses, n, axis=0)
    )
    out = d.decide_batch(batch, np.random.default_rng(4))
    share = Counter(out.slot.tolist())
    for slot, count in share.items():
        p = out.propensity[out.slot == slot]
        assert np.ptp(p) < 1e-12  # identical posteriors, identical propensities
        assert abs(count / n - p[0]) < 4 * np.sqrt(p[0] * (1 - p[0]) / n) + 1e-3
    assert set(share) <= set(range(4, 11))  # 08:00-22:00 slots only
    explored = np.mean([REASONS[r] == "explored" for r in out.reason])
    assert 0.09 < explored < 0.11


def test_only_one_candidate_slot_is_forced_with_propensity_one() -> None:
    d = decider(control_pct=0.0)
    launch = datetime(2026, 3, 3, 20, 15, tzinfo=BERLIN).timestamp()
    decision = d.decide(
        requests(1, launch_time=launch, window_seconds=1800.0)[0], np.random.default_rng(0)
    )
    assert (decision.reason, decision.propensity, decision.slot) == ("only_slot", 1.0, 10)


def test_quiet_launches_are_deferred_and_say_so() -> None:
    d = decider(control_pct=100.0, hours=QuietHours.parse("09:00", "17:00"))
    night = datetime(2026, 3, 3, 23, 30, tzinfo=BERLIN).timestamp()
    decision = d.decide(requests(1, launch_time=night)[0], np.random.default_rng(0))
    assert decision.deferred and decision.reason == "control"
    assert local_hour(decision.send_at) == 9.0
    daytime = d.decide(requests(1)[0], np.random.default_rng(0))
    assert not daytime.deferred and daytime.send_at == np.ceil(LAUNCH)


def test_campaign_hours_override_the_account_and_launch_alignment_delays_the_control() -> None:
    d = decider(control_pct=100.0, control_delay_seconds=12 * 3600)
    midnight = datetime(2026, 3, 3, 0, 0, tzinfo=BERLIN).timestamp()
    control = d.decide(requests(1, launch_time=midnight)[0], np.random.default_rng(0))
    assert local_hour(control.send_at) == 12.0
    override = requests(1, launch_time=midnight, hours=QuietHours.parse("13:00", "14:00"))[0]
    assert local_hour(d.decide(override, np.random.default_rng(0)).send_at) == 13.0


def test_no_allowed_time_sends_at_the_window_end_nearer_to_allowed_time() -> None:
    d = decider(control_pct=0.0)
    late = datetime(2026, 3, 3, 21, 30, tzinfo=BERLIN).timestamp()  # 30 min after 21:00
    early = datetime(2026, 3, 3, 6, 0, tzinfo=BERLIN).timestamp()  # 2 h before 08:00
    a = d.decide(requests(1, launch_time=late, window_seconds=3600.0)[0], np.random.default_rng(0))
    b = d.decide(requests(1, launch_time=early, window_seconds=3600.0)[0], np.random.default_rng(0))
    assert (a.reason, a.send_at, a.propensity) == ("no_allowed_time", late, 1.0)
    assert (b.reason, b.send_at) == ("no_allowed_time", early + 3600.0)
    assert a.deferred and b.deferred


def test_zones_come_from_the_request_then_the_profile_then_the_account() -> None:
    d = decider(control_pct=0.0, zone="America/New_York")
    asks = [
        SendTimeRequest("a", "c", LAUNCH, 86_400.0, zone="Asia/Tokyo", profile_zone="Europe/Paris"),
        SendTimeRequest("b", "c", LAUNCH, 86_400.0, profile_zone="Europe/Paris"),
        SendTimeRequest("c", "c", LAUNCH, 86_400.0, zone="Atlantis/Capital"),
        SendTimeRequest("d", "c", LAUNCH, 86_400.0),
    ]
    out = d.decide_batch(
        SendTimeBatch.from_requests(asks, d.settings), np.random.default_rng(0)
    ).rows()
    assert [(r.zone, r.zone_source, r.zone_issue) for r in out] == [
        ("Asia/Tokyo", "request", "none"),
        ("Europe/Paris", "profile", "none"),
        ("America/New_York", "account", "invalid"),
        ("America/New_York", "account", "missing"),
    ]
    for r in out:
        local = datetime.fromtimestamp(r.send_at, ZoneInfo(r.zone))
        assert 8 <= local.hour < 21


def test_weekday_and_weekend_cells_are_kept_apart() -> None:
    d = decider(control_pct=0.0, split_weekends=True)
    saturday = datetime(2026, 3, 7, 7, 0, tzinfo=BERLIN).timestamp()
    out = d.decide_batch(
        SendTimeBatch.from_requests(requests(500, launch_time=saturday), d.settings),
        np.random.default_rng(0),
    )
    assert out.weekend.all() and (out.cell == out.slot + 12).all()
    friday = datetime(2026, 3, 6, 7, 0, tzinfo=BERLIN).timestamp()
    spanning = d.decide_batch(
        SendTimeBatch.from_requests(
            requests(2000, launch_time=friday, window_seconds=2 * 86_400.0), d.settings
        ),
        np.random.default_rng(0),
    )
    assert 0 < spanning.weekend.mean() < 1
    assert np.array_equal(spanning.cell, spanning.slot + 12 * spanning.weekend)


def test_decisions_are_reproducible_from_a_seed_and_do_not_touch_their_input() -> None:
    d = decider(control_pct=10.0)
    rng = np.random.default_rng(8)
    sends = rng.integers(0, 30, size=(300, 12))
    responses = rng.binomial(sends, 0.2)
    batch = SendTimeBatch.from_requests(requests(300), d.settings, sends, responses)
    before = batch.sends.copy()
    a = d.decide_batch(batch, np.random.default_rng(11))
    b = d.decide_batch(batch, np.random.default_rng(11))
    assert np.array_equal(a.send_at, b.send_at) and np.array_equal(a.propensity, b.propensity)
    assert np.array_equal(batch.sends, before)


def test_a_prior_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError):
        SendTimeDecider(SendTimeSettings(slots=24), SlotPrior.uniform(12))


@pytest.mark.parametrize(
    ("field", "value"),
    [("slots", 5), ("slots", 0), ("exploration_pct", 120.0), ("control_pct", -1.0),
     ("control_delay_seconds", -5), ("response", "reply"), ("zone", "Mars/Base"),
     ("max_window_seconds", 10**9)],
)  # fmt: skip
def test_invalid_settings_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as error:
        SendTimeSettings(**{field: value})  # type: ignore[arg-type]
    assert error.value.path == field


def test_settings_from_a_document() -> None:
    settings = sendtime_settings_from_dict(
        {"slots": 24, "hours": {"start": "07:30", "end": "22:00"}, "response": "click",
         "split_weekends": True, "history_days": 180, "bucket_days": 3}
    )  # fmt: skip
    assert settings.cells == 48 and settings.hours == QuietHours(450, 1320)
    assert settings.history.bucket_days == 3
    for bad, path in (
        ({"colour": 1}, "send_time"),
        ({"hours": {"start": "25:00", "end": "1"}}, "hours"),
    ):
        with pytest.raises(ConfigError) as error:
            sendtime_settings_from_dict(bad)
        assert error.value.path == path


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"launch_time": float("nan")}, "bad_launch_time"), ({"launch_time": -1.0}, "bad_launch_time"),
     ({"window_seconds": -1.0}, "bad_window"), ({"window_seconds": 8 * 86_400.0}, "bad_window"),
     ({"contact_id": ""}, "bad_contact_id"), ({"campaign_id": "x" * 201}, "bad_campaign_id")],
)  # fmt: skip
def test_bad_requests_are_rejected_with_a_named_reason(
    change: dict[str, object], reason: str
) -> None:
    base = {
        "contact_id": "ct",
        "campaign_id": "camp",
        "launch_time": LAUNCH,
        "window_seconds": 3600.0,
    }
    assert rejection(SendTimeRequest(**(base | change)), SendTimeSettings()) == reason  # type: ignore[arg-type]
    assert rejection(SendTimeRequest(**base), SendTimeSettings()) is None  # type: ignore[arg-type]
