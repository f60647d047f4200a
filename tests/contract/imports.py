"""The project's imports, read from the source (nothing is imported), and the layering
contract they must keep (README, "Layout").

A module's imports are every `import` and `from ... import` in it, at any depth
(functions and `TYPE_CHECKING` blocks included): a lazy import is still a dependency.
`from package import name` counts as an import of `package.name` when that is a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("selector", "stream", "bench")
FRAMEWORKS = ("faust", "aiokafka", "confluent_kafka", "redis", "mode")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imports_of(name: str, source: str, known: Mapping[str, object]) -> set[str]:
    """Modules (ours by full name, others by their top-level name) that `source` imports."""
    out: set[str] = set()
    package = name if name in known and _is_package(name, known) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            modules = {f"{base}.{a.name}" for a in node.names} & set(known)
            out.update(modules)
            if len(modules) < len(node.names):  # names defined in `base` itself
                out.add(base)
    return {m if _ours(m, known) else m.split(".")[0] for m in out}


def _is_package(name: str, known: Mapping[str, object]) -> bool:
    path = known[name]
    return isinstance(path, Path) and path.name == "__init__.py"


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _ours(module: str, known: Mapping[str, object]) -> bool:
    return module.split(".")[0] in PACKAGES and module in known


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), modules) - {name}
        for name, path in modules.items()
    }


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.importer} imports {self.imported}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(graph: Mapping[str, set[str]]) -> list[Violation]:
    """Every import that breaks the layering rules."""
    found = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            for rule in _broken_rules(importer, target):
                found.append(Violation(rule, importer, target))
    return found


def _broken_rules(importer: str, target: str) -> list[str]:
    rules = []
    if _within(importer, "selector") and (_within(target, "stream") or _within(target, "bench")):
        rules.append("selector imports nothing of stream or bench")
    pure = ("stream.wire", "stream.handlers", "stream.ops")
    if any(_within(importer, p) for p in pure) and target in FRAMEWORKS:
        rules.append("wire, handlers and ops import no Kafka, Faust or Redis client")
    if any(_within(importer, p) for p in pure) and (
        _within(target, "stream.worker") or _within(target, "stream.adapters")
    ):
        rules.append("wire, handlers and ops import neither the worker nor the adapters")
    if _within(target, "stream.commands") and not (
        importer == "stream.cli" or _within(importer, "stream.commands")
    ):
        rules.append("only stream.cli imports stream.commands")
    if _within(importer, "stream") and _within(target, "bench"):
        rules.append("nothing in stream imports bench")
    return rules


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
