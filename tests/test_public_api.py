"""The public API is deliberate: which modules are public, and what each one exports."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import avgen
from avgen import _docs

PUBLIC = {"avgen", "avgen.agents", "avgen.agents.google", "avgen.agents.local",
          "avgen.agents.stock", "avgen.costs",
          "avgen.errors", "avgen.media", "avgen.notebook", "avgen.resilience", "avgen.testing"}


def every_module() -> list[ModuleType]:
    return [avgen] + [importlib.import_module(info.name) for info in
                      pkgutil.walk_packages(avgen.__path__, prefix="avgen.")
                      if info.name != "avgen.__main__"]


def test_the_reference_documents_exactly_the_public_modules() -> None:
    assert {module.__name__ for module in _docs.modules()} == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_exported_name_exists_and_the_list_is_sorted(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert all(hasattr(module, item) for item in exported)
    assert len(exported) == len(set(exported))


def test_private_modules_export_only_what_their_package_exports() -> None:
    """A private module's ``__all__`` is what its public package re-exports from it: no
    name is public in a module and hidden by its package, or the other way round."""
    disagreements = []
    for module in every_module():
        package_name, _, leaf = module.__name__.rpartition(".")
        if not leaf.startswith("_") or package_name not in PUBLIC:
            continue
        package = importlib.import_module(package_name)
        for item in getattr(module, "__all__", ()):
            if item not in package.__all__ or getattr(package, item) is not getattr(module, item):
                disagreements.append(f"{module.__name__}.{item}")
    assert disagreements == []


def test_every_public_name_comes_from_a_private_module_or_its_own() -> None:
    for name in PUBLIC:
        module = importlib.import_module(name)
        for item in module.__all__:
            origin = getattr(getattr(module, item), "__module__", None)
            if isinstance(origin, str) and origin.startswith("avgen"):
                assert origin == name or any(
                    part.startswith("_") for part in origin.split(".")[1:]) or origin in PUBLIC, (
                    f"{name}.{item} is defined in {origin}")


def test_the_guides_and_examples_use_only_the_public_api() -> None:
    root = Path(__file__).resolve().parent.parent
    texts = [*root.glob("docs/*.md"), *root.glob("examples/*.py"), *root.glob("examples/*.ipynb"),
             root / "README.md"]
    imported = re.compile(r"\b(?:from|import)\s+(avgen[\w.]*)")
    private = [f"{path.name}: {module}" for path in texts
               for module in imported.findall(path.read_text("utf-8"))
               if any(part.startswith("_") for part in module.split(".")[1:])]
    assert private == []


def _code(path: Path) -> list[str]:
    """The Python in a file: a module, a notebook's code cells, a page's ``python`` blocks."""
    text = path.read_text("utf-8")
    if path.suffix == ".py":
        return [text]
    if path.suffix == ".ipynb":
        return ["".join(cell["source"]) for cell in json.loads(text)["cells"]
                if cell["cell_type"] == "code"]
    fence = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
    return [textwrap.dedent(match.group(2)) for match in fence.finditer(text)]


def test_every_import_of_a_public_module_names_what_it_exports() -> None:
    """Code imports a public name from its one home: ``from avgen.X import name`` with
    ``avgen.X`` public names something in its ``__all__`` (or one of its modules)."""
    root = Path(__file__).resolve().parent.parent
    files = [*root.glob("avgen/**/*.py"), *root.glob("tests/**/*.py"), *root.glob("docs/*.py"),
             *root.glob("docs/*.md"), *root.glob("examples/*.py"),
             *root.glob("examples/*.ipynb"), *root.glob("benchmarks/*.py"), root / "README.md"]
    wrong = []
    for path in files:
        for code in _code(path):
            try:  # notebook cells may await at the top level
                tree = compile(code, str(path), "exec", dont_inherit=True,
                               flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            except SyntaxError:
                continue  # not Python (a shell line in a page): nothing to check
            for node in ast.walk(tree):
                if not (isinstance(node, ast.ImportFrom) and node.module in PUBLIC):
                    continue
                exported = importlib.import_module(node.module).__all__
                wrong += [f"{path.relative_to(root)}: from {node.module} import {alias.name}"
                          for alias in node.names if alias.name not in exported
                          and importlib.util.find_spec(f"{node.module}.{alias.name}") is None]
    assert wrong == []
