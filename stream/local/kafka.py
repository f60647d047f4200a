"""One real Apache Kafka node (KRaft, broker and controller in one JVM) for tests and demos.

Why Kafka 4.3.1
---------------
Kafka 4.0 removed the oldest protocol versions (KIP-896), so a 4.x broker is the stricter
test of our clients: clients negotiate versions, and 3.9 still serves every version 4.x
does. 4.x was checked with real round trips against this module's broker, not assumed:

* aiokafka 0.14.0 (also 0.12.0 and 0.11.0): create topics (CreateTopics v3), describe
  configs, idempotent and transactional produce, consumer-group join, offset commit/fetch;
* faust-streaming 0.15.3: a worker with two agents and a table (its own partition assignor
  on the classic group protocol, the leader and changelog topics it declares itself, and
  changelog recovery after a restart).

4.3.1 is a patch release of a current line that Maven Central serves here. Kafka 4 logs
through log4j2, so the pom adds only the slf4j binding. To move to another version, change
KAFKA_VERSION and the pom's kafka.version together (a unit test checks they agree).

Topics are not created on first use (``auto.create.topics.enable=false`` by default): every
topic the project uses is declared with its partition count and cleanup policy, through
:func:`create_topics` or faust's own declarations, so a typo fails loudly instead of making
a one-partition topic. ``BrokerOptions(auto_create_topics=True)`` turns it on when wanted.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.adapters.topic_specs import TopicSpec, ensure_topics
from stream.local import (
    LOOPBACK,
    free_ports,
    log_tail,
    port_accepts,
    progress,
    run_blocking,
    stop_process,
)
from stream.local.jars import (
    DEFAULT_CACHE_DIR,
    KAFKA_VERSION,
    KafkaSetupError,
    ensure_kafka_jars,
    require_tool,
)
from stream.local.tls import SecureListeners, scram_format_arguments, secure_properties
from stream.settings import Settings

_STORAGE_TOOL = "kafka.tools.StorageTool"
_TOOL_HEAP = ("64m", "256m")
_LOG4J2_PROPERTIES = """\
rootLogger.level = {level}
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """What goes into server.properties: a plain value, so it is tested without Kafka."""

    data_dir: Path
    broker_port: int
    controller_port: int
    num_partitions: int = 1
    auto_create_topics: bool = False
    node_id: int = 1
    host: str = LOOPBACK
    # SSL and SASL_SSL listeners on these two ports (`stream.local.tls`), when given.
    secure: SecureListeners | None = None
    secure_ports: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for port in (self.broker_port, self.controller_port):
            if not 0 < port < 65536:
                raise ValueError(f"port out of range: {port}")
        if self.broker_port == self.controller_port:
            raise ValueError("broker and controller need two different ports")
        if self.num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, got {self.num_partitions}")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def log_dir(self) -> Path:
        """Where Kafka keeps partitions and the KRaft metadata log."""
        return self.data_dir / "kraft-logs"


def server_properties(config: BrokerConfig) -> dict[str, str]:
    """Settings for one combined broker+controller: every replication factor and ISR is 1.

    The static voter list (controller.quorum.voters) formats and starts without the
    ``--standalone`` dance. Internal topics get one partition because the first consumer
    group waits for ``__consumer_offsets`` to be created; the cleaner's dedupe buffer is
    16 MiB instead of 128 MiB so compaction fits the modest heap.
    """
    broker = f"{config.host}:{config.broker_port}"
    controller = f"{config.host}:{config.controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(config.node_id),
        "controller.quorum.voters": f"{config.node_id}@{controller}",
        "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(config.log_dir),
        "num.partitions": str(config.num_partitions),
        "auto.create.topics.enable": str(config.auto_create_topics).lower(),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }
    if config.secure is not None:
        props.update(secure_properties(props, config.host, config.secure_ports, config.secure))
    return props


def render_properties(properties: Mapping[str, str]) -> str:
    """Write a Java .properties text; backslashes are the only escape paths here need."""
    lines = [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Made here instead of by ``kafka-storage random-uuid`` to save a JVM start. Ids starting
    with '-' are skipped, as Kafka's own Uuid.randomUuid does, since they read as options.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def java_command(
    jars_dir: Path, log_config: Path, main_class: str, *args: str, heap: tuple[str, str]
) -> list[str]:
    """The JVM command line for one of Kafka's entry points, heap sized for a test machine."""
    java = require_tool("java", "install a JRE 17+ (Debian: apt-get install -y default-jre)")
    heap_flags = [f"-Xms{heap[0]}", f"-Xmx{heap[1]}", "-XX:+ExitOnOutOfMemoryError"]
    logging = f"-Dlog4j2.configurationFile={log_config}"
    return [java, *heap_flags, logging, "-cp", str(jars_dir / "*"), main_class, *args]


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    """How to run a :class:`KafkaBroker`; the heap fits the 2-core, shared test machines."""

    num_partitions: int = 1
    auto_create_topics: bool = False
    heap_min: str = "128m"
    heap_max: str = "512m"
    cache_dir: Path = DEFAULT_CACHE_DIR
    start_timeout_s: float = 90.0
    stop_timeout_s: float = 30.0
    secure: SecureListeners | None = None


