"""avgen's public types work for its users: ``mypy --strict`` (with the repo's configuration)
accepts typical user code, ``tests/typing/user_code.py``, and still catches the mistakes in
``tests/typing/misuse.py``.

The files in ``tests/typing/`` are type-checked, never run (and never collected: their names
do not start with ``test_``). Each mistake in ``misuse.py`` carries a
``# type: ignore[<code>]``; with ``--warn-unused-ignores`` an ignore that is no longer needed
(the signature stopped catching the mistake) or names another code fails the check, and
`test_every_mistake_is_caught` proves each ignore is load-bearing by removing them all.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
IGNORE = re.compile(r"  # type: ignore\[([a-z-]+(?:, *[a-z-]+)*)\]$")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for this module's runs, outside the work tree (a cold run takes a
    few seconds; the next ones reuse it)."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(*targets: Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mypy --strict --warn-unused-ignores TARGETS`` from the repository
    root with its ``pyproject.toml``."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--strict", "--warn-unused-ignores", "--no-error-summary", "--hide-error-context",
         "--no-pretty", "--cache-dir", str(cache_dir), *map(str, targets)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_user_code_type_checks_and_misuse_is_caught(cache_dir: Path) -> None:
    files = sorted(TYPING.glob("*.py"))
    assert [f.name for f in files] == ["misuse.py", "user_code.py"]
    proc = mypy(TYPING, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_mistake_is_caught(tmp_path: Path, cache_dir: Path) -> None:
    lines = (TYPING / "misuse.py").read_text("utf-8").splitlines()
    expected: dict[int, set[str]] = {}
    stripped = []
    for number, line in enumerate(lines, start=1):
        match = IGNORE.search(line)
        if match:
            expected[number] = {code.strip() for code in match.group(1).split(",")}
            line = line[:match.start()]
        stripped.append(line)
    assert len(expected) >= 20
    target = tmp_path / "misuse_unignored.py"
    target.write_text("\n".join(stripped) + "\n", "utf-8")

    proc = mypy(target, cache_dir=cache_dir)
    found: dict[int, set[str]] = {}
    for number, code in re.findall(r"^[^:\n]+:(\d+): error: .*\[([a-z-]+)\]$", proc.stdout,
                                   re.MULTILINE):
        found.setdefault(int(number), set()).add(code)
    assert proc.returncode == 1
    assert found == expected, proc.stdout
