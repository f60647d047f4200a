"""Pure checks of the local servers' TLS options: the broker's secure listeners and the
Redis command line, with no server started (tests/integration/test_security.py starts
them)."""

from __future__ import annotations

from pathlib import Path

from stream.local.kafka import BrokerConfig, render_properties, server_properties
from stream.local.redis import redis_command
from stream.local.tls import Certificates, SecureListeners, scram_format_arguments


def certificates(root: Path) -> Certificates:
    names = ("ca.crt", "server.crt", "server.key", "server.pem", "client.crt", "client.key")
    return Certificates(*(root / name for name in names))


def test_the_broker_adds_ssl_and_sasl_ssl_listeners_beside_plaintext(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    secure = SecureListeners(certs, {"cs": "pw"})
    props = server_properties(
        BrokerConfig(tmp_path, 9092, 9093, secure=secure, secure_ports=(9094, 9095))
    )
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,"
        "SSL://127.0.0.1:9094,SASL_SSL://127.0.0.1:9095"
    )
    assert props["advertised.listeners"].endswith(",SSL://127.0.0.1:9094,SASL_SSL://127.0.0.1:9095")
    assert props["listener.security.protocol.map"].endswith(",SSL:SSL,SASL_SSL:SASL_SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["ssl.keystore.location"] == str(certs.server_pem)
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert 'user_cs="pw";' in props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-512"
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert scram_format_arguments(secure) == ["--add-scram", "SCRAM-SHA-512=[name=cs,password=pw]"]
    assert "SASL_SSL" not in render_properties(
        server_properties(BrokerConfig(tmp_path, 9092, 9093))
    )


def test_redis_with_tls_listens_on_the_tls_port_only_and_asks_a_password(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    command = redis_command("/usr/bin/redis-server", 6400, tmp_path, password="pw", tls=certs)
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--port"] == "0" and options["--tls-port"] == "6400"
    assert options["--requirepass"] == "pw"
    assert options["--tls-cert-file"] == str(certs.server_cert)
    plain = redis_command("/usr/bin/redis-server", 6400, tmp_path)
    assert "--requirepass" not in plain and "--tls-port" not in plain
