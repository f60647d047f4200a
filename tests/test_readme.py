"""The README is a doctest too: its Python snippets run, and every command it names
exists with a working --help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("code", python_blocks())
def test_python_snippets_run(code: str) -> None:
    exec(compile(code, "README.md", "exec"), {})


def test_named_scripts_exist_and_are_executable() -> None:
    root = Path(__file__).parent.parent
    for script in set(re.findall(r"^(scripts/\w+)", README, flags=re.M)):
        path = root / script
        assert path.exists() and path.stat().st_mode & 0o111, script


@pytest.mark.parametrize(
    "command",
    sorted(set(re.findall(r"^creative-select ([a-z-]+(?: [a-z]+)?)", README, flags=re.M))),
)
def test_commands_in_the_readme_have_help(command: str) -> None:
    words = [w for w in command.split() if not w.startswith("-")]
    subcommand = words[:1] if words[0] != "bench" else words[:2]
    out = subprocess.run(
        [sys.executable, "-m", "stream.cli", *subcommand, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage:" in out.stdout
