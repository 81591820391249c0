"""The documentation: every public name has a docstring, the API reference builds (with
``avgen docs``, and ``docs/build.py`` wraps it), the package docstring carries the README's
quick start, and the Python examples in README.md and docs/*.md compile and import only
names that exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import avgen
from avgen import _docs
from avgen._cli import main
from avgen._models import Video

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
        "docs/resilience.md", "docs/sessions.md", "docs/google.md"}


def test_every_public_name_is_documented() -> None:
    assert _load_build().undocumented() == []


def test_a_variables_docstring_is_found_where_it_is_assigned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkgdoc"
    package.mkdir()
    (package / "_impl.py").write_text('A = 1\n"""What A is."""\nB = 2\n\nC: int = 3\n'
                                      '"""What C is."""\n', "utf-8")
    (package / "_again.py").write_text("from pkgdoc._impl import C as D\n", "utf-8")
    (package / "__init__.py").write_text(
        "from pkgdoc._impl import A, B\nfrom ._again import D\n__all__ = ['A', 'B', 'D']\n",
        "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("pkgdoc")
    assert _docs.variable_docstring(module, "A") == "What A is."
    assert _docs.variable_docstring(module, "B") == ""
    assert _docs.variable_docstring(module, "D") == "What C is."
    assert _docs.variable_docstring(module, "nothing") == ""


@pytest.mark.slow
def test_avgen_docs_builds_the_api_reference(tmp_path: Path) -> None:
    out = tmp_path / "api"
    proc = subprocess.run([sys.executable, "-m", "avgen", "docs", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"API reference written to {out}")
    assert "Cannot determine where" not in proc.stderr  # pdoc's known, harmless warnings
    assert "avgen.html" in (out / "index.html").read_text("utf-8")
    page = (out / "avgen.html").read_text("utf-8")
    assert "VideoGenerator" in page and "Octopuses have three hearts" in page
    for name, words in (("TRANSITION_STYLES", "xfade"), ("PRESETS", "built-in presets"),
                        ("CAPTION_STYLES", "named caption styles")):
        shown = re.search(rf'id="{name}">(.*?)</section>', page, re.S)  # re-exported values
        assert shown is not None and words in shown[1], name
    assert (out / "avgen" / "resilience.html").is_file()
    assert (out / "avgen" / "agents.html").is_file()
    assert not (out / "avgen" / "media" / "_graph.html").exists()
    notebook = (out / "avgen" / "notebook.html").read_text("utf-8")
    assert "ProgressBar" in notebook and "embed_limit" in notebook
    assert not (out / "avgen" / "_docs.html").exists()  # private modules are left out


def test_avgen_docs_refuses_undocumented_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Video.to_moviepy, "__doc__", None)
    monkeypatch.setattr(Video, "__doc__", "  ")
    assert main(["docs", "--out", str(tmp_path / "api")]) == 1
    err = capsys.readouterr().err
    assert "2 public name(s) have no docstring" in err
    assert "  avgen.Video\n" in err and "  avgen.Video.to_moviepy\n" in err
    assert not (tmp_path / "api").exists()  # nothing is built
    assert main(["docs", "--check"]) == 1


def test_avgen_docs_without_pdoc_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pdoc", None)  # `import pdoc` raises ImportError
    assert main(["docs", "--out", str(tmp_path / "api")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avgen: error: building the API reference needs pdoc")
    assert "avgen[dev]" in err and "Traceback" not in err
    assert main(["docs", "--check"]) == 0  # the check alone needs no pdoc
    assert capsys.readouterr().out == "every public name has a docstring\n"


def test_build_script_wraps_avgen_docs() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "every public name has a docstring\n"
    build = _load_build()
    assert build.DEFAULT_OUT == ROOT / "docs" / "api"
    assert build.undocumented is avgen._docs.undocumented


def _quick_start(text: str) -> ast.AST:
    return ast.parse(textwrap.dedent(text))


def test_package_docstring_has_the_readme_quick_start() -> None:
    readme = next(code for where, code in EXAMPLES if where.startswith("README.md:"))
    doc = avgen.__doc__ or ""
    block = re.search(r"Quick start[^\n]*::\n\n(?P<code>(?:    .*\n|\n)+)", doc)
    assert block is not None, "no `Quick start::` block in avgen's docstring"
    # The same code (the docstring may wrap lines differently).
    assert ast.dump(_quick_start(block.group("code"))) == ast.dump(_quick_start(readme))


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
