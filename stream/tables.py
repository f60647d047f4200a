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

account_to_stats = app.Table(
    "account-to-stats",
    default=None,
    partitions=settings.partitions,
    key_type=bytes,
    key_serializer="raw",
    value_serializer="ledger",
    use_partitioner=True,
)

account_to_catalog = app.Table(
    "account-to-catalog",
    default=None,
    partitions=settings.partitions,
    key_type=bytes,
    key_serializer="raw",
    value_serializer="json",
    use_partitioner=True,
)
