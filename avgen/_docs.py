"""Build avgen's API reference with pdoc, refusing to build it with undocumented names.

Used by ``avgen docs`` and by ``docs/build.py``. A public name, here, is: every module of
the ``avgen`` package (except ``avgen.__main__`` and private modules, whose name starts with
``_``), each class and function named in the module's ``__all__``, and the public methods
and properties of the classes the module defines. pdoc comes with the ``dev`` extra; it is
imported only by `build`.
"""

from __future__ import annotations

__docformat__ = "google"

import ast
import functools
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import TextIO

from avgen.errors import ConfigurationError

__all__: list[str] = []

PACKAGE = "avgen"
"""The package documented."""


def modules() -> list[ModuleType]:
    """Every public module of the package, imported, in name order."""
    root = importlib.import_module(PACKAGE)
    found = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{PACKAGE}."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts[1:]):
            continue  # private modules and avgen.__main__
        found.append(importlib.import_module(info.name))
    return sorted(found, key=lambda module: module.__name__)


def _has_doc(obj: object) -> bool:
    doc = getattr(obj, "__doc__", None)
    return isinstance(doc, str) and bool(doc.strip())


def _members(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties defined in the body of ``cls``."""
    found: list[tuple[str, object]] = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, (property, functools.cached_property)):
            found.append((name, value))
    return found


def _source_tree(module: ModuleType) -> ast.Module | None:
    """The parsed source of ``module``, or None when it has none."""
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return None


def variable_docstring(module: ModuleType, name: str) -> str:
    """The docstring of the module-level variable ``name`` (a constant, a type alias):
    the string right after its assignment, in ``module`` or, when ``module`` imports the
    name, where it comes from (followed through re-exports). ``""`` when there is none.

    pdoc reads such a docstring only in the module that assigns the variable, so a name
    re-exported from a private module shows none; `build` gives pdoc this one.
    """
    for _ in range(10):  # re-exports of re-exports, not forever
        tree = _source_tree(module)
        if tree is None:
            return ""
        origin: tuple[str, str] | None = None
        for node, after in zip(tree.body, [*tree.body[1:], None], strict=True):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                        and isinstance(after.value.value, str)):
                    return inspect.cleandoc(after.value.value)
                return ""
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        package = module.__name__ if hasattr(module, "__path__") \
                            else module.__name__.rpartition(".")[0]
                        where = importlib.util.resolve_name(
                            "." * node.level + (node.module or ""), package) \
                            if node.level else (node.module or "")
                        origin = (where, alias.name)
        if origin is None:
            return ""
        module, name = importlib.import_module(origin[0]), origin[1]
    return ""


def _exported_variables(module: ModuleType) -> list[str]:
    """The names in ``module.__all__`` that are neither classes, functions nor modules."""
    return [name for name in getattr(module, "__all__", ())
            if hasattr(module, name) and not (
                inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj)
                or inspect.ismodule(obj))]


def undocumented() -> list[str]:
    """Public names of the classes, functions, methods and properties without a docstring,
    sorted (each named where the API exports it)."""
    missing: set[str] = set()
    seen: set[int] = set()
    for module in modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue  # constants, type aliases, instances (below); or met already
            seen.add(id(obj))
            where = f"{module.__name__}.{obj.__qualname__}"
            if not _has_doc(obj):
                missing.add(where)
            if inspect.isclass(obj) and obj.__module__.split(".")[0] == PACKAGE:
                for member, value in _members(obj):
                    if not _has_doc(value):
                        missing.add(f"{where}.{member}")
        for name in _exported_variables(module):
            if not variable_docstring(module, name):
                missing.add(f"{module.__name__}.{name}")
    return sorted(missing)


def build(out: Path) -> None:
    """Render the HTML reference of the package into ``out`` (``index.html`` and one page
    per module).

    Raises:
        ConfigurationError: pdoc is not installed.
    """
    try:
        import pdoc
        import pdoc.render
    except ImportError as exc:
        raise ConfigurationError(
            "building the API reference needs pdoc, which is not installed: install the "
            "development extra, e.g. `python -m pip install \"avgen[dev]\"` (or "
            "`python -m pip install -e \".[dev]\"` in a checkout)") from exc

    pdoc.render.configure(docformat="google", footer_text="avgen API reference")
    # pdoc follows a package's __all__ to find submodules, and most of avgen's lists name
    # no modules: give it every public module explicitly (some it then finds twice).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The module specification .* adds a module")
        # pdoc cannot tell where the ``__name__``/``__qualname__`` annotations of the
        # `CachedFunction` protocol come from, and says so; harmless.
        warnings.filterwarnings("ignore", category=UserWarning, message=r"Cannot determine "
                                r"where \S+\.CachedFunction\.__(qual)?name__ is taken from")
        _render(Path(out))


def _render(out: Path) -> None:
    """What ``pdoc.pdoc(..., output_directory=out)`` does, with the docstrings of variables
    re-exported from private modules filled in (`variable_docstring`)."""
    from pdoc import doc, extract, render

    documented: dict[str, doc.Module] = {}
    for name in extract.walk_specs([module.__name__ for module in modules()]):
        documented[name] = doc.Module.from_name(name)
    for page in documented.values():
        for member in page.members.values():
            if isinstance(member, doc.Variable) and not member.docstring:
                member.docstring = variable_docstring(page.obj, member.name)
    for page in documented.values():
        target = out / f"{page.fullname.replace('.', '/')}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render.html_module(page, documented).encode())
    index = render.html_index(documented)
    if index:
        (out / "index.html").write_bytes(index.encode())
    search = render.search_index(documented)
    if search:
        (out / "search.js").write_bytes(search.encode())


def run(out: Path, *, check_only: bool = False, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """Check that every public name has a docstring, then build the reference into ``out``.

    Args:
        out: The output folder (created if needed).
        check_only: Only check the docstrings; build nothing.
        stdout: Where the success line goes (default: `sys.stdout`).
        stderr: Where the undocumented names go (default: `sys.stderr`).

    Returns:
        The exit status: 0 built (or checked), 1 some public names have no docstring (each
        one is printed, and nothing is built).

    Raises:
        ConfigurationError: pdoc is not installed (only when building).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    missing = undocumented()
    if missing:
        print(f"{len(missing)} public name(s) have no docstring; document them to build the "
              "API reference:", file=stderr)
        for name in missing:
            print(f"  {name}", file=stderr)
        return 1
    if check_only:
        print("every public name has a docstring", file=stdout)
        return 0
    build(out)
    print(f"API reference written to {out} (open {Path(out) / 'index.html'})", file=stdout)
    return 0
