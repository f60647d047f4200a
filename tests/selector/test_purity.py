"""`selector` imports nothing but the standard library and numpy (STYLE.md rule 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import selector

ALLOWED = set(sys.stdlib_module_names) | {"numpy", "selector", "__future__"}
PACKAGE = Path(selector.__file__).parent


def test_source_imports_only_stdlib_and_numpy() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            offenders += [f"{path.name}: {r}" for r in roots if r not in ALLOWED]
    assert offenders == []


def test_importing_every_module_loads_no_third_party_package() -> None:
    # Modules the interpreter loaded before selector (site hooks) are not selector's.
    code = (
        "import sys, pkgutil, importlib\n"
        "before = set(sys.modules)\n"
        "import selector\n"
        "for m in pkgutil.walk_packages(selector.__path__, 'selector.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted({k.split('.')[0] for k in set(sys.modules) - before})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    third_party = [m for m in out if m not in ALLOWED and not m.startswith("_")]
    assert third_party == []
