"""Send-time settings from the catalog: the account settings' `send_time` block and a
campaign's own `sending_hours` decode into the `AccountCatalog`, a bad value dead-letters
the part with the field named (and the catalog in force stays), and the send-time service
answers by them, a request's own hours still first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from selector.sendtime import AccountSendTime, QuietHours, SendTimeSettings
from stream.handlers.catalog import Catalogs, apply_catalog_message, build_catalog
from stream.handlers.sendtime_store import MemorySendTimeStore
from stream.ops.metrics import Metrics
from stream.wire.envelope import Incoming
from stream.wire.sendtime_messages import SendTimeAnswer
from tests.stream.handlers.service_fixtures import catalog_table, record
from tests.stream.handlers.test_sendtime import BERLIN, answers, ask, service

NEWS_HOURS = {"start": "10:00", "end": "12:00"}


def apply(table: dict[bytes, Any], kind: str, doc: dict[str, Any]) -> tuple[str, str] | None:
    """Apply one catalog message; the dead letter's (reason, detail) if it is refused."""
    body = orjson.dumps({"schema": f"{kind}.v1", "account_id": "acme", **doc})
    message = Incoming(body, b"acme", f"catalog-{kind}", 0, 0)
    key, value, letter = apply_catalog_message(kind, message, table.get, 65536, "dl", 0.0)
    if letter is not None:
        letter_doc = orjson.loads(letter[0].value)
        return letter[1], letter_doc["detail"]
    table[key] = value
    return None


def campaigns(**hours: Any) -> dict[str, Any]:
    """The fixture's campaigns plus `news` and `promo`, with the given sending hours."""
    items = [{"campaign_id": "k", "default_creative_id": "c0"}]
    for cid in ("news", "promo"):
        item: dict[str, Any] = {"campaign_id": cid, "default_creative_id": "c0"}
        if cid in hours:
            item["sending_hours"] = hours[cid]
        items.append(item)
    return {"campaigns": items}


def test_an_account_without_send_time_settings_has_the_defaults() -> None:
    built = build_catalog("acme", catalog_table()[b"acme"])
    assert built.send_time == AccountSendTime()
    assert built.send_time.settings == SendTimeSettings()
    assert built.send_time.hours_for("k") is None


def test_the_send_time_block_and_campaign_hours_decode_into_the_catalog() -> None:
    table = catalog_table()
    block = {"slots": 24, "hours": {"start": "07:00", "end": "22:00"}, "response": "click",
             "zone": "America/New_York", "control_pct": 0, "split_weekends": True,
             "control_delay_seconds": 43200, "exploration_pct": 2.5}  # fmt: skip
    assert apply(table, "account_settings", {"settings": {}, "send_time": block}) is None
    assert apply(table, "campaigns", campaigns(news=NEWS_HOURS, promo=None)) is None
    built = build_catalog("acme", table[b"acme"])
    s = built.send_time.settings
    assert (s.slots, s.hours, s.response, s.zone) == (
        24, QuietHours(7 * 60, 22 * 60), "click", "America/New_York"
    )  # fmt: skip
    assert (s.control_pct, s.split_weekends, s.control_delay_seconds, s.exploration_pct) == (
        0.0, True, 43200, 2.5
    )  # fmt: skip
    assert built.send_time.hours_for("news") == QuietHours(10 * 60, 12 * 60)
    assert built.send_time.hours_for("promo") is None and built.send_time.hours_for("k") is None
    assert built.error is None and built.account is not None  # selection is unaffected
    # a new settings part without the block puts the defaults back
    assert apply(table, "account_settings", {"settings": {}}) is None
    assert build_catalog("acme", table[b"acme"]).send_time.settings == SendTimeSettings()


