"""The service as its users install it: the wheel built by the Containerfile's own steps,
installed into a fresh virtual environment outside the checkout, run from a temporary
folder against the project's local Kafka and Redis. Nothing of the checkout is on the
path, so a file the package forgot to ship fails here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.local import free_port
from stream.local.harness import Worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def install_steps() -> list[list[str]]:
    """The Containerfile's RUN commands marked `# install step`, as argument lists."""
    lines = (ROOT / "Containerfile").read_text().splitlines()
    steps = []
    for i, line in enumerate(lines):
        if line.strip() == "# install step" or line.startswith("# install step:"):
            run = lines[i + 1]
            assert run.startswith("RUN "), run
            steps.append(shlex.split(run[4:].split("&&")[0].rstrip("\\ ")))
    return steps


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv with the wheel installed by the Containerfile's steps."""
    root = tmp_path_factory.mktemp("wheel")
    build, install = install_steps()
    assert build[:4] == ["python", "-m", "pip", "wheel"] and build[-1] == "."
    dist = root / "dist"
    build = [sys.executable, *build[1:]]
    build[build.index("/dist")] = str(dist)
    subprocess.run([*build[:-1], str(ROOT)], check=True, capture_output=True, cwd=ROOT)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = dist.glob("creative_selection-*.whl")
    assert install[:4] == ["python", "-m", "pip", "install"]
    install = [str(venv / "bin" / "python"), *install[1:]]
    install[-1] = str(wheel)
    subprocess.run(install, check=True, capture_output=True, text=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # pip's in-tree build folder
    yield venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CS_", "PYTHON"))}
    done = subprocess.run(
        [str(bin_dir / "creative-select"), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_installed_package_is_complete_and_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    code = (
        "import importlib, pkgutil, stream, selector\n"
        "from importlib import resources\n"
        "for p in (stream, selector):\n"
        "    for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'):\n"
        "            importlib.import_module(m.name)\n"
        "print(stream.__file__)\n"
        "print(len(list((resources.files('stream.schemas') / 'examples').iterdir())))\n"
    )
    out = subprocess.run(
        [str(installed / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    location, examples = out.stdout.split()
    assert Path(location).is_relative_to(installed.parent)
    assert int(examples) == len(list((ROOT / "schemas" / "examples").iterdir()))


def test_simulate_runs_a_scenario_file_from_any_folder(installed: Path, tmp_path: Path) -> None:
    shutil.copy(ROOT / "scenarios" / "drift.yaml", tmp_path / "my-scenario.yaml")
    out = run(installed, tmp_path, "simulate", "my-scenario.yaml", "--json", "out.json")
    assert re.search(r"simulated [\d,]+ sends", out)
    assert (tmp_path / "out.json").stat().st_size > 0


def test_topics_worker_and_daily_job_run_from_the_wheel(
    installed: Path, tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    name = uuid.uuid4().hex[:8]
    env = {
        "CS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CS_REDIS_URL": redis_url,
        "CS_TOPIC_PREFIX": f"w{name}-",
        "CS_APP_ID": f"wheel-{name}",
        "CS_STATE_DIR": str(tmp_path / "state"),
        "CS_WEB_PORT": str(free_port()),
        "CS_PARTITIONS": "2",
    }
    out = run(installed, tmp_path, "topics", "create", env=env)
    assert f"w{name}-sends" in out
    worker = Worker(env, tmp_path / "worker.log", [str(installed / "creative-select"), "worker"])
    try:
        worker.start()
        report = run(installed, tmp_path, "stats-job", "--report-only", env=env)
        assert "drift" in report.lower()
    finally:
        worker.stop()
