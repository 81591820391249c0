"""The figures docs/architecture.md gives, measured from the code rather than typed in.

Usage::

    python docs/architecture_figures.py          # print them

What it measures, from the source alone (nothing of avgen is run but its public
``__all__`` lists): the modules and their lines; every import between avgen's modules —
at the top of a file, inside a function and under ``TYPE_CHECKING`` alike — and the
circles they close; how far each module stands above the ones it imports (its layer); the
public names, and any object exported from two public modules; and the lines of the run
(`avgen._run.Run`). ``tests/test_architecture.py`` holds the code to the rules with the
same functions: no circle, and no import from a lower layer to a higher one.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PACKAGE", "circles", "imports", "main", "modules", "public_names"]

PACKAGE = Path(__file__).resolve().parent.parent / "avgen"
PUBLIC = ("avgen", "avgen.agents", "avgen.agents.google", "avgen.agents.local",
          "avgen.agents.stock", "avgen.costs", "avgen.errors", "avgen.media",
          "avgen.notebook", "avgen.resilience", "avgen.testing")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _targets(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement reaches."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            yield f"{base}.{alias.name}"
        yield base


def imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Every module's imports of other avgen modules: ``from a import b`` reaches module
    ``a.b`` when there is one, else ``a`` (every import counts, wherever it stands)."""
    known = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, name, path.name == "__init__.py"):
                if target in known and target != name:
                    graph[name].add(target)
                    if isinstance(node, ast.ImportFrom):
                        break  # the most specific module named
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's layer: 1 for one that imports no other, else one more than the
    highest it imports (only meaningful without circles)."""
    floor: dict[str, int] = {}

    def of(node: str, seen: frozenset[str]) -> int:
        if node not in floor:
            below = [of(after, seen | {node}) for after in graph[node] if after not in seen]
            floor[node] = 1 + max(below, default=0)
        return floor[node]

    for node in graph:
        of(node, frozenset())
    return floor


def public_names() -> tuple[set[str], dict[str, list[str]]]:
    """The names the public modules export, and each object exported by more than one
    public module (by the modules exporting it)."""
    names: set[str] = set()
    homes: dict[int, list[str]] = {}
    labels: dict[int, str] = {}
    for module_name in PUBLIC:
        module = importlib.import_module(module_name)
        for item in module.__all__:
            names.add(item)
            value = getattr(module, item)
            if isinstance(value, str | int | float | bool | tuple | frozenset | type(None)):
                continue  # a constant's identity says nothing
            homes.setdefault(id(value), []).append(module_name)
            labels[id(value)] = item
    shared = {labels[key]: sorted(where) for key, where in homes.items() if len(where) > 1}
    return names, shared


def run_lines() -> int:
    """The lines of the class `avgen._run.Run`."""
    tree = ast.parse((PACKAGE / "_run.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Run":
            return (node.end_lineno or node.lineno) - node.lineno + 1
    return 0


def main() -> int:
    """Print the figures."""
    found = modules()
    graph = imports()
    lines = {name: len(path.read_text("utf-8").splitlines()) for name, path in found.items()}
    names, shared = public_names()
    floor = layers(graph)
    print(f"modules: {len(found)}, lines: {sum(lines.values())}, largest: "
          + ", ".join(f"{n} {c}" for n, c in sorted(lines.items(), key=lambda x: -x[1])[:3]))
    print(f"imports between modules: {sum(len(v) for v in graph.values())}; circles: "
          f"{len(circles(graph))}; layers: {max(floor.values())}")
    print(f"public names: {len(names)} in {len(PUBLIC)} public modules; objects exported "
          f"from two public modules: {len(shared)}"
          + (f" ({', '.join(sorted(shared))})" if shared else ""))
    print(f"Run: {run_lines()} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
