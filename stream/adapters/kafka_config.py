"""How every Kafka client of the service connects: one reading of the security settings,
rendered for each client library.

`CS_KAFKA_SECURITY_PROTOCOL` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) with the SASL
mechanism and credentials and the SSL files are read here once, into `Security`; the
worker (Faust), the commands and the client (aiokafka) and the daily job's reader
(librdkafka, through confluent-kafka) all connect through it, so they reach the same
cluster with the same credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from stream.settings import SecretStr, Settings

SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


@dataclass(frozen=True, slots=True)
class Security:
    """The connection's security, as settings give it.

    >>> Security.of(Settings()).protocol, Security.of(Settings()).uses_ssl
    ('PLAINTEXT', False)
    """

    protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: SecretStr
    cafile: str
    certfile: str
    keyfile: str

    @classmethod
    def of(cls, settings: Settings) -> Security:
        return cls(
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
        )

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in SSL_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in SASL_PROTOCOLS

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile or None)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile or None)
        return context


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The SSL context of the settings' CA, certificate and key files."""
    return Security.of(settings).ssl_context()


def kafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by aiokafka's producer, consumer and admin client.

    >>> kafka_config(Settings())
    {'bootstrap_servers': '127.0.0.1:9092', 'security_protocol': 'PLAINTEXT'}
    """
    security = Security.of(settings)
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": security.protocol,
    }
    if security.uses_ssl:
        config["ssl_context"] = security.ssl_context()
    if security.uses_sasl:
        config["sasl_mechanism"] = security.sasl_mechanism
        config["sasl_plain_username"] = security.sasl_username
        config["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return config


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's connection settings (confluent-kafka), secrets included.

    >>> client_config(Settings())
    {'bootstrap.servers': '127.0.0.1:9092', 'security.protocol': 'PLAINTEXT'}
    """
    security = Security.of(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": security.protocol,
    }
    if security.uses_sasl:
        config["sasl.mechanism"] = security.sasl_mechanism
        config["sasl.username"] = security.sasl_username
        config["sasl.password"] = security.sasl_password.get_secret_value()
    for key, value in (
        ("ssl.ca.location", security.cafile),
        ("ssl.certificate.location", security.certfile),
        ("ssl.key.location", security.keyfile),
    ):
        if value:
            config[key] = value
    return config


def broker_credentials(settings: Settings) -> Any:
    """Faust's credentials object for the worker's connection (None for PLAINTEXT)."""
    import faust

    security = Security.of(settings)
    if security.protocol == "PLAINTEXT":
        return None
    context = security.ssl_context() if security.uses_ssl else None
    if security.protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password.get_secret_value(),
        ssl_context=context,
        mechanism=security.sasl_mechanism,
    )