class KafkaBroker:
    """A Kafka node started by :meth:`start` and ended by :meth:`stop`; a context manager.

    ``start`` returns only once the broker answers a metadata request from aiokafka, so a
    test that follows never races the broker's start-up.
    """

    def __init__(self, data_dir: Path, options: BrokerOptions | None = None) -> None:
        self.data_dir = data_dir
        self.options = options or BrokerOptions()
        self._config: BrokerConfig | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def bootstrap(self) -> str:
        if self._config is None:
            raise RuntimeError("the broker is not started")
        return self._config.bootstrap

    def listener(self, protocol: str) -> str:
        """``host:port`` of the ``SSL`` or ``SASL_SSL`` listener (``BrokerOptions.secure``)."""
        if self._config is None or self._config.secure is None:
            raise RuntimeError("the broker is not started with secure listeners")
        port = self._config.secure_ports[("SSL", "SASL_SSL").index(protocol)]
        return f"{self._config.host}:{port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Resolve jars, format storage, start the JVM, wait until it serves; return bootstrap."""
        if self._proc is not None:
            raise RuntimeError("the broker is already started")
        options = self.options
        jars_dir = ensure_kafka_jars(options.cache_dir)
        broker_port, controller_port, *secure_ports = free_ports(4 if options.secure else 2)
        config = BrokerConfig(
            self.data_dir,
            broker_port,
            controller_port,
            num_partitions=options.num_partitions,
            auto_create_topics=options.auto_create_topics,
            secure=options.secure,
            secure_ports=(secure_ports[0], secure_ports[1]) if secure_ports else (0, 0),
        )
        properties, log_config = self._write_config_files(config)
        self._format_storage(jars_dir, config, properties)
        heap = (options.heap_min, options.heap_max)
        command = java_command(jars_dir, log_config, "kafka.Kafka", str(properties), heap=heap)
        progress(f"starting Kafka {KAFKA_VERSION} on {config.bootstrap}, log {self.log_path}")
        started = time.monotonic()
        self._log_file = self.log_path.open("ab")
        # Own session: Ctrl-C reaches only Python, which stops the broker in order.
        self._proc = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._config = config
        try:
            self._wait_until_serving(config)
        except BaseException:
            self.stop()
            raise
        progress(f"Kafka serves on {config.bootstrap} after {time.monotonic() - started:.1f}s")
        return config.bootstrap

    def stop(self) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after the grace period. Idempotent."""
        if self._proc is not None:
            code = stop_process(self._proc, self.options.stop_timeout_s)
            # The JVM exits with 128 + SIGTERM after its shutdown hooks ran: a clean stop.
            how = "cleanly" if code in (0, 143) else f"with exit code {code}"
            progress(f"Kafka (pid {self._proc.pid}) stopped {how}")
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._config = None

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_config_files(self, config: BrokerConfig) -> tuple[Path, Path]:
        """Write server.properties and the log4j2 configs: INFO for the broker, WARN for tools."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        properties.write_text(render_properties(server_properties(config)), encoding="utf-8")
        for name, level in (("log4j2.properties", "INFO"), ("log4j2-tools.properties", "WARN")):
            log_config = self.data_dir / name
            log_config.write_text(_LOG4J2_PROPERTIES.format(level=level), encoding="utf-8")
        return properties, self.data_dir / "log4j2.properties"

    def _format_storage(self, jars_dir: Path, config: BrokerConfig, properties: Path) -> None:
        """Format the KRaft log dir once: a kept data dir keeps its cluster id on restarts.

        (Kafka 4's ``--ignore-formatted`` still refuses a different cluster id.)
        """
        if (config.log_dir / "meta.properties").is_file():
            return
        arguments = ["format", "--cluster-id", new_cluster_id(), "--config", str(properties)]
        if config.secure is not None:
            arguments += scram_format_arguments(config.secure)
        log_config = self.data_dir / "log4j2-tools.properties"
        command = java_command(jars_dir, log_config, _STORAGE_TOOL, *arguments, heap=_TOOL_HEAP)
        format_log = self.data_dir / "format.log"
        with format_log.open("wb") as out:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        if code.returncode != 0:
            raise KafkaSetupError(f"formatting KRaft storage failed:\n{log_tail(format_log)}")

    def _wait_until_serving(self, config: BrokerConfig) -> None:
        assert self._proc is not None
        timeout_s = self.options.start_timeout_s
        deadline = time.monotonic() + timeout_s
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise self._start_error(f"the JVM exited with code {self._proc.returncode}")
            if port_accepts(config.host, config.broker_port):
                try:
                    if run_blocking(fetch_broker_ids(config.bootstrap, timeout_s=5.0)):
                        return
                except (KafkaError, OSError, TimeoutError) as exc:
                    last_error = exc
            time.sleep(0.2)
        raise self._start_error(f"no metadata after {timeout_s:.0f}s ({last_error!r})")

    def _start_error(self, reason: str) -> KafkaSetupError:
        return KafkaSetupError(
            f"Kafka did not start: {reason}. Log tail ({self.log_path}):\n{log_tail(self.log_path)}"
        )


async def fetch_broker_ids(bootstrap: str, timeout_s: float = 10.0) -> list[int]:
    """One metadata round trip: the node ids the cluster reports (empty until it serves)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return [int(broker["node_id"]) for broker in cluster["brokers"]]
    finally:
        await admin.close()


async def create_topics(
    bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet on this plaintext broker; return their names.

    The same creation as the service's (`stream.adapters.topic_specs.ensure_topics`):
    idempotent, and it returns only once every new partition's leader serves.
    """
    settings = dataclasses.replace(Settings(), kafka_bootstrap=bootstrap)
    return await asyncio.wait_for(ensure_topics(settings, list(specs)), timeout_s * 2)
