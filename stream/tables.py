"""Tables: per-account stats and catalog, keyed by the account id's bytes.

`use_partitioner=True`: the changelog partition comes from hashing the key exactly like
the producers of the event topics do, so a table's changelog partition is the account's
partition on every topic, whatever event happened to be current when it was written
(batched agents write after a whole batch).
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from stream import ledger_codec
from stream.app import app, settings


class LedgerCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return ledger_codec.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return ledger_codec.loads(s)


codecs.register("ledger", LedgerCodec())


class LedgerValue:
    """Names the table's value codec: Faust reads `_options.serializer` off the value type
    when the table is built, and uses it for the changelog and for recovery alike."""

    class _options:
        serializer = "ledger"

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
        """The codec has already built the `Ledger`; Faust calls this on every load."""
        return data


account_to_stats = app.Table(
    "account-to-stats",
    default=None,
    partitions=settings.partitions,
    key_type=bytes,
    value_type=LedgerValue,
    use_partitioner=True,
)

account_to_catalog = app.Table(
    "account-to-catalog",
    default=None,
    partitions=settings.partitions,
    key_type=bytes,
    use_partitioner=True,
)
