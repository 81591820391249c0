"""The documentation: every public name has a docstring, the API reference builds, and the
Python examples in README.md and docs/*.md compile and import only names that exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```",
                   re.DOTALL | re.MULTILINE)


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("avgen_docs_build", ROOT / "docs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no docs/__pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text("utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}",
                          textwrap.dedent(match.group("code"))))
    return found


EXAMPLES = _examples()


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 20
    assert {where.split(":")[0] for where, _ in EXAMPLES} >= {
        "README.md", "docs/getting-started.md", "docs/custom-agents.md",
        "docs/resilience.md", "docs/sessions.md"}


def test_every_public_name_is_documented() -> None:
    assert _load_build().undocumented() == []


# pdoc cannot tell where the ``__name__``/``__qualname__`` annotations of the
# `CachedFunction` protocol come from; harmless.
@pytest.mark.filterwarnings("ignore:Cannot determine where:UserWarning")
def test_api_reference_builds(tmp_path: Path) -> None:
    _load_build().build(tmp_path)
    page = (tmp_path / "avgen.html").read_text("utf-8")
    assert "VideoGenerator" in page
    assert (tmp_path / "avgen" / "resilience.html").is_file()
    assert (tmp_path / "avgen" / "agents" / "protocols.html").is_file()


def _exists(module: str, name: str) -> bool:
    imported = importlib.import_module(module)
    if hasattr(imported, name):
        return True
    return importlib.util.find_spec(f"{module}.{name}") is not None


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_compiles_and_imports_exist(where: str, code: str) -> None:
    # Notebook examples use top-level ``await``, which notebooks allow.
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "avgen":
            assert node.module is not None
            for alias in node.names:
                assert _exists(node.module, alias.name), \
                    f"{where}: `from {node.module} import {alias.name}`: no such name"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "avgen":
                    assert importlib.util.find_spec(alias.name) is not None, \
                        f"{where}: `import {alias.name}`: no such module"
