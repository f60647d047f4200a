"""TLS for the local servers: a throwaway certificate authority made with `openssl`, and
the Kafka listeners that use it, so the service's SSL, SASL_SSL and Redis TLS settings
can be exercised against real servers.

The Kafka broker reads PEM files directly (`ssl.keystore.type=PEM`), so no Java keystore
is needed. Everything here is for tests and demos: keys are unencrypted, certificates
last two days, and the SASL users (PLAIN and SCRAM-SHA-512) are given in the config.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stream.local import LOOPBACK


class TlsSetupError(RuntimeError):
    """openssl is missing or failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files: a CA, a server certificate for the loopback address, a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    server_pem: Path  # key and certificate in one file, as Kafka's PEM keystore reads it
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise TlsSetupError("openssl is not on PATH (Debian: apt-get install -y openssl)")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise TlsSetupError(f"openssl {args[0]} failed:\n{result.stderr[-2000:]}")


def _signed(directory: Path, name: str, subject: str, extensions: str) -> None:
    """`name.key` (PKCS#8) and `name.crt`, signed by `ca.key`."""
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key"),
        *("-out", f"{name}.csr", "-subj", subject),
        cwd=directory,
    )
    _openssl(
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-sha256"),
        *("-extfile", f"{name}.ext"),
        cwd=directory,
    )


def make_certificates(directory: Path, host: str = LOOPBACK) -> Certificates:
    """A new CA, a server certificate for `host` (and localhost), a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key"),
        *("-out", "ca.crt", "-days", "2", "-subj", "/CN=creative-selection test CA"),
        cwd=directory,
    )
    san = f"subjectAltName=IP:{host},DNS:localhost\nextendedKeyUsage=serverAuth\n"
    _signed(directory, "server", "/CN=localhost", san)
    _signed(directory, "client", "/CN=creative-selection", "extendedKeyUsage=clientAuth\n")
    pem = directory / "server.pem"
    pem.write_text((directory / "server.key").read_text() + (directory / "server.crt").read_text())
    return Certificates(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        server_pem=pem,
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True, slots=True)
class SecureListeners:
    """An SSL listener (client certificates required) and a SASL_SSL listener beside the
    broker's PLAINTEXT one, which stays for the broker's own probes. The SASL users can
    log in with PLAIN and with SCRAM-SHA-512 (their SCRAM credentials are written into
    the metadata log when the storage is formatted)."""

    certificates: Certificates
    sasl_users: Mapping[str, str] = field(default_factory=dict)


def scram_format_arguments(secure: SecureListeners) -> list[str]:
    """`kafka-storage format` arguments that create the SCRAM credentials."""
    return [
        argument
        for name, password in secure.sasl_users.items()
        for argument in ("--add-scram", f"{SCRAM}=[name={name},password={password}]")
    ]


def secure_properties(
    base: Mapping[str, str], host: str, ports: tuple[int, int], secure: SecureListeners
) -> dict[str, str]:
    """server.properties entries that add the two listeners to `base`."""
    ssl_listener = f"SSL://{host}:{ports[0]}"
    sasl_listener = f"SASL_SSL://{host}:{ports[1]}"
    users = " ".join(f'user_{name}="{password}"' for name, password in secure.sasl_users.items())
    plain = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    certs = secure.certificates
    return {
        "listeners": f"{base['listeners']},{ssl_listener},{sasl_listener}",
        "advertised.listeners": f"{base['advertised.listeners']},{ssl_listener},{sasl_listener}",
        "listener.security.protocol.map": (
            f"{base['listener.security.protocol.map']},SSL:SSL,SASL_SSL:SASL_SSL"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.server_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs.ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "sasl.enabled.mechanisms": f"PLAIN,{SCRAM}",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        f"listener.name.sasl_ssl.{SCRAM.lower()}.sasl.jaas.config": scram,
    }
