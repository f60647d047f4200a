"""Pure checks of stream.local: properties files, commands and ports, with no server started."""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.topic_specs import TopicSpec
from stream.local import free_port, free_ports, log_tail, port_accepts
from stream.local.__main__ import build_parser, parse_topic
from stream.local.jars import KAFKA_VERSION, POM_PATH, maven_command
from stream.local.kafka import BrokerConfig, new_cluster_id, render_properties, server_properties
from stream.local.redis import redis_command


def make_config(tmp_path: Path, **overrides: Any) -> BrokerConfig:
    """A valid config with ``overrides`` applied; replace() re-runs the validation."""
    return dataclasses.replace(BrokerConfig(tmp_path, 9092, 9093), **overrides)


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_properties_describe_one_combined_node_on_loopback(tmp_path: Path) -> None:
    props = server_properties(make_config(tmp_path))

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert Path(props["log.dirs"]).parent == tmp_path


def test_every_replication_setting_fits_a_single_node(tmp_path: Path) -> None:
    props = server_properties(make_config(tmp_path))

    single_node = {key: value for key, value in props.items() if "replication.factor" in key}
    assert single_node and set(single_node.values()) == {"1"}
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_partitions_and_auto_create_follow_the_config(tmp_path: Path) -> None:
    default = server_properties(make_config(tmp_path))
    custom = server_properties(make_config(tmp_path, num_partitions=6, auto_create_topics=True))

    assert (default["num.partitions"], default["auto.create.topics.enable"]) == ("1", "false")
    assert (custom["num.partitions"], custom["auto.create.topics.enable"]) == ("6", "true")


def test_rendered_properties_read_back_the_same(tmp_path: Path) -> None:
    props = server_properties(make_config(tmp_path))

    assert parse_properties(render_properties(props)) == props


def test_rendering_escapes_backslashes() -> None:
    assert render_properties({"log.dirs": r"C:\kafka"}) == "log.dirs=C:\\\\kafka\n"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"broker_port": 0}, "port out of range"),
        ({"controller_port": 70000}, "port out of range"),
        ({"controller_port": 9092}, "two different ports"),
        ({"num_partitions": 0}, "num_partitions"),
    ],
)
def test_invalid_broker_config_is_refused(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_config(tmp_path, **overrides)


def test_bootstrap_names_the_broker_listener(tmp_path: Path) -> None:
    assert make_config(tmp_path, broker_port=12345).bootstrap == "127.0.0.1:12345"


def test_cluster_ids_are_kafka_shaped_and_fresh() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", cid) and cid[0] != "-" for cid in ids)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)

    assert len(set(ports)) == 5
    for port in [*ports, free_port()]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_port_accepts_sees_a_listener_come_and_go() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_accepts("127.0.0.1", port)
    assert not port_accepts("127.0.0.1", port)


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert log_tail(log, lines=2) == "line 98\nline 99"
    assert "no log at" in log_tail(tmp_path / "missing.log")


def test_pom_pins_the_version_the_module_names() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    pinned = ET.parse(POM_PATH).getroot().findtext("m:properties/m:kafka.version", None, namespace)

    assert pinned == KAFKA_VERSION


def test_maven_resolves_into_the_project_cache(tmp_path: Path) -> None:
    command = maven_command("mvn", POM_PATH, tmp_path / "m2", tmp_path / "jars")

    assert f"-Dmaven.repo.local={tmp_path / 'm2'}" in command
    assert f"-Dkafka.version={KAFKA_VERSION}" in command
    assert command[-2:] == [
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp_path / 'jars'}",
    ]


def test_redis_runs_in_memory_on_loopback(tmp_path: Path) -> None:
    command = redis_command("/usr/bin/redis-server", 6400, tmp_path)
    options = dict(zip(command[1::2], command[2::2], strict=True))

    assert options["--port"] == "6400"
    assert options["--bind"] == "127.0.0.1"
    assert (options["--save"], options["--appendonly"]) == ("", "no")
    assert options["--dir"] == str(tmp_path)


def test_topic_specs_carry_compaction() -> None:
    assert TopicSpec("events", 3).configs() == {}
    assert TopicSpec("stats", 3, compacted=True).configs() == {"cleanup.policy": "compact"}
    assert TopicSpec("models", 3, True, 16 << 20).configs() == {
        "cleanup.policy": "compact",
        "max.message.bytes": "16777216",
    }
    with pytest.raises(ValueError, match="invalid topic spec"):
        TopicSpec("empty", partitions=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("events", TopicSpec("events", 1)),
        ("events:6", TopicSpec("events", 6)),
        ("stats:3:compact", TopicSpec("stats", 3, compacted=True)),
    ],
)
def test_cli_topic_syntax(text: str, expected: TopicSpec) -> None:
    assert parse_topic(text) == expected


@pytest.mark.parametrize("text", ["events:many", "stats:3:delete", ":3"])
def test_cli_refuses_bad_topics(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_topic(text)


def test_cli_parses_kafka_options(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["kafka", "--data-dir", str(tmp_path), "--partitions", "4", "--topic", "a:2"]
    )

    assert (args.command, args.data_dir, args.partitions) == ("kafka", tmp_path, 4)
    assert args.topic == [TopicSpec("a", 2)]
