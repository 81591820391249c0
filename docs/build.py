"""Build avgen's API reference with pdoc, refusing to build it with undocumented names.

Usage::

    python docs/build.py              # writes docs/api/
    python docs/build.py --out DIR    # writes DIR/
    python docs/build.py --check      # only the undocumented-name check

Exits 1, listing them, if a public name has no docstring: for every module of the
``avgen`` package (except ``avgen.__main__`` and private modules, whose name starts with
``_``), each class and function named in the module's ``__all__``, and the public methods
and properties of the classes the module defines. Importing this file does nothing.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

PACKAGE = "avgen"
DOCS = Path(__file__).resolve().parent
DEFAULT_OUT = DOCS / "api"


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
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, (property, functools.cached_property)):
            found.append((name, value))
    return found


def undocumented() -> list[str]:
    """Qualified names of the public classes, functions, methods and properties without a
    docstring, sorted."""
    missing: set[str] = set()
    for module in modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants, type aliases, instances
            where = f"{getattr(obj, '__module__', module.__name__)}.{obj.__qualname__}"
            if not _has_doc(obj):
                missing.add(where)
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                for member, value in _members(obj):
                    if not _has_doc(value):
                        missing.add(f"{where}.{member}")
    return sorted(missing)


def build(out: Path) -> None:
    """Render the HTML reference of the package into ``out``."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="google", footer_text="avgen API reference")
    # pdoc follows a package's __all__ to find submodules, and most of avgen's lists name
    # no modules: give it every public module explicitly (some it then finds twice).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The module specification .* adds a module")
        pdoc.pdoc(*(module.__name__ for module in modules()), output_directory=out)


def main(argv: list[str] | None = None) -> int:
    """Check the docstrings, then build; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="only check for undocumented names; build nothing")
    args = parser.parse_args(argv)
    missing = undocumented()
    if missing:
        print(f"{len(missing)} public name(s) have no docstring:", file=sys.stderr)
        for name in missing:
            print(f"  {name}", file=sys.stderr)
        return 1
    if not args.check:
        build(args.out)
        print(f"API reference written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
