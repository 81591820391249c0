"""Fonts for captions: find one by family name, and check it has the glyphs a text needs.

avgen ships DejaVu Sans (Latin, Greek, Cyrillic, Hebrew, Arabic and more), so captions
render on a machine with no fonts installed. Another family is looked up among the bundled
fonts and the usual system font folders. A text whose characters the font lacks fails
before the encode with an error naming the font and the characters, instead of rendering
boxes.

The reader here parses only what it needs of a TrueType/OpenType file: the ``name`` table
(family) and the ``cmap`` table (formats 4 and 12: which characters have glyphs).
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import os
import struct
import sys
import unicodedata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import attrs

from avgen.errors import ConfigurationError

__all__ = []

_SUFFIXES = (".ttf", ".otf")
_INVISIBLE = {"Cc", "Cf", "Zs", "Zl", "Zp"}  # controls, bidi marks, spaces: no glyph needed


def bundled_fonts_dir() -> Path:
    """The folder of fonts avgen ships."""
    return Path(str(resources.files("avgen.media").joinpath("fonts")))


def _system_dirs() -> list[Path]:
    home = Path.home()
    dirs = [home / ".fonts", home / ".local/share/fonts", Path("/usr/share/fonts"),
            Path("/usr/local/share/fonts")]
    if sys.platform == "darwin":
        dirs += [home / "Library/Fonts", Path("/Library/Fonts"), Path("/System/Library/Fonts")]
    if sys.platform == "win32":
        dirs.append(Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts")
    return dirs


@attrs.frozen
class FontFile:
    """A font file: its family name and the characters it has glyphs for."""

    path: Path
    """The font file."""
    family: str
    """Family name, e.g. ``"DejaVu Sans"``."""
    ranges: tuple[tuple[int, int], ...]
    """Covered code points as sorted inclusive ``(first, last)`` ranges."""

    @classmethod
    def read(cls, path: Path) -> FontFile:
        """Parse ``path``.

        Raises:
            ConfigurationError: The file is not a TrueType/OpenType font avgen can read.
        """
        try:
            data = path.read_bytes()
            tables = _tables(data)
            family = _family(data, tables["name"])
            ranges = _cmap(data, tables["cmap"])
        except (OSError, KeyError, struct.error, ValueError) as exc:
            raise ConfigurationError(f"cannot read the font {path}: {exc}") from exc
        return cls(path, family, ranges)

    def covers(self, char: str) -> bool:
        """True when the font has a glyph for ``char``."""
        code = ord(char)
        low, high = 0, len(self.ranges)
        while low < high:
            mid = (low + high) // 2
            first, last = self.ranges[mid]
            if code < first:
                high = mid
            elif code > last:
                low = mid + 1
            else:
                return True
        return False


def _tables(data: bytes) -> dict[str, tuple[int, int]]:
    if data[:4] == b"ttcf":
        (offset,) = struct.unpack_from(">I", data, 12)  # first font of a collection
    else:
        offset = 0
    (count,) = struct.unpack_from(">H", data, offset + 4)
    tables = {}
    for i in range(count):
        tag, _checksum, start, length = struct.unpack_from(">4sIII", data, offset + 12 + 16 * i)
        tables[tag.decode("latin-1")] = (start, length)
    return tables


def _family(data: bytes, table: tuple[int, int]) -> str:
    start = table[0]
    _fmt, count, strings = struct.unpack_from(">HHH", data, start)
    found: dict[int, str] = {}
    for i in range(count):
        platform, encoding, _lang, name_id, length, offset = struct.unpack_from(
            ">HHHHHH", data, start + 6 + 12 * i)
        if name_id not in (1, 16) or name_id in found:
            continue
        raw = data[start + strings + offset:start + strings + offset + length]
        if platform in (0, 3) or (platform == 2 and encoding == 1):
            found[name_id] = raw.decode("utf-16-be", "replace")
        elif platform == 1:
            found[name_id] = raw.decode("mac_roman", "replace")
    family = found.get(16) or found.get(1)
    if not family:
        raise ValueError("no family name")
    return family


def _cmap(data: bytes, table: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    start = table[0]
    _version, count = struct.unpack_from(">HH", data, start)
    subtables: dict[int, int] = {}
    for i in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, start + 4 + 8 * i)
        if (platform == 3 and encoding in (1, 10)) or platform == 0:
            fmt = struct.unpack_from(">H", data, start + offset)[0]
            subtables.setdefault(fmt, start + offset)
    ranges: list[tuple[int, int]] = []
    if 12 in subtables:
        base = subtables[12]
        (groups,) = struct.unpack_from(">I", data, base + 12)
        for g in range(groups):
            first, last, _glyph = struct.unpack_from(">III", data, base + 16 + 12 * g)
            ranges.append((first, last))
    elif 4 in subtables:
        base = subtables[4]
        (segx2,) = struct.unpack_from(">H", data, base + 6)
        segs = segx2 // 2
        ends = struct.unpack_from(f">{segs}H", data, base + 14)
        starts = struct.unpack_from(f">{segs}H", data, base + 16 + segx2)
        for first, last in zip(starts, ends, strict=True):
            if first != 0xFFFF:
                ranges.append((first, last))
    else:
        raise ValueError("no Unicode cmap (format 4 or 12)")
    return tuple(sorted(ranges))


@functools.cache
def _catalogue(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """Family name (lower case) → font file, bundled fonts first. Read once per process."""
    found: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.suffix.lower() not in _SUFFIXES:
                continue
            try:
                font = FontFile.read(path)
            except ConfigurationError:
                continue
            key = font.family.lower()
            # prefer the regular face: the shortest file name of a family
            if key not in found or len(path.name) < len(found[key].name):
                found[key] = path
    return found


def find_font(family: str, extra_dirs: Iterable[Path] = ()) -> FontFile:
    """The font file of ``family`` (a family name, or a path to a font file).

    Raises:
        ConfigurationError: No bundled or system font has that family.
    """
    candidate = Path(family).expanduser()
    if candidate.suffix.lower() in _SUFFIXES:
        if not candidate.is_file():
            raise ConfigurationError(f"font file not found: {family!r}")
        return FontFile.read(candidate)
    dirs = (bundled_fonts_dir(), *extra_dirs, *_system_dirs())
    path = _catalogue(tuple(dirs)).get(family.lower())
    if path is None:
        raise ConfigurationError(
            f"font {family!r} was not found among the bundled fonts or in "
            f"{', '.join(str(d) for d in dirs[1:])}; use 'DejaVu Sans' (bundled) or give "
            "the path of a .ttf/.otf file")
    return FontFile.read(path)


def missing_glyphs(font: FontFile, texts: Iterable[str]) -> str:
    """The characters of ``texts`` that ``font`` cannot draw (in order, each once)."""
    missing: dict[str, None] = {}
    for text in texts:
        for char in text:
            if char in missing or unicodedata.category(char) in _INVISIBLE:
                continue
            if not font.covers(char):
                missing[char] = None
    return "".join(missing)
