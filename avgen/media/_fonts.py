"""Fonts for captions: find one by family name, and tell which font draws each character.

avgen ships DejaVu Sans (Latin, Greek, Cyrillic, Hebrew, Arabic and more), so captions
render on a machine with no fonts installed. Another family is looked up among the bundled
fonts and the usual system font folders. A character the caption font lacks falls back, as
libass falls back when it draws: to the bundled fonts, then to the system's fonts as
fontconfig finds them (``fc-list``, when installed; the ffmpeg avgen runs has libass built
with fontconfig). What no font covers (typically colour emoji) is reported by `uncovered`,
and left out of the burned captions by the caller instead of drawn as boxes.

The reader here parses only what it needs of a TrueType/OpenType file: the ``name`` table
(family) and the ``cmap`` table (formats 4 and 12: which characters have glyphs).
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import os
import shutil
import struct
import subprocess
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


ICON_FAMILY = "lucide"
"""The family of the bundled icon font (Lucide, ISC licence), drawn on procedural cards."""


def bundled_fonts() -> tuple[FontFile, ...]:
    """The text fonts avgen ships, regular face first (the icon font is not one)."""
    return _bundled(bundled_fonts_dir())


@functools.cache
def _bundled(directory: Path) -> tuple[FontFile, ...]:
    paths = sorted((p for p in directory.iterdir() if p.suffix.lower() in _SUFFIXES),
                   key=lambda p: (len(p.name), p.name))
    fonts = (FontFile.read(p) for p in paths)
    return tuple(font for font in fonts if font.family != ICON_FAMILY)


@functools.cache
def _system_font_for(code: int) -> FontFile | None:
    """A system font fontconfig lists as covering ``code``, or None (also without fontconfig)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        proc = subprocess.run([fc_list, f":charset={code:x}", "file"], capture_output=True,
                              text=True, errors="replace", timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted({line.strip().removesuffix(":").strip() for line in proc.stdout.splitlines()
                    if line.strip()})
    for name in sorted(files, key=lambda f: (len(Path(f).name), f)):
        path = Path(name)
        if path.suffix.lower() not in (*_SUFFIXES, ".ttc", ".otc"):  # e.g. Noto Sans CJK
            continue
        try:
            font = FontFile.read(path)
        except ConfigurationError:
            continue
        if font.covers(chr(code)):
            return font
    return None


def _drawn(texts: Iterable[str]) -> dict[str, None]:
    """The characters of ``texts`` that need a glyph, in order, each once."""
    chars: dict[str, None] = {}
    for text in texts:
        for char in text:
            if char not in chars and unicodedata.category(char) not in _INVISIBLE:
                chars[char] = None
    return chars


def coverage(font: FontFile, texts: Iterable[str]) -> dict[str, FontFile | None]:
    """Which font draws each character of ``texts``: the first of the fallback chain.

    The chain is ``font`` (the caption font), then the bundled fonts, then the fonts
    already chosen for earlier characters, then a system font fontconfig lists for the
    character (none when ``fc-list`` is not installed). Characters that need no glyph
    (spaces, controls, format characters such as joiners) are left out.

    Args:
        font: The caption font.
        texts: The texts to be drawn.

    Returns:
        Each character needing a glyph, in order of first use, mapped to the font that
        draws it, or to ``None`` when no font here has it.
    """
    chain: list[FontFile] = [font, *bundled_fonts()]
    found: dict[str, FontFile | None] = {}
    for char in _drawn(texts):
        choice = next((f for f in chain if f.covers(char)), None)
        if choice is None:
            choice = _system_font_for(ord(char))
            if choice is not None:
                chain.append(choice)
        found[char] = choice
    return found


def uncovered(font: FontFile, texts: Iterable[str]) -> str:
    """The characters of ``texts`` no font of the chain (see `coverage`) can draw, in order,
    each once."""
    return "".join(char for char, by in coverage(font, texts).items() if by is None)
