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
(batched agents write after a whole batch). `partition-to-answers` is keyed by the
request partition itself, and its records go to that partition.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from stream.adapters.topic_specs import ANSWERS_MAX_BYTES
from stream.wire import ledger_codec
from stream.worker.app import app, settings
from stream.worker.delivery import ConfirmedTable, LedgerValue, PartitionTable


class LedgerCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return ledger_codec.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return ledger_codec.loads(s)


codecs.register("ledger", LedgerCodec())


def _table(name: str, kind: type[ConfirmedTable] = ConfirmedTable, **options: Any) -> Any:
    table = kind(
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
# Per selection-request partition, what the selection agent answered (`stream.wire.answered`)
partition_to_answers = _table(
    "partition-to-answers",
    PartitionTable,
    value_type=bytes,
    extra_topic_configs={"max.message.bytes": str(ANSWERS_MAX_BYTES)},
)
