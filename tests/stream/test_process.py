"""Process set-up: native thread pools limited before numpy loads, and kept when set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stream.process import NATIVE_THREAD_VARIABLES, limit_native_threads


def test_unset_thread_variables_become_one_and_set_ones_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    values = limit_native_threads()
    assert values["OMP_NUM_THREADS"] == "3"
    assert all(values[n] == "1" for n in NATIVE_THREAD_VARIABLES if n != "OMP_NUM_THREADS")
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


def test_the_command_line_sets_them_before_numpy_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k not in NATIVE_THREAD_VARIABLES}
    probe = (
        "import sys, os; import stream.cli as c; "
        "c.build_parser = (lambda b: lambda: (print('numpy' in sys.modules, "
        "os.environ.get('OPENBLAS_NUM_THREADS')), b())[1])(c.build_parser); "
        "c.main(['topics', '--help'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert out.stdout.splitlines()[0] == "False 1", out.stderr
