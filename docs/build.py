"""Build avgen's API reference with pdoc, refusing to build it with undocumented names.

Usage::

    python docs/build.py              # writes docs/api/
    python docs/build.py --out DIR    # writes DIR/
    python docs/build.py --check      # only the undocumented-name check

A thin wrapper over ``avgen docs`` (the logic lives in the package, ``avgen._docs``, so the
installed command works without a checkout); the only difference is that the default
output folder here is this file's ``docs/api/`` wherever it is run from. Exits 1, listing
them, if a public name has no docstring: for every module of the ``avgen`` package (except
``avgen.__main__`` and private modules, whose name starts with ``_``), each class and
function named in the module's ``__all__``, and the public methods and properties of the
classes the module defines. Importing this file does nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avgen._docs import PACKAGE, build, modules, run, undocumented
from avgen.errors import ConfigurationError

__all__ = ["DEFAULT_OUT", "PACKAGE", "build", "main", "modules", "undocumented"]

DOCS = Path(__file__).resolve().parent
DEFAULT_OUT = DOCS / "api"


def main(argv: list[str] | None = None) -> int:
    """Check the docstrings, then build; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="only check for undocumented names; build nothing")
    args = parser.parse_args(argv)
    try:
        return run(args.out, check_only=args.check)
    except ConfigurationError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
