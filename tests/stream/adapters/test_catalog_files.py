"""Catalog files for `publish-catalog`, without Kafka: loading, validation errors that name
the account and field, the four messages per account, and the --dry-run output.
(The pure checks of `send-events` lines are at the end.)"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.adapters.catalog_files import (
    CatalogFileError,
    load_documents,
    publish_catalog_file,
    snapshot_messages,
    validate_documents,
)
from stream.adapters.event_files import limits_of, parse_line
from stream.handlers.catalog import apply_catalog_message, build_catalog
from stream.settings import Settings
from stream.wire import codec
from stream.wire.envelope import Incoming
from stream.wire.messages import TOPICS, encode, key_of, to_dict
from tests.conftest import make_account_dict

EXAMPLE = Path(__file__).resolve().parents[3] / "catalogs" / "example.yaml"
SETTINGS = Settings(topic_prefix="t.")
# Nothing listens here: a test that reaches Kafka by mistake fails instead of passing.
UNREACHABLE = dataclasses.replace(SETTINGS, kafka_bootstrap="127.0.0.1:9")


def account(account_id: str = "acct-1", **overrides: Any) -> dict[str, Any]:
    doc = make_account_dict(creatives=3, settings={"methods": {"thompson_single_step": 100}})
    return {**doc, "account_id": account_id, **overrides}


def write(tmp_path: Path, doc: Any, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
    return path


def errors_of(documents: list[Any], settings: Settings = SETTINGS) -> list[str]:
    with pytest.raises(CatalogFileError) as caught:
        validate_documents(documents, settings)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid catalog, nothing published:"
    return lines[1:]


# --- loading ------------------------------------------------------------------------


def test_one_account_a_list_under_accounts_and_a_bare_json_list(tmp_path: Path) -> None:
    one = load_documents(write(tmp_path, account("a")))
    several = load_documents(write(tmp_path, {"accounts": [account("a"), account("b")]}))
    bare = load_documents(write(tmp_path, [account("a")], "catalog.json"))
    assert [d["account_id"] for d in one] == ["a"]
    assert [d["account_id"] for d in several] == ["a", "b"]
    assert bare == one


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("accounts: [", "c.yaml", "not valid YAML"),
        ('{"accounts": [}', "c.json", "not valid JSON"),
        ("accounts: []", "c.yaml", "no accounts"),
        ("", "c.yaml", "expected an account"),
        ("just text", "c.yaml", "expected an account"),
        ("accounts: []\nversion: 2", "c.yaml", "unknown top-level field(s) version"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, text: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CatalogFileError) as caught:
        load_documents(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="cannot read the catalog"):
        load_documents(tmp_path / "nope.yaml")


def test_the_example_catalog_is_valid_and_has_two_accounts() -> None:
    catalogs = validate_documents(load_documents(EXAMPLE), SETTINGS)
    assert [c.account_id for c in catalogs] == ["acme-lending", "northwind-retail"]


# --- validation ---------------------------------------------------------------------


def test_domain_errors_name_the_account_and_the_field() -> None:
    bad_offer = account("acme", creatives=[{"creative_id": "x", "offer_id": "nope"}])
    bad_shares = account("globex", settings={"methods": {"random": 60, "manual": 30}})
    errors = errors_of([account("fine"), bad_offer, bad_shares])
    assert errors == [
        "account acme: creative x.offer_id: offer 'nope' is not in this account",
        "account globex: settings.methods: traffic_pct must sum to 100; got 90 "
        "(random=60, manual=30)",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"offers": []}, "account #1: account.account_id: is required"),
        ({**account("a"), "owner": "x"}, "account a: account: unknown field(s) owner"),
        (account("a", offers=[{"offer_id": "o1"}]), "account a: offer: missing"),
        (account("a", offers=[{"offer_id": "o1", "payout": -1}]), "offer o1.payout: must be >= 0"),
        (account("a", offers=7), "account a: offers: must be a list"),
        ("not an object", "account #1: account: must be an object; got str"),
    ],
)
def test_each_kind_of_domain_error_is_reported(document: Any, expected: str) -> None:
    [error] = errors_of([document])
    assert expected in error


def test_rules_only_the_wire_has_are_checked_on_the_bytes_the_worker_would_read() -> None:
    long_id = "o" * 201
    doc = account("acme", offers=[{"offer_id": long_id, "payout": 1}], creatives=[], campaigns=[])
    [error] = errors_of([doc])
    assert error == (
        "account acme: catalog-offers: invalid_value: offers[0].offer_id: "
        "must be 1 to 200 characters"
    )
    tiny = dataclasses.replace(SETTINGS, max_message_bytes=200)
    errors = errors_of([account("acme")], tiny)
    assert errors and all("oversized" in e and e.startswith("account acme: ") for e in errors)


def test_an_account_listed_twice_is_an_error() -> None:
    [error] = errors_of([account("a"), account("b"), account("a")])
    assert error == "account a: account_id: appears more than once in the file"


def test_many_errors_are_cut_after_twenty() -> None:
    errors = errors_of([account(f"a{i}", offers=[{"offer_id": "o"}]) for i in range(25)])
    assert len(errors) == 21 and errors[-1] == "... and 5 more"


# --- the messages -------------------------------------------------------------------


def test_four_snapshots_per_account_in_publishing_order_keyed_by_account() -> None:
    [catalog] = validate_documents([account("acme")], SETTINGS)
    messages = catalog.messages
    assert messages == snapshot_messages(catalog.account)
    assert [m.kind for m in messages] == ["offers", "creatives", "campaigns", "account_settings"]
    assert {key_of(m) for m in messages} == {b"acme"}
    offers, creatives, campaigns, settings = (to_dict(m) for m in messages)
    assert offers["offers"][0] == {"offer_id": "o1", "payout": 30.0, "payout_type": "cpa"}
    assert [c["creative_id"] for c in creatives["creatives"]] == ["cr0", "cr1", "cr2"]
    assert campaigns["campaigns"][0]["default_creative_id"] == "cr0"
    assert settings["settings"]["methods"] == [
        {"method": "thompson_single_step", "traffic_pct": 100.0}
    ]


def test_the_snapshots_decode_back_to_the_same_account() -> None:
    for catalog in validate_documents(load_documents(EXAMPLE), SETTINGS):
        for message in catalog.messages:
            decoded = codec.decode(message.kind, encode(message), key=key_of(message))
            assert decoded == message


# --- the command, without Kafka -----------------------------------------------------


def run_command(path: Path, settings: Settings, *, dry_run: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = asyncio.run(publish_catalog_file(path, settings, dry_run=dry_run, out=out, err=err))
    return code, out.getvalue(), err.getvalue()


def test_dry_run_shows_each_message_and_publishes_nothing() -> None:
    code, out, err = run_command(EXAMPLE, UNREACHABLE, dry_run=True)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("account acme-lending: 3 offers, 7 creatives, 2 campaigns; goal")
    topics = [line.split()[0] for line in lines[1:5]]
    assert topics == [f"t.{TOPICS[k]}" for k in ("offers", "creatives", "campaigns")] + [
        "t.catalog-account-settings"
    ]
    assert all(" key acme-lending " in line and line.endswith(" bytes") for line in lines[1:5])
    assert lines[-1] == "dry run: 2 accounts valid, 8 messages not published"


def test_an_invalid_file_exits_2_before_any_connection(tmp_path: Path) -> None:
    path = write(tmp_path, {"accounts": [account("a"), account("b", offers=[{"x": 1}])]})
    code, out, err = run_command(path, UNREACHABLE, dry_run=False)
    assert (code, out) == (2, "")
    assert err.startswith("error: invalid catalog, nothing published:\naccount b: offer: ")


# --- send-events lines --------------------------------------------------------------

SEND = {
    "schema": "send.v1",
    "event_id": "s1",
    "account_id": "acme",
    "campaign_id": "c",
    "contact_id": "ct",
    "creative_id": "cr",
    "time": 1_767_225_600.0,
}


def line(number: int, doc: Any) -> Any:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_line(number, raw + b"\n", SETTINGS, limits_of(SETTINGS), now=1_767_225_600.0)


def test_an_event_line_goes_to_its_topic_as_written_keyed_by_account() -> None:
    click = {**SEND, "schema": "click.v1", "extra": "kept"}
    del click["campaign_id"]
    sent, clicked = line(1, SEND), line(2, click)
    assert (sent.topic, sent.key, sent.error) == ("t.sends", b"acme", None)
    assert (clicked.topic, clicked.number) == ("t.clicks", 2)
    assert json.loads(clicked.value)["extra"] == "kept"
    assert line(3, b"   ") is None


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (b"{oops", "schema: must be one of send.v1, click.v1, conversion.v1"),
        ([1, 2], "schema: must be one of send.v1, click.v1, conversion.v1"),
        ({**SEND, "schema": "selection_request.v1"}, "schema: must be one of send.v1"),
        ({**SEND, "time": "now"}, "wrong_type: time: must be a number, got string"),
        ({**SEND, "time": 1_767_225_600.0 + 2 * 86_400}, "implausible_value: time: "),
        ({k: v for k, v in SEND.items() if k != "event_id"}, "missing_field: event_id"),
    ],
)
def test_invalid_lines_say_why(doc: Any, error: str) -> None:
    parsed = line(7, doc)
    assert parsed.number == 7 and parsed.topic is None
    assert parsed.error.startswith(error)


# --- send-time settings -------------------------------------------------------------


def test_the_example_catalog_carries_send_time_settings_through_to_the_account() -> None:
    catalogs = validate_documents(load_documents(EXAMPLE), SETTINGS)
    [north] = [c for c in catalogs if c.account_id == "northwind-retail"]
    table: dict[bytes, Any] = {}
    for message in north.messages:
        raw = Incoming(encode(message), key_of(message), TOPICS[message.kind], 0, 0)
        key, value, letter = apply_catalog_message(message.kind, raw, table.get, 65536, "dl", 0)
        assert letter is None and value is not None
        table[key] = value
    built = build_catalog("northwind-retail", table[b"northwind-retail"])
    s = built.send_time.settings
    assert (s.slots, s.response, s.zone, s.control_delay_seconds) == (
        24, "click", "Europe/London", 43200
    )  # fmt: skip
    assert (s.hours.start_minute, s.hours.end_minute) == (9 * 60, 20 * 60)
    hours = built.send_time.hours_for("loyalty-monthly")
    assert hours is not None and (hours.start_minute, hours.end_minute) == (660, 840)
    assert built.send_time.hours_for("spring-promo") is None and built.selector is not None


def test_bad_send_time_settings_in_a_file_are_reported_naming_the_field() -> None:
    doc = account("a", send_time={"slots": 7, "zone": "Europe/Berlin"})
    doc["campaigns"] = [{**doc["campaigns"][0], "sending_hours": {"start": "10:00", "end": 600}}]
    errors = errors_of([doc, account("b", send_time={"zone": "Nowhere/City"})])
    assert errors == [
        "account a: catalog-campaigns: wrong_type: campaigns[0].sending_hours.end: must be a "
        "string, got integer",
        "account a: catalog-account-settings: invalid_value: send_time.slots: must divide 24 "
        "(1, 2, 3, 4, 6, 8, 12, 24); got 7",
        "account b: catalog-account-settings: invalid_value: send_time.zone: unknown time zone "
        "'Nowhere/City'",
    ]
