"""Every validation rule of the domain objects, with the message a user would act on."""

from __future__ import annotations

import pytest

from selector import (
    Account,
    BetaPrior,
    Campaign,
    ConfigError,
    Creative,
    MethodShare,
    Offer,
    SelectionSettings,
    account_from_dict,
    settings_from_dict,
)
from tests.conftest import make_account_dict


def test_defaults_follow_the_product() -> None:
    s = SelectionSettings()
    assert s.learning_threshold == 3000
    assert s.learning_pct == 10.0
    assert s.payout_floor == 20.0
    assert Campaign("c", "cr0").automated_percent == 80.0


@pytest.mark.parametrize(
    ("build", "path", "fragment"),
    [
        (lambda: Offer("o", -1.0), "offer o.payout", ">= 0"),
        (lambda: Offer("o", float("nan")), "offer o.payout", "finite"),
        (lambda: Offer("o", 1.0, "cpc"), "offer o.payout_type", "cpa, cto"),  # type: ignore[arg-type]
        (lambda: Offer("", 1.0), "offer.offer_id", "non-empty"),
        (lambda: Creative("c", "o", type="smart"), "creative c.type", "automated"),  # type: ignore[arg-type]
        (lambda: Creative("c", "o", status="gone"), "creative c.status", "active"),  # type: ignore[arg-type]
        (lambda: Campaign("k", "c", automated_percent=120), "automated_percent", "0 and 100"),
        (lambda: Campaign("k", "c", mode="manual"), "manual_creative_ids", "at least one"),
        (
            lambda: Campaign("k", "c", manual_creative_ids=("a", "a")),
            "manual_creative_ids",
            "more than once",
        ),
        (lambda: Campaign("k", "c", rotation="zigzag"), "rotation", "round_robin"),  # type: ignore[arg-type]
        (lambda: MethodShare("lightgbm", 100), "method", "thompson_single_step"),  # type: ignore[arg-type]
        (lambda: MethodShare("random", 120), "traffic_pct", "between 0 and 100"),
        (lambda: BetaPrior(0.0, 1.0), "prior.alpha", "> 0"),
        (lambda: SelectionSettings(goal="opens"), "settings.goal", "clicks, revenue"),  # type: ignore[arg-type]
        (lambda: SelectionSettings(cooldown_seconds=-1), "cooldown_seconds", ">= 0"),
        (lambda: SelectionSettings(learning_threshold=-5), "learning_threshold", ">= 0"),
        (lambda: SelectionSettings(learning_pct=150), "learning_pct", "0-100"),
        (lambda: SelectionSettings(exploration_floor_pct=-1), "exploration_floor_pct", "0-100"),
        (lambda: SelectionSettings(payout_floor=-2), "payout_floor", ">= 0"),
        (lambda: SelectionSettings(half_life_seconds=0), "half_life_seconds", "> 0"),
        (lambda: SelectionSettings(methods=()), "settings.methods", "at least one"),
    ],
)
def test_invalid_values_name_the_field(build, path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        build()
    assert path in str(info.value)
    assert fragment in str(info.value)


def test_traffic_pct_must_sum_to_100_and_the_message_lists_the_shares() -> None:
    with pytest.raises(ConfigError) as info:
        SelectionSettings(
            methods=(MethodShare("thompson_single_step", 80), MethodShare("random", 10))
        )
    assert "sum to 100; got 90" in str(info.value)
    assert "thompson_single_step=80, random=10" in str(info.value)


def test_a_method_listed_twice_is_rejected() -> None:
    with pytest.raises(ConfigError, match="twice"):
        SelectionSettings(methods=(MethodShare("random", 50), MethodShare("random", 50)))


def test_account_cross_references_are_checked() -> None:
    offers = (Offer("o1", 10.0),)
    with pytest.raises(ConfigError, match="offer 'nope' is not in this account"):
        Account("a", SelectionSettings(), offers, (Creative("c1", "nope"),))
    with pytest.raises(
        ConfigError, match="default_creative_id: creative 'zz' is not in this account"
    ):
        Account("a", SelectionSettings(), offers, (Creative("c1", "o1"),), (Campaign("k", "zz"),))
    with pytest.raises(ConfigError, match="manual_creative_ids: creative 'zz'"):
        Account(
            "a",
            SelectionSettings(),
            offers,
            (Creative("c1", "o1"),),
            (Campaign("k", "c1", manual_creative_ids=("zz",)),),
        )
    with pytest.raises(ConfigError, match="id 'c1' appears more than once"):
        Account("a", SelectionSettings(), offers, (Creative("c1", "o1"), Creative("c1", "o1")))


def test_from_dict_builds_the_same_account_and_accepts_methods_as_a_mapping() -> None:
    doc = make_account_dict(
        settings={
            "goal": "clicks",
            "methods": {"thompson_two_step": 70, "random": 30},
            "prior": {"alpha": 2, "beta": 3},
        }
    )
    account = account_from_dict(doc)
    assert account.settings.goal == "clicks"
    assert [m.method for m in account.settings.methods] == ["thompson_two_step", "random"]
    assert account.settings.prior == BetaPrior(2, 3)
    assert account.campaign("camp-1") is not None
    assert account.campaign("other") is None


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(ConfigError, match="unknown field\\(s\\) colour"):
        settings_from_dict({"colour": "blue"})
    doc = make_account_dict()
    del doc["offers"][0]["payout"]
    with pytest.raises(ConfigError, match=r"offer.*payout"):
        account_from_dict(doc)
    with pytest.raises(ConfigError, match="must be an object"):
        account_from_dict({"account_id": "a", "settings": [1, 2]})


def test_values_are_immutable() -> None:
    offer = Offer("o", 1.0)
    with pytest.raises(AttributeError):
        offer.payout = 2.0  # type: ignore[misc]


def test_settings_declare_custom_fields_checked_where_they_are_loaded() -> None:
    from selector.custom_fields import CategoricalField, NumericField
    from selector.domain import settings_from_dict

    declared = [
        {"name": "age", "type": "numeric", "min": 18, "max": 99},
        {"name": "plan", "type": "categorical", "values": ["free", "pro"]},
    ]
    settings = settings_from_dict({"custom_fields": declared})
    assert settings.custom_fields == (
        NumericField("age", 18, 99),
        CategoricalField("plan", ("free", "pro")),
    )
    assert settings_from_dict({}).custom_fields == ()
    for bad, path in [
        ("age", "settings.custom_fields"),
        ([{"name": "age", "type": "numeric", "min": 5, "max": 1}], "custom_fields.age"),
        ([declared[0], declared[0]], "custom_fields"),
        ([{**declared[0], "name": f"f{i}"} for i in range(9)], "custom_fields"),
    ]:
        with pytest.raises(ConfigError) as caught:
            settings_from_dict({"custom_fields": bad})
        assert caught.value.path == path
