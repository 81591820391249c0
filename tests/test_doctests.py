"""The examples in the docstrings run, and show what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import avgen

# every module of the package, private ones included: the examples live with the code
MODULES = [avgen] + [importlib.import_module(info.name) for info in
                     pkgutil.walk_packages(avgen.__path__, prefix="avgen.")
                     if info.name != "avgen.__main__"]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=True)
    assert result.failed == 0


def test_there_are_docstring_examples() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(test.examples) for module in MODULES for test in finder.find(module))
    assert examples >= 20
