"""Apache Kafka's jars, resolved from Maven Central by Maven into a cache
(`~/.cache/creative-selection`), once per Kafka version and pom: no tarball, no Docker."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

from stream.local import (
    progress,
)

KAFKA_VERSION = "4.3.1"


DEFAULT_CACHE_DIR = Path.home() / ".cache" / "creative-selection"


# Shipped inside the package (a wheel has no deploy/ folder); a plain file in any install.
POM_PATH = Path(str(resources.files("stream.local") / "kafka-pom.xml"))


_COMPLETE_MARKER = ".complete"


class KafkaSetupError(RuntimeError):
    """Kafka could not be resolved, formatted or started; the message says why."""


def ensure_kafka_jars(cache_dir: Path = DEFAULT_CACHE_DIR, pom: Path = POM_PATH) -> Path:
    """Return a directory holding Kafka's jars, running Maven only when it is missing.


    The directory is named after the Kafka version and a digest of the pom, so editing the
    pom re-resolves. Maven writes into a staging directory renamed into place at the end:
    an interrupted or concurrent run never leaves a half-filled directory that looks done.
    """
    jars_dir = cache_dir / f"kafka-{KAFKA_VERSION}-{_file_digest(pom)}" / "jars"
    if (jars_dir / _COMPLETE_MARKER).is_file():
        return jars_dir
    mvn = require_tool("mvn", "install Maven (Debian: apt-get install -y maven)")
    jars_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="jars-", dir=jars_dir.parent))
    progress(f"resolving Kafka {KAFKA_VERSION} jars with Maven into {jars_dir} (once per cache)")
    started = time.monotonic()
    command = maven_command(mvn, pom, cache_dir / "m2", staging)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise KafkaSetupError(f"Maven could not resolve Kafka's jars:\n{output}")
    (staging / _COMPLETE_MARKER).write_text(KAFKA_VERSION + "\n", encoding="utf-8")
    _move_into_place(staging, jars_dir)
    jar_count = len(list(jars_dir.glob("*.jar")))
    progress(f"resolved {jar_count} jars in {time.monotonic() - started:.1f}s")
    return jars_dir


def maven_command(mvn: str, pom: Path, repository: Path, output_dir: Path) -> list[str]:
    """``mvn dependency:copy-dependencies`` in batch mode against a project-owned repository."""
    settings = [f"-Dmaven.repo.local={repository}", f"-Dkafka.version={KAFKA_VERSION}"]
    goal = ["dependency:copy-dependencies", f"-DoutputDirectory={output_dir}"]
    return [mvn, "-B", "-q", "-f", str(pom), *settings, *goal]


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; if another process got there first, keep theirs."""
    try:
        staging.rename(target)
    except OSError:
        if not (target / _COMPLETE_MARKER).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def require_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise KafkaSetupError(f"'{name}' is not on PATH: {hint}")
    return found
