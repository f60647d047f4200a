"""Per-contact predictions (`creative-select predict`, `SelectionClient.predict`) without
Kafka: the rows are `selector.model.predict`'s, the median click probability is the
posterior mean logit's sigmoid (the logit is Gaussian under the Laplace posterior), the
interval brackets it, the formatting, and the errors for an account without a catalog or
a model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from selector.model.artifact import ContextualModel
from selector.model.predict import catalog_for, describe, predictions
from selector.model.profile import EMPTY, add_event
from selector.model.record import encode, records
from selector.model.scoring import Prediction
from stream.handlers.catalog import AccountCatalog, Catalogs
from stream.predictions import PredictionError, contact_predictions
from tests.selector.model.conftest import account_doc
from tests.stream.handlers.service_fixtures import catalog_table
from tests.stream.model_fixtures import MODEL_ONLY, model_account, trained_model

ACCOUNT = "acme"
AT = 2e6
LINE = re.compile(
    r"^(deal|premium|basic): \d+\.\d% click \[\d+\.\d, \d+\.\d\], "
    r"\$\d+\.\d\d expected revenue \[\d+\.\d\d, \d+\.\d\d\]$"
)


@pytest.fixture(scope="module")
def model() -> ContextualModel:
    return trained_model(model_account(ACCOUNT, **MODEL_ONLY))


@pytest.fixture(scope="module")
def catalog() -> AccountCatalog:
    doc = {**account_doc(**MODEL_ONLY), "account_id": ACCOUNT}
    found = Catalogs(catalog_table(ACCOUNT, doc).get).get(ACCOUNT.encode())
    assert found is not None and found.account is not None
    return found


def test_the_issues_example_line() -> None:
    p = Prediction("loan-a", 0.121, 0.109, 0.134, 0.45, 0.39, 0.52, 0.8)
    assert describe(p) == "loan-a: 12.1% click [10.9, 13.4], $0.45 expected revenue [0.39, 0.52]"


def test_the_rows_are_the_cores_ranked_by_the_goal(
    model: ContextualModel, catalog: AccountCatalog
) -> None:
    blob = encode(add_event(EMPTY, "click", "deal", AT - 3600, 0))
    found = contact_predictions(catalog, model, blob, ACCOUNT, "u1", AT, seed=5, samples=3000)
    assert catalog.account is not None
    (core,) = predictions(
        catalog.account, model, records([blob])[0], np.array([AT]),
        np.random.default_rng(5), 3000, 0.8,
    )  # fmt: skip
    assert sorted(found.rows, key=lambda p: p.creative_id) == sorted(
        core, key=lambda p: p.creative_id
    )
    assert [p.revenue for p in found.rows] == sorted((p.revenue for p in core), reverse=True)
    assert found.rows[0].creative_id == "deal"  # it clicks 2.5-6 times as often
    assert found.profile == "stored" and found.model_version == model.version


def test_the_median_is_the_mean_logits_sigmoid_and_the_interval_brackets_it(
    model: ContextualModel, catalog: AccountCatalog
) -> None:
    assert catalog.account is not None
    found = contact_predictions(catalog, model, None, ACCOUNT, "new", AT, seed=1, samples=8000)
    tables = catalog_for(catalog.account, model)
    x, pair = tables.inputs(records([None])[0], np.array([AT]))
    logits = tables.mean_logits(model.click, x, pair)[0]
    expected = dict(zip((c.creative_id for c in catalog.account.creatives),
                        1.0 / (1.0 + np.exp(-logits)), strict=True))  # fmt: skip
    for p in found.rows:
        assert p.click == pytest.approx(expected[p.creative_id], rel=0.02)
        assert p.click_low < p.click < p.click_high
        assert p.revenue_low < p.revenue < p.revenue_high
        assert p.revenue <= p.click * 20.0  # at most the payout per click
    wider = contact_predictions(
        catalog, model, None, ACCOUNT, "new", AT, seed=1, samples=8000, level=0.95
    )
    for narrow, wide in zip(found.rows, wider.rows, strict=True):
        assert wide.click_low < narrow.click_low and narrow.click_high < wide.click_high


def test_the_text_and_json_say_whether_the_contact_had_a_profile(
    model: ContextualModel, catalog: AccountCatalog
) -> None:
    empty = contact_predictions(catalog, model, None, ACCOUNT, "new", AT, seed=2)
    lines = empty.text().splitlines()
    assert lines[0].startswith(f"{ACCOUNT} / new: model v{model.version} (trained ")
    assert "goal revenue, 80% intervals" in lines[0]
    assert lines[1] == "no stored profile: predicted as a contact without history"
    assert len(lines) == 5 and all(LINE.match(line) for line in lines[2:])
    plain = json.loads(json.dumps(empty.to_dict()))
    assert plain["profile"] == "none" and len(plain["predictions"]) == 3
    assert set(plain["predictions"][0]) == {
        "creative_id", "click", "click_low", "click_high", "revenue", "revenue_low", "revenue_high"
    }  # fmt: skip
    sent = add_event(
        add_event(EMPTY, "send", "deal", AT - 86400, 0), "click", "deal", AT - 43200, 0
    )
    stored = contact_predictions(catalog, model, encode(sent), ACCOUNT, "u2", AT, seed=2)
    assert stored.text().splitlines()[1] == (
        "profile: 1 send, 1 click, 0 conversions ($0.00), last click 0.5 days ago"
    )
    broken = contact_predictions(catalog, model, b"\x09junk", ACCOUNT, "u3", AT, seed=2)
    assert broken.profile == "unreadable"
    assert "stored profile unreadable" in broken.text()


def test_no_catalog_or_no_model_is_an_error_that_says_what_to_do(
    model: ContextualModel, catalog: AccountCatalog
) -> None:
    with pytest.raises(PredictionError, match="no catalog") as missing:
        contact_predictions(None, model, None, "nobody", "u1", AT)
    assert missing.value.reason == "no_catalog"
    with pytest.raises(PredictionError, match="creative-select train") as untrained:
        contact_predictions(catalog, None, None, ACCOUNT, "u1", AT)
    assert untrained.value.reason == "no_model"


def test_the_profile_line_names_custom_values_and_an_expired_history(
    model: ContextualModel,
) -> None:
    fields = [{"name": "plan", "type": "categorical", "values": ["free", "pro"]}]
    settings = {**MODEL_ONLY, "custom_fields": fields}
    doc = {**account_doc(**settings), "account_id": ACCOUNT}
    catalog = Catalogs(catalog_table(ACCOUNT, doc).get).get(ACCOUNT.encode())
    profile = add_event(EMPTY, "send", "deal", AT - 10, 0).with_custom((1.0,))
    found = contact_predictions(catalog, model, encode(profile), ACCOUNT, "u1", AT, seed=3)
    assert found.text().splitlines()[1] == (
        "profile: 1 send, 0 clicks, 0 conversions ($0.00); plan=pro"
    )
    later = AT + model.spec.retention_seconds + 1
    old = contact_predictions(catalog, model, encode(profile), ACCOUNT, "u1", later, seed=3)
    assert "older than the retention" in old.text().splitlines()[1]