BAD_BLOCKS = [
    ({"slots": 5}, "invalid_value", "send_time.slots"),
    ({"slots": 48}, "invalid_value", "send_time.slots"),
    ({"slots": "12"}, "wrong_type", "send_time.slots"),
    ({"zone": "Mars/Olympus"}, "invalid_value", "send_time.zone"),
    ({"hours": {"start": "10:00", "end": "10:00"}}, "invalid_value", "send_time.hours"),
    ({"hours": {"start": "25:00", "end": "10:00"}}, "invalid_value", "send_time.hours.start"),
    ({"hours": {"start": "10:00"}}, "missing_field", "send_time.hours.end"),
    ({"exploration_pct": 101}, "invalid_value", "send_time.exploration_pct"),
    ({"control_pct": -1}, "invalid_value", "send_time.control_pct"),
    ({"control_delay_seconds": 8 * 86_400}, "invalid_value", "send_time.control_delay_seconds"),
    ({"response": "sms"}, "invalid_value", "send_time.response"),
    ({"split_weekends": "yes"}, "wrong_type", "send_time.split_weekends"),
    ({"history_days": 3, "bucket_days": 7}, "invalid_value", "send_time.history_days"),
    ({"quiet_hours": {}}, "invalid_value", "send_time: unknown field(s) quiet_hours"),
    ([], "wrong_type", "send_time"),
]


@pytest.mark.parametrize(("block", "reason", "field"), BAD_BLOCKS, ids=lambda x: str(x))
def test_a_bad_send_time_value_is_dead_lettered_naming_its_field(
    block: Any, reason: str, field: str
) -> None:
    table = catalog_table()
    before = table[b"acme"]
    refused = apply(table, "account_settings", {"settings": {}, "send_time": block})
    assert refused is not None
    assert refused[0] == reason and refused[1].startswith(field), refused
    assert table[b"acme"] is before  # the catalog in force stays


def test_a_bad_campaign_sending_hours_is_dead_lettered_naming_the_campaign() -> None:
    table = catalog_table()
    refused = apply(table, "campaigns", campaigns(news={"start": "09:00", "end": "09:00"}))
    assert refused is not None and refused[0] == "invalid_value"
    assert refused[1].startswith("campaign news.sending_hours:"), refused
    refused = apply(table, "campaigns", campaigns(news={"start": "9am", "end": "17:00"}))
    assert refused is not None and "sending_hours.start" in refused[1], refused


def local_minute(t: float) -> int:
    when = datetime.fromtimestamp(t, BERLIN)
    return when.hour * 60 + when.minute


async def test_answers_follow_the_catalog_in_force() -> None:
    """Account hours 14:00-16:00 and 24 slots; `news` keeps 10:00-12:00 of its own; a
    request's hours beat both. A catalog change reaches the next batch."""
    table = catalog_table()
    block = {"slots": 24, "hours": {"start": "14:00", "end": "16:00"}, "zone": "Europe/Berlin"}
    assert apply(table, "account_settings", {"settings": {}, "send_time": block}) is None
    assert apply(table, "campaigns", campaigns(news=NEWS_HOURS)) is None
    catalogs = Catalogs(table.get)

    def send_time(account: str) -> AccountSendTime:
        found = catalogs.get(account.encode())
        return found.send_time if found is not None else AccountSendTime()

    svc = service(
        MemorySendTimeStore(),
        Metrics(),
        settings_for=lambda a: send_time(a).settings,
        hours_for=lambda a, c: send_time(a).hours_for(c),
    )
    own = {"start": "18:00", "end": "19:00"}
    batch = [
        record(
            ask(i, campaign_id=("news", "promo", "promo")[i % 3],
                sending_hours=own if i % 3 == 2 else None),
            "send-time-requests", i,
        )
        for i in range(90)
    ]  # fmt: skip
    found = answers(await svc.answer(batch))
    assert len(found) == 90
    windows = [(600, 720), (840, 960), (1080, 1140)]
    for i, a in enumerate(found):
        assert isinstance(a, SendTimeAnswer), a
        lo, hi = windows[i % 3]
        minute = local_minute(a.send_at)
        assert lo <= minute < hi, (i, minute)
        assert a.slot == minute // 60  # 24 one-hour slots
        assert a.zone == "Europe/Berlin" and a.zone_source == "account"
    assert apply(table, "account_settings", {"settings": {}}) is None  # back to defaults
    again = answers(await svc.answer([record(ask(i), "send-time-requests", i) for i in range(30)]))
    for a in again:
        assert isinstance(a, SendTimeAnswer)
        minute = int(a.send_at) % 86_400 // 60  # the default zone: UTC
        assert 600 <= minute < 720  # news keeps its own hours
        assert a.zone == "UTC" and a.slot == minute // 120  # 12 two-hour slots
