"""The layering contract (README, "Layout"), checked on the source, and the check itself
shown to catch each kind of forbidden import."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.imports import (
    FRAMEWORKS,
    cycles,
    import_graph,
    source_modules,
    violations,
)

GRAPH = import_graph(source_modules())
PURE = ("stream.wire", "stream.handlers", "stream.ops")


def test_the_source_keeps_every_layering_rule() -> None:
    assert [str(v) for v in violations(GRAPH)] == []


def test_there_are_no_import_cycles_bench_included() -> None:
    assert cycles(GRAPH) == []
    assert any(name.startswith("bench.") for name in GRAPH)


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.extend([target] if target in GRAPH else [])
    return seen


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith(PURE)))
def test_pure_packages_reach_no_framework_even_indirectly(module: str) -> None:
    assert _reachable(module) & set(FRAMEWORKS) == set()


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in list(root.rglob("*")):
        if path.is_dir():
            (path / "__init__.py").touch()


def test_the_check_catches_each_forbidden_import(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "selector/core.py": "from stream.worker import app\n",
            "stream/wire/codec.py": "import faust\n",
            "stream/handlers/selection.py": "from stream.adapters import redis_store\n",
            "stream/ops/metrics.py": "def f():\n    import redis\n",
            "stream/job/run.py": "from stream.commands import topics\n",
            "stream/demo/run.py": "from bench import cli\n",
            "stream/worker/app.py": "",
            "stream/adapters/redis_store.py": "",
            "stream/commands/topics.py": "",
            "stream/cli.py": "from stream.commands import topics\n",
            "bench/cli.py": "from bench import runner\n",
            "bench/runner.py": "from . import cli\n",
        },
    )
    found = {(v.importer, v.imported) for v in violations(import_graph(source_modules(tmp_path)))}
    assert found == {
        ("selector.core", "stream.worker.app"),
        ("stream.wire.codec", "faust"),
        ("stream.handlers.selection", "stream.adapters.redis_store"),
        ("stream.ops.metrics", "redis"),
        ("stream.job.run", "stream.commands.topics"),
        ("stream.demo.run", "bench.cli"),
    }
    assert cycles(import_graph(source_modules(tmp_path))) == [["bench.cli", "bench.runner"]]
