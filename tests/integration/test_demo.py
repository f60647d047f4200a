"""`creative-select demo` end to end on the session's Kafka and Redis: a real worker
process, the simulated sender, and the report read back from Kafka."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SENDS = 3000
ROOT = Path(__file__).resolve().parents[2]


def test_demo_reports_both_arms_and_answers_every_request(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "demo.json"
    command = [
        *(sys.executable, "-m", "stream.cli", "demo", "scenarios/product.yaml"),
        *("--sends", str(SENDS), "--seed", "3", "--json", str(out)),
        *("--bootstrap", kafka_bootstrap, "--redis-url", redis_url),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "Lift, automated over control" in done.stdout

    report = json.loads(out.read_text())
    arms = {arm["name"]: arm for arm in report["arms"]}
    assert set(arms) == {"automated", "control"}
    assert sum(arm["sends"] for arm in arms.values()) == SENDS
    assert 0.7 < arms["automated"]["sends"] / SENDS < 0.9  # the 80/20 split
    assert sum(c["sends"] for c in report["creatives"]) == SENDS
    assert report["rps_lift"]["treatment"] is not None
    assert report["rps_lift"]["control"] is not None

    sender, kafka = report["sender"], report["kafka"]
    assert sender["requests"] == sender["responses"] == SENDS
    assert sender["errors"] == sender["unanswered"] == 0
    assert kafka["sends"] == SENDS and kafka["sends_without_response"] == 0
    assert kafka["responses"] >= SENDS  # every request's answer is on the responses topic
    assert kafka["events_applied"] == sender["events_published"]
    assert kafka["events_applied"] == SENDS + kafka["clicks"] + kafka["conversions"]
