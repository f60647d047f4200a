"""Shared factory fixtures: small accounts and stats built the same way in every test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from selector import Account, AccountStats, Counts, account_from_dict


def make_account_dict(
    creatives: int = 4,
    *,
    offers: tuple[tuple[str, float, str], ...] = (("o1", 30.0, "cpa"), ("o2", 25.0, "cto")),
    settings: Mapping[str, Any] | None = None,
    automated_percent: float = 80.0,
    campaigns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "account_id": "acct-1",
        "settings": dict(settings or {}),
        "offers": [{"offer_id": o, "payout": p, "payout_type": t} for o, p, t in offers],
        "creatives": [
            {"creative_id": f"cr{i}", "offer_id": offers[i % len(offers)][0]}
            for i in range(creatives)
        ],
        "campaigns": campaigns
        or [
            {
                "campaign_id": "camp-1",
                "default_creative_id": "cr0",
                "automated_percent": automated_percent,
            }
        ],
    }


@pytest.fixture
def account_factory() -> Callable[..., Account]:
    def build(**kwargs: Any) -> Account:
        return account_from_dict(make_account_dict(**kwargs))

    return build


def stats_from(rows: Mapping[str, tuple[int, int, int, float]]) -> AccountStats:
    """Stats from {creative: (sends, clicks, conversions, revenue)}."""
    counts = {cid: Counts(s, c, v, round(r * 1_000_000)) for cid, (s, c, v, r) in rows.items()}
    return AccountStats(MappingProxyType(counts))


@pytest.fixture
def graduated_stats() -> Callable[[int], AccountStats]:
    """Every creative past the learning threshold, with distinct click rates."""

    def build(creatives: int) -> AccountStats:
        return stats_from(
            {
                f"cr{i}": (5000, 400 + 40 * i, 40 + 4 * i, (40 + 4 * i) * 30.0)
                for i in range(creatives)
            }
        )

    return build
