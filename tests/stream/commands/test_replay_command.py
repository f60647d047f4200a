"""`creative-select replay` without Kafka: the dry run of a file, and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.cli import main
from tests.stream.replay.test_replay_inputs import LINES, event, write_lines

UNREACHABLE = "127.0.0.1:1"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run of a file must not need Kafka: point the settings nowhere."""
    monkeypatch.setenv("CS_KAFKA_BOOTSTRAP", UNREACHABLE)
    monkeypatch.setenv("CS_MAX_FUTURE_SECONDS", "1e12")


def test_a_dry_run_counts_kinds_and_reasons_and_lists_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "events.jsonl.gz", [*LINES, event("click", 2)], gzipped=True)
    rejects = tmp_path / "rejects.jsonl"
    assert main(["replay", str(path), "--dry-run", "--rejects", str(rejects)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "dry run, nothing published: 7 events, valid 3 (click 1, conversion 1, send 1), "
        "present 0, rejected 4 (malformed_json 1, not_an_object 1, schema_mismatch 1, "
        "wrong_type 1), ignored 0"
    ]
    assert err.splitlines()[0].startswith("line 3: schema: must be one of send.v1")
    assert [line.split(":")[0] for line in err.splitlines()] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["where"], r["reason"]) for r in written] == [
        ("line 3", "malformed_json"),
        ("line 4", "not_an_object"),
        ("line 5", "schema_mismatch"),
        ("line 6", "wrong_type"),
    ]
    assert written[3]["input"] == json.dumps(LINES[5])
    assert not list(Path.cwd().glob("events.jsonl.gz.replay.json"))  # no checkpoint


def test_a_clean_dry_run_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "ok.jsonl", [event("send", i) for i in range(5)])
    assert main(["replay", str(path), "--dry-run"]) == 0
    assert "valid 5 (send 5), present 0, rejected 0, ignored 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either FILE or --from-topic NAME"),
        (["f.jsonl", "--from-topic", "x"], "give either FILE or --from-topic NAME"),
        (["missing.jsonl"], "missing.jsonl: no such file"),
        (
            ["{file}", "--since", "2026-01-01"],
            "--start-offset, --end-offset, --since and --until go with --from-topic",
        ),
        (["{file}", "--rate", "0"], "--rate must be > 0"),
        (["{file}", "--resume", "--fresh"], "--resume and --fresh exclude each other"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = write_lines(tmp_path / "ok.jsonl", [event("send", 1)])
    argv = [str(path) if a == "{file}" else a for a in args]
    assert main(["replay", *argv]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_bad_offset_spec_exits_2_before_publishing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_kafka(*args: object, **kwargs: object) -> None:
        raise AssertionError("Kafka was contacted")

    monkeypatch.setattr("stream.commands.replay.topic_ranges", no_kafka)
    assert main(["replay", "--from-topic", "x", "--start-offset", "0:a"]) == 2
    assert "expected N or PARTITION:N" in capsys.readouterr().err
