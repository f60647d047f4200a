"""The catalog as the service sees it: four parts per account (settings, offers,
creatives, campaigns), each the latest full snapshot from its compacted topic, and the
`Selector` built from them, cached until a part changes.

Parts arrive independently, so an account can be momentarily inconsistent (a creative
naming an offer not yet seen); such an account answers with `invalid_catalog` until the
missing part arrives, and nothing crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from selector import Account, ConfigError, Selector, account_from_dict
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


def merge_part(current: Mapping[str, Any] | None, kind: str, body: Any) -> dict[str, Any]:
    """A new catalog value with one part replaced and the version bumped."""
    value = dict(current or {"version": 0})
    value[_FIELD[kind]] = body
    value["version"] = int(value.get("version", 0)) + 1
    return value


def account_document(account_id: str, value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "settings": value.get("settings", {}),
        "offers": value.get("offers", []),
        "creatives": value.get("creatives", []),
        "campaigns": value.get("campaigns", []),
    }


@dataclass(frozen=True, slots=True)
class Built:
    version: int
    selector: Selector | None
    error: str | None


class SelectorCache:
    """One `Selector` per account, rebuilt when the account's catalog version changes."""

    def __init__(self, propensity_samples: int = 1024) -> None:
        self._built: dict[str, Built] = {}
        self._propensity_samples = propensity_samples

    def get(self, account_id: str, value: Mapping[str, Any] | None) -> Built | None:
        """The selector for an account, None for an account without any catalog."""
        if value is None:
            return None
        version = int(value.get("version", 0))
        built = self._built.get(account_id)
        if built is not None and built.version == version:
            return built
        try:
            account: Account = account_from_dict(account_document(account_id, value))
            built = Built(
                version, Selector(account, propensity_samples=self._propensity_samples), None
            )
        except ConfigError as exc:
            built = Built(version, None, str(exc))
        self._built[account_id] = built
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
    body = to_dict(decoded)[_FIELD[kind]]
    return key, merge_part(current(key), kind, body), None
