"""The report command's pure parts: what it reads per kind, and its options from the
catalog."""

from __future__ import annotations

from selector import account_from_dict
from selector.live_join import ATTRIBUTION_WINDOW
from stream.handlers.catalog import AccountCatalog
from stream.report.topics import ReadRequest, accounts_option, catalog_options, stop_time


def _catalog() -> AccountCatalog:
    account = account_from_dict(
        {
            "account_id": "acme",
            "settings": {"goal": "clicks"},
            "offers": [
                {"offer_id": "loan", "payout": 30},
                {"offer_id": "survey", "payout": 4, "payout_type": "cto"},
            ],
            "creatives": [
                {"creative_id": "a", "offer_id": "loan"},
                {"creative_id": "c", "offer_id": "survey"},
            ],
            "campaigns": [
                {"campaign_id": "spring", "default_creative_id": "a", "automated_percent": 70}
            ],
        }
    )
    return AccountCatalog("acme", 1, frozenset({"a", "c"}), None, {}, account, None, None)


def _broken() -> AccountCatalog:
    return AccountCatalog("bad", 1, frozenset(), None, {}, None, None, "unknown offer")


def test_options_come_from_the_catalog() -> None:
    request = ReadRequest(frozenset({"acme"}), 100.0, 200.0)
    options, ope = catalog_options({"acme": _catalog(), "bad": _broken()}, request)
    assert dict(options.click_payouts) == {"acme": {"c": 4.0}}
    assert dict(options.automated_percent) == {"acme": {"spring": 70.0}}
    assert (options.since, options.until, options.accounts) == (100.0, 200.0, {"acme"})
    assert dict(ope.goals) == {"acme": "clicks"}


def test_outcomes_are_read_a_window_past_until() -> None:
    request = ReadRequest(until=1000.0, lateness=10.0)
    assert stop_time(request, "send") == stop_time(request, "selection_response") == 1010.0
    assert stop_time(request, "click") == 1010.0 + ATTRIBUTION_WINDOW
    assert stop_time(ReadRequest(), "conversion") is None


def test_accounts_repeat_or_split_on_commas() -> None:
    assert accounts_option(["a", "b, c", ""]) == {"a", "b", "c"}
    assert accounts_option(None) is None
