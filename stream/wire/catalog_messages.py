"""The catalog's settings and campaigns snapshots, with the send-time parts they carry
beside the `selector.domain` objects: the account's `send_time` block (validated and
kept as given, `selector.sendtime.account_send_time` reads it) and each campaign's own
`sending_hours`, which the domain's `Campaign` does not know and the wire writes into
the campaign's item."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from selector.domain import Campaign, SelectionSettings

NO_HOURS: Mapping[str, Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccountSettingsSnapshot:
    """The account's selection settings and its send-time settings (None: defaults)."""

    kind: ClassVar[Literal["account_settings"]] = "account_settings"
    account_id: str
    settings: SelectionSettings
    send_time: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CampaignsSnapshot:
    """The account's campaigns; `sending_hours` maps a campaign id to its own sending
    hours (`{"start": "HH:MM", "end": "HH:MM"}`), for the campaigns that have them."""

    kind: ClassVar[Literal["campaigns"]] = "campaigns"
    account_id: str
    campaigns: tuple[Campaign, ...]
    sending_hours: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: NO_HOURS)


def catalog_body(
    message: AccountSettingsSnapshot | CampaignsSnapshot, body: dict[str, Any]
) -> dict[str, Any]:
    """The wire body: no `send_time` when there is none (readers from before the field
    accept the message), a campaign's sending hours inside its item."""
    if isinstance(message, AccountSettingsSnapshot):
        if message.send_time is None:
            del body["send_time"]
        return body
    hours = body.pop("sending_hours")
    body["campaigns"] = [
        {**asdict(c), "sending_hours": dict(hours[c.campaign_id])} if c.campaign_id in hours else c
        for c in message.campaigns
    ]
    return body
