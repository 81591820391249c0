"""The public API is deliberate: which modules are public, and what each one exports."""

from __future__ import annotations

import importlib
import pkgutil
import re
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
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    texts = [*root.glob("docs/*.md"), *root.glob("examples/*.py"), *root.glob("examples/*.ipynb"),
             root / "README.md"]
    imported = re.compile(r"\b(?:from|import)\s+(avgen[\w.]*)")
    private = [f"{path.name}: {module}" for path in texts
               for module in imported.findall(path.read_text("utf-8"))
               if any(part.startswith("_") for part in module.split(".")[1:])]
    assert private == []
