"""The typed catalog: one immutable `AccountCatalog` per account and change, shared by
every reader; an inconsistent catalog still names its creatives."""

from __future__ import annotations

from typing import Any

import pytest

from stream.handlers.catalog import AccountCatalog, Catalogs, build_catalog
from tests.stream.handlers.service_fixtures import ACCOUNT, catalog_table


def test_a_catalog_is_decoded_once_per_change() -> None:
    table = catalog_table()
    reads: list[bytes] = []

    def get(key: bytes) -> Any:
        reads.append(key)
        return table.get(key)

    catalogs = Catalogs(get)
    first = catalogs.get(b"acme")
    assert isinstance(first, AccountCatalog) and first.selector is not None
    assert catalogs.get(b"acme") is first  # same version: the same value, not rebuilt
    table[b"acme"] = {**table[b"acme"], "version": table[b"acme"]["version"] + 1}
    second = catalogs.get(b"acme")
    assert second is not first and second is not None and second.version == first.version + 1
    assert catalogs.get(b"nobody") is None and len(reads) == 4


def test_the_catalog_carries_what_each_reader_needs() -> None:
    value = catalog_table()[b"acme"]
    built = build_catalog("acme", value)
    assert built.account is not None and built.account.account_id == "acme"
    assert built.view is built.selector.view  # type: ignore[union-attr]
    assert built.creative_ids == {c["creative_id"] for c in ACCOUNT["creatives"]}
    assert built.error is None
    with pytest.raises(TypeError):
        built.settings["goal"] = "clicks"  # type: ignore[index]


def test_an_inconsistent_catalog_has_a_reason_and_keeps_its_creatives() -> None:
    value = dict(catalog_table()[b"acme"])
    value["offers"] = []  # every creative names an offer not seen yet
    built = build_catalog("acme", value)
    assert built.account is None and built.selector is None and built.view is None
    assert built.error and built.creative_ids == {c["creative_id"] for c in ACCOUNT["creatives"]}
