"""The Faust application. Agents and tables live in their own modules and are found by
autodiscovery, so importing the app never imports an agent."""

from __future__ import annotations

import faust

from stream.adapters.kafka_config import broker_credentials
from stream.adapters.producer import MAX_BATCH_BYTES
from stream.adapters.topic_specs import ANSWERS_MAX_BYTES  # also the producer's requests
from stream.settings import Settings

settings = Settings.from_env()


app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    broker_credentials=broker_credentials(settings),
    store="memory://",
    autodiscover=["stream.worker.agents", "stream.worker.web"],
    origin="stream.worker",
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    topic_allow_declare=True,
    producer_acks=-1,
    # The answers table keeps the responses of a request partition's last batch, which
    # with batch envelopes can pass the 1 MB default (its topic allows as much).
    producer_max_request_size=ANSWERS_MAX_BYTES,
    # A partition's pending batch holds this much before a send waits for the broker:
    # with Faust's default (16 KiB) every response batch (~30 KB for 100 answers) waited
    # a round trip of its own, serially per partition.
    producer_max_batch_size=MAX_BATCH_BYTES,
    consumer_auto_offset_reset="earliest",
    broker_commit_every=10_000,
    # At most this many records per fetch: below the margin between a stream buffer's
    # "high pressure" (stream_buffer_maxsize / 1.25, where fetching of that partition
    # stops) and full (where handing on any message waits). A backlog of events (after a
    # Redis outage, a restart) then never fills the stats agent's buffer, which would hold
    # back the selection requests fetched with them.
    broker_max_poll_records=500,
    broker_commit_interval=1.0,
    # Static group membership (KIP-345): a restarted worker with the same instance id takes
    # its partitions back at once instead of waiting out the dead member's session.
    consumer_group_instance_id=settings.group_instance_id or None,
    broker_session_timeout=settings.session_timeout_seconds,
    broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
    web_enabled=True,
    # Only our /metrics and /health: no table contents (/table), cluster layout (/router),
    # sensor dumps (/, /stats, /assignment), service graph (/graph) or /performance.
    web_tables_enabled=False,
    web_router_enabled=False,
    web_stats_enabled=False,
    web_graph_enabled=False,
    web_metrics_enabled=False,
    web_bind=settings.web_host,
    web_port=settings.web_port,
    web_host=settings.web_host,
    table_standby_replicas=settings.table_standby_replicas,
    datadir=settings.state_dir,
    stream_wait_empty=False,
    logging_config=None,
)
