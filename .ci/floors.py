"""Print a pip constraints file that pins every dependency to its declared floor.

    python3 .ci/floors.py [EXTRA ...] > constraints.txt
    python .ci/floors.py --installed [EXTRA ...]

Reads pyproject.toml and pins each ``NAME>=FLOOR`` of ``[project].dependencies`` and of the
named optional extras (default: local, dev and notebook, the ones the README installs) to
``NAME==FLOOR``. Installing with these constraints runs the code at the oldest versions that
pyproject.toml claims to support, so a floor that is too low fails CI. Every requirement
must declare a floor: one without is an error, as is a floor that cannot be pinned.

With ``--installed``, run in the environment that was installed with those constraints: prints
each dependency's floor beside the version installed, and fails unless they are the same.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
DEFAULT_EXTRAS = ("local", "dev", "notebook")

# NAME, optional [extras], then the version specifiers, then an optional ; marker.
REQUIREMENT = re.compile(r"""
    ^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)
    \s*(?:\[[^\]]*\])?
    \s*(?P<specs>[^;]*?)
    \s*(?:;.*)?$
""", re.VERBOSE)
FLOOR = re.compile(r"^>=\s*(?P<version>[0-9][A-Za-z0-9.+!-]*)$")


def normalize(name: str) -> str:
    """The name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def floor(requirement: str) -> tuple[str, str]:
    """``(name, floor)`` of one requirement; ValueError when it declares no ``>=`` floor."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    floors = [FLOOR.match(spec.strip()) for spec in match["specs"].split(",") if spec.strip()]
    found = [m["version"] for m in floors if m]
    if len(found) != 1:
        raise ValueError(f"{requirement!r} must declare exactly one '>=' floor")
    return normalize(match["name"]), found[0]


def constraints(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"pyproject.toml has no optional extra {extra!r}")
        requirements += optional[extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        name, version = floor(requirement)
        if pins.setdefault(name, version) != version:
            raise ValueError(f"{name} has two different floors: {pins[name]} and {version}")
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def release(version: str) -> tuple[int, ...]:
    """The release numbers, without trailing zeros: "8" and "8.0.0" are the same release."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def check_installed(pins: list[str]) -> int:
    """Print floor and installed version of each pin; 1 unless every one is at its floor."""
    wrong = 0
    print(f"{'package':24} {'floor':10} installed")
    for pin in pins:
        name, version = pin.split("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "(missing)"
        mark = "" if release(installed) == release(version) else "  <- not the floor"
        wrong += bool(mark)
        print(f"{name:24} {version:10} {installed}{mark}")
    if wrong:
        print(f"floors.py: {wrong} package(s) not installed at their floor", file=sys.stderr)
    return 1 if wrong else 0


def main(argv: list[str]) -> int:
    installed = "--installed" in argv
    extras = [arg for arg in argv if arg != "--installed"]
    try:
        pins = constraints(extras or list(DEFAULT_EXTRAS))
    except ValueError as exc:
        print(f"floors.py: {exc}", file=sys.stderr)
        return 1
    if installed:
        return check_installed(pins)
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
