"""The catalog as the service sees it: four parts per account (settings, offers,
creatives, campaigns), each the latest full snapshot from its compacted topic, decoded
into one immutable `AccountCatalog` (the domain `Account`, its `Selector` and compiled
view, the creative ids, the half-life) per change, which every reader shares.

Parts arrive independently, so an account can be momentarily inconsistent (a creative
naming an offer not yet seen); such an account answers with `invalid_catalog` until the
missing part arrives, and nothing crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from selector import Account, ConfigError, Selector, account_from_dict
from selector.sendtime import AccountSendTime, account_send_time
from selector.view import AccountView
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.messages import to_dict
from stream.wire.reasons import Rejection

PARTS = ("account_settings", "offers", "creatives", "campaigns")
_FIELD = {
    "account_settings": "settings",
    "offers": "offers",
    "creatives": "creatives",
    "campaigns": "campaigns",
}


def merge_part(
    current: Mapping[str, Any] | None, kind: str, body: Any, send_time: Any = None
) -> dict[str, Any]:
    """A new catalog value with one part replaced and the version bumped; the settings
    part brings the account's `send_time` block (None: the defaults) with it."""
    value = dict(current or {"version": 0})
    value[_FIELD[kind]] = body
    if kind == "account_settings":
        value["send_time"] = send_time
    value["version"] = int(value.get("version", 0)) + 1
    return value


def account_document(account_id: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The domain's account document (campaigns without their own sending hours)."""
    campaigns = [
        {k: v for k, v in c.items() if k != "sending_hours"} if isinstance(c, Mapping) else c
        for c in value.get("campaigns", [])
    ]
    return {
        "account_id": account_id,
        "settings": value.get("settings", {}),
        "offers": value.get("offers", []),
        "creatives": value.get("creatives", []),
        "campaigns": campaigns,
    }


def send_time_of(value: Mapping[str, Any]) -> AccountSendTime:
    """The account's send-time settings and campaign hours; the defaults for a value the
    codec would not have let through (an older table value, say)."""
    hours = {
        str(c.get("campaign_id")): c["sending_hours"]
        for c in value.get("campaigns", [])
        if isinstance(c, Mapping) and c.get("sending_hours") is not None
    }
    try:
        return account_send_time(value.get("send_time"), hours)
    except ConfigError:
        return AccountSendTime()


@dataclass(frozen=True, slots=True)
class AccountCatalog:
    """One account's catalog, decoded once per change and shared by every reader.

    `send_time` holds the account's send-time settings and its campaigns' own sending
    hours (the defaults where the catalog gives none).

    `account`, `selector` and `view` are None while the parts are inconsistent (a
    creative naming an offer not yet seen), with the reason in `error`; the creative ids
    and the half-life are read from the parts as they are, so events keep being checked
    against the creatives the account has.
    """

    account_id: str
    version: int
    creative_ids: frozenset[str]
    half_life_seconds: float | None
    settings: Mapping[str, Any]
    account: Account | None
    selector: Selector | None
    error: str | None
    send_time: AccountSendTime = field(default_factory=AccountSendTime)

    @property
    def view(self) -> AccountView | None:
        return self.selector.view if self.selector is not None else None


def build_catalog(account_id: str, value: Mapping[str, Any]) -> AccountCatalog:
    """The typed catalog of a catalog-table value (`merge_part`'s dict)."""
    settings = value.get("settings") or {}
    half_life = settings.get("half_life_seconds") if isinstance(settings, Mapping) else None
    creative_ids = frozenset(c.get("creative_id") for c in value.get("creatives", []))
    account: Account | None = None
    selector: Selector | None = None
    error: str | None = None
    try:
        account = account_from_dict(account_document(account_id, value))
        selector = Selector(account)
    except ConfigError as exc:
        error = str(exc)
    return AccountCatalog(
        account_id,
        int(value.get("version", 0)),
        creative_ids,
        float(half_life) if half_life else None,
        MappingProxyType(dict(settings)) if isinstance(settings, Mapping) else MappingProxyType({}),
        account,
        selector,
        error,
        send_time_of(value),
    )


class Catalogs:
    """Account key -> `AccountCatalog`, rebuilt only when the table's version changes.

    One instance per process is shared by selection, ingestion and attribution (and the
    daily job builds its own from the catalog changelog), so each change is decoded once.
    """

    def __init__(self, table: Callable[[bytes], Mapping[str, Any] | None]) -> None:
        self._table = table
        self._built: dict[bytes, AccountCatalog] = {}

    def get(self, key: bytes) -> AccountCatalog | None:
        """The account's catalog, None for an account without any."""
        value = self._table(key)
        if value is None:
            return None
        built = self._built.get(key)
        if built is None or built.version != int(value.get("version", 0)):
            built = build_catalog(key.decode(), value)
            self._built[key] = built
        return built


def apply_catalog_message(
    kind: str,
    message: Incoming,
    current: Callable[[bytes], Mapping[str, Any] | None],
    max_bytes: int,
    dead_letters_topic: str,
    now: float,
) -> tuple[bytes, dict[str, Any] | None, tuple[Outgoing, Rejection] | None]:
    """The catalog table update for one catalog message, or a dead letter."""
    decoded: Any = codec.decode(kind, message.value, max_bytes=max_bytes, key=message.key)
    if isinstance(decoded, codec.Rejected):
        letter = codec.dead_letter(
            message.value,
            message.key,
            decoded.reason,
            decoded.detail,
            message.topic,
            message.partition,
            message.offset,
            now,
        )
        out = Outgoing(dead_letters_topic, message.key or b"", letter)
        return message.key or b"", None, (out, decoded.reason)
    key = decoded.account_id.encode()
    wire = to_dict(decoded)
    return key, merge_part(current(key), kind, wire[_FIELD[kind]], wire.get("send_time")), None
