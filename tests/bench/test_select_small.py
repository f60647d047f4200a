"""The small-batch benchmark times each path and leaves the service's threshold as it was."""

from __future__ import annotations

from bench import select_small
from stream.handlers import account_decisions


def test_a_tiny_run_times_both_paths_and_restores_the_threshold() -> None:
    before = account_decisions.SMALL
    result = select_small.run([1, 4], requests=40, repeats=1, seed=1)
    assert before == account_decisions.SMALL
    assert [row["requests_per_call"] for row in result["rows"]] == [1, 4]
    for row in result["rows"]:
        assert all(row[name] > 0 for name in ("one by one", "vectorized", "default"))
    assert "requests/call" in select_small.format_table(result)
