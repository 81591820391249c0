"""The structure docs/architecture.md describes, held against the code: imports run one way
(counting those inside functions and under ``TYPE_CHECKING``), and the public surface has
one home per name."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture_figures",
                                                  ROOT / "docs" / "architecture_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


FIGURES = _figures()


def test_no_import_closes_a_circle() -> None:
    graph = FIGURES.imports()
    assert FIGURES.circles(graph) == []


def test_the_analysis_sees_imports_inside_functions_and_under_type_checking(
        tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from pkg import high\n")
    (package / "high.py").write_text("from typing import TYPE_CHECKING\n"
                                     "if TYPE_CHECKING:\n    from pkg.low import f\n")
    graph = FIGURES.imports(package)
    assert graph["pkg.low"] == {"pkg.high"} and graph["pkg.high"] == {"pkg.low"}
    assert FIGURES.circles(graph) == [["pkg.high", "pkg.low"]]


# the layers of docs/architecture.md, top to bottom: a module may import only from its own
# layer or those below it
LAYERS = [
    ("avgen", "avgen.__main__", "avgen._cli", "avgen._batch_cli", "avgen._google_cli",
     "avgen._terminal", "avgen.notebook", "avgen._docs", "avgen._mcp", "avgen._desk"),
    ("avgen._generator", "avgen._report"),
    ("avgen._batch", "avgen._run", "avgen._fallback", "avgen._steps", "avgen._dask",
     "avgen._versions",
     "avgen._batch_pool"),
    ("avgen.agents", "avgen.testing"),
    ("avgen.media",),
    ("avgen._session", "avgen._reporting", "avgen._progress", "avgen._policy", "avgen._rows",
     "avgen._language"),
    ("avgen.costs",),
    ("avgen.resilience",),
    ("avgen._models", "avgen._validate", "avgen._ranking", "avgen._scratch", "avgen._hashing",
     "avgen._cache_root", "avgen._version", "avgen._threads"),
    ("avgen.errors",),
]


def _layer(module: str) -> int:
    best = None
    for depth, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (
                    best is None or len(name) > len(best[1])):
                best = (depth, name)
    assert best is not None, f"{module} has no layer in tests/test_architecture.py"
    return best[0]


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = [f"{module} -> {target}" for module, targets in FIGURES.imports().items()
              for target in targets if _layer(target) < _layer(module)]
    assert upward == []


def test_one_home_per_public_name_and_few_of_them() -> None:
    names, shared = FIGURES.public_names()
    assert shared == {}
    assert len(names) <= 120
    homes: dict[str, list[str]] = {}
    for module in FIGURES.PUBLIC:
        for name in importlib.import_module(module).__all__:
            homes.setdefault(name, []).append(module)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_each_concern_is_written_once() -> None:
    """Digests are taken in `avgen._hashing` only."""
    package = ROOT / "avgen"
    hashing = [str(path.relative_to(ROOT)) for path in sorted(package.rglob("*.py"))
               if "hashlib" in _imported_modules(path) and path.name != "_hashing.py"]
    assert hashing == []
