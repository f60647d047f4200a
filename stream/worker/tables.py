"""Tables: per-account stats and catalog, keyed by the account id's bytes.

Both are `ConfirmedTable`s: an agent awaits `confirm_writes()` after a batch's table
writes, so a batch's changelog records are stored by the broker before its events are
acknowledged. Faust commits offsets after flushing its producer, but that flush gives up
on its send queue after 0.1 s without progress (say, while the producer fetches the
changelog topic's metadata right after a restart), so without the confirmation a commit
can overtake a changelog write, and a crash then loses the write while its events count
as done.

`use_partitioner=True`: the changelog partition comes from hashing the key exactly like
the producers of the event topics do, so a table's changelog partition is the account's
partition on every topic, whatever event happened to be current when it was written
(batched agents write after a whole batch).
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust import Table
from faust.serializers import codecs

from stream.wire import ledger_codec
from stream.worker.app import app, settings


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


class ConfirmedTable(Table[Any, Any]):
    """A table whose changelog writes can be awaited until the broker has stored them."""

    def on_key_set(self, key: Any, value: Any) -> None:
        future = self.send_changelog(self.partition_for_key(key), key, value)
        self.__dict__.setdefault("_unconfirmed", []).append(future)
        self._sensor_on_set(self, key, value)

    async def ready_to_write(self) -> None:
        """Wait until the producer knows the changelog topic's partitions: a write picks
        its partition as it is made, and fails before the metadata has arrived (right
        after a start)."""
        if not self.__dict__.get("_ready"):
            producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
            await producer.partitions_for(self.changelog_topic.get_topic_name())
            self.__dict__["_ready"] = True

    async def confirm_writes(self) -> None:
        """Wait until every changelog write so far is stored; raises if one failed."""
        pending = self.__dict__.get("_unconfirmed")
        if pending:
            self.__dict__["_unconfirmed"] = []
            await asyncio.gather(*pending)


def _table(name: str, **options: Any) -> ConfirmedTable:
    table = ConfirmedTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=settings.partitions,
        key_type=bytes,
        use_partitioner=True,
        **options,
    )
    app.tables.add(table)
    return table


account_to_stats = _table("account-to-stats", value_type=LedgerValue)
account_to_catalog = _table("account-to-catalog")
