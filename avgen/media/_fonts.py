"""Fonts for captions: find one by family name, and tell which font draws each character.

avgen ships DejaVu Sans (Latin, Greek, Cyrillic, Hebrew, Arabic and more) and Noto Emoji
(monochrome outline emoji), so captions render on a machine with no fonts installed.
Another family is looked up among the bundled fonts and the usual system font folders. A
character the caption font lacks falls back: to the bundled fonts (emoji to Noto Emoji),
then to the system's fonts as fontconfig finds them (``fc-list``, when installed; the
ffmpeg avgen runs has libass built with fontconfig, and both honour ``FONTCONFIG_FILE``).
`faces` names the font of every character the caption font does not draw, and the ASS
text names that font for exactly those characters (``\\fn`` override tags), so libass
draws each with the font chosen here whatever fontconfig would pick.

Only fonts libass can draw count: colour fonts (bitmap emoji in ``CBDT`` or ``sbix``
tables, such as ``NotoColorEmoji.ttf``, layered ``COLR`` or ``SVG`` glyphs) come out as
boxes or not at all, so they never cover a character here. What no font covers is reported
by `uncovered` (with `font_package`, a package that has it), and left out of the burned
captions by the caller instead of drawn as boxes.

The reader here parses only what it needs of a TrueType/OpenType file: the table directory
(outlines or colour pictures), the ``name`` table (family) and the ``cmap`` table (formats
4 and 12: which characters have glyphs).
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
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import attrs

from avgen.errors import ConfigurationError

__all__ = []

_SUFFIXES = (".ttf", ".otf")
_INVISIBLE = {"Cc", "Cf", "Zs", "Zl", "Zp"}  # controls, bidi marks, spaces: no glyph needed
_OUTLINES = ("glyf", "CFF ", "CFF2")
"""Tables of glyph outlines: what FreeType, and so libass, draws."""
_COLOUR = ("CBDT", "sbix", "COLR", "SVG ")
"""Tables of colour glyphs (bitmaps, layers, SVG): libass draws none of them."""
EMOJI_FAMILY = "Noto Emoji"
"""The family of the bundled monochrome emoji font (SIL Open Font License)."""


@functools.cache
def bundled_fonts_dir() -> Path:
    """The folder of fonts avgen ships (found once: it is where the package is)."""
    return Path(str(resources.files("avgen.media").joinpath("fonts")))


def _system_dirs() -> tuple[Path, ...]:
    return _system_dirs_of(os.path.expanduser("~"), sys.platform,
                           os.environ.get("WINDIR", r"C:\Windows"))


@functools.lru_cache(maxsize=8)
def _system_dirs_of(home_dir: str, platform: str, windir: str) -> tuple[Path, ...]:
    """The folders fonts are installed in, for this home folder (made once: a batch looks
    up each row's caption font)."""
    home = Path(home_dir)
    dirs = [home / ".fonts", home / ".local/share/fonts", Path("/usr/share/fonts"),
            Path("/usr/local/share/fonts")]
    if platform == "darwin":
        dirs += [home / "Library/Fonts", Path("/Library/Fonts"), Path("/System/Library/Fonts")]
    if platform == "win32":
        dirs.append(Path(windir) / "Fonts")
    return tuple(dirs)


@attrs.frozen
class FontFile:
    """A font file: its family name and the characters it has glyphs for."""

    path: Path
    """The font file."""
    family: str
    """Family name, e.g. ``"DejaVu Sans"``."""
    ranges: tuple[tuple[int, int], ...]
    """Covered code points as sorted inclusive ``(first, last)`` ranges."""
    drawable: bool = True
    """libass can draw it: its glyphs are outlines, not colour pictures (a colour emoji
    font such as ``NotoColorEmoji.ttf`` is not)."""

    @classmethod
    def read(cls, path: Path) -> FontFile:
        """Parse ``path``.

        A file is parsed once while it stays the same (its size and modification time): a
        batch checks each row's caption font without reading the file again.

        Raises:
            ConfigurationError: The file is not a TrueType/OpenType font avgen can read.
        """
        try:
            stat = path.stat()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the font {path}: {exc}") from exc
        return _read_font(path, stat.st_size, stat.st_mtime_ns)

    @classmethod
    def _parse(cls, path: Path) -> FontFile:
        try:
            data = path.read_bytes()
            tables = _tables(data)
            family = _family(data, tables["name"])
            ranges = _cmap(data, tables["cmap"])
        except (OSError, KeyError, struct.error, ValueError) as exc:
            raise ConfigurationError(f"cannot read the font {path}: {exc}") from exc
        drawable = (any(tag in tables for tag in _OUTLINES)
                    and not any(tag in tables for tag in _COLOUR))
        return cls(path, family, ranges, drawable)

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


@functools.lru_cache(maxsize=64)
def _read_font(path: Path, size: int, mtime_ns: int) -> FontFile:
    """`FontFile.read`'s parse, once per file version (``size`` and ``mtime_ns`` key it)."""
    return FontFile._parse(path)


def _family_name(path: Path) -> str:
    """The family name of the font file ``path``, reading only its table directory and
    its ``name`` table (a catalogue of thousands of fonts reads kilobytes of each, not
    their glyphs).

    Raises:
        OSError: The file cannot be read.
        KeyError: It has no ``name`` table.
        struct.error: It is cut short.
        ValueError: It is not a font, or names no family.
    """
    with path.open("rb") as file:
        head = file.read(16)
        offset = struct.unpack_from(">I", head, 12)[0] if head[:4] == b"ttcf" else 0
        if offset > _MAX_HEAD:
            raise ValueError("the collection's first font lies too far in")
        head += file.read(max(0, offset + 12 - len(head)))  # to its table count
        if head[offset:offset + 4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
            raise ValueError("not a TrueType/OpenType font")
        (count,) = struct.unpack_from(">H", head, offset + 4)
        head += file.read(max(0, offset + 12 + 16 * count - len(head)))  # its tables
        start, length = _tables(head)["name"]
        if length > _MAX_NAME_TABLE:
            raise ValueError("name table too large")
        file.seek(start)
        table = file.read(length)
    return _family(table, (0, length))


_MAX_NAME_TABLE = 1 << 20
"""The largest ``name`` table a catalogue reads (real ones are a few kilobytes)."""
_MAX_HEAD = 1 << 20
"""How far into a collection its first font's table directory may lie (a real one follows
the collection's header)."""


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
                key = _family_name(path).lower()
            except (OSError, KeyError, struct.error, ValueError):
                continue
            # prefer the regular face: the shortest file name of a family
            if key not in found or len(path.name) < len(found[key].name):
                found[key] = path
    return found


def find_font(family: str, extra_dirs: Iterable[Path] = ()) -> FontFile:
    """The font file of ``family`` (a family name, or a path to a font file).

    Raises:
        ConfigurationError: No bundled or system font has that family.
    """
    if os.path.splitext(family)[1].lower() in _SUFFIXES:  # a path (a family name has none)
        candidate = Path(family).expanduser()
        if not candidate.is_file():
            raise ConfigurationError(f"font file not found: {family!r}")
        found = FontFile.read(candidate)
    else:
        dirs = (bundled_fonts_dir(), *extra_dirs, *_system_dirs())
        path = _catalogue(tuple(dirs)).get(family.lower())
        if path is None:
            raise ConfigurationError(
                f"font {family!r} was not found among the bundled fonts or in "
                f"{', '.join(str(d) for d in dirs[1:])}; use 'DejaVu Sans' (bundled) or give "
                "the path of a .ttf/.otf file")
        found = FontFile.read(path)
    if not found.drawable:
        raise ConfigurationError(
            f"font {family!r} ({found.path}) holds colour pictures, not outlines: captions "
            "cannot be drawn in it; use 'DejaVu Sans' (bundled) or an outline font")
    return found


ICON_FAMILY = "lucide"
"""The family of the bundled icon font (Lucide, ISC licence), drawn on procedural cards."""


def bundled_fonts() -> tuple[FontFile, ...]:
    """The text fonts avgen ships, in fallback order: DejaVu Sans (regular face first),
    then Noto Emoji (the icon font is not one)."""
    return _bundled(bundled_fonts_dir())


@functools.cache
def _bundled(directory: Path) -> tuple[FontFile, ...]:
    fonts = [FontFile.read(p) for p in directory.iterdir() if p.suffix.lower() in _SUFFIXES]
    fonts.sort(key=lambda f: (f.family == EMOJI_FAMILY, len(f.path.name), f.path.name))
    return tuple(font for font in fonts if font.family != ICON_FAMILY)


def _fontconfig_setup() -> tuple[str | None, ...]:
    """What decides the fonts fontconfig lists, besides the system's own files."""
    return tuple(os.environ.get(name) for name in ("FONTCONFIG_FILE", "FONTCONFIG_PATH",
                                                    "FONTCONFIG_SYSROOT", "HOME"))


def _system_font_for(code: int) -> FontFile | None:
    """A system font libass can draw that fontconfig lists as covering ``code``, or None
    (also without fontconfig)."""
    return _system_font(code, _fontconfig_setup())


@functools.cache
def _system_font(code: int, _setup: tuple[str | None, ...]) -> FontFile | None:
    """`_system_font_for` once per code point and fontconfig setup (the process's
    environment at the call)."""
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
        if font.drawable and font.covers(chr(code)):
            return font
    return None


def _needs_glyph(char: str) -> bool:
    """False for what is drawn as nothing: spaces, controls, format characters (joiners,
    bidi marks) and variation selectors (they choose a form; the font of the character
    before them draws it)."""
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return False
    return unicodedata.category(char) not in _INVISIBLE


def _drawn(texts: Iterable[str]) -> dict[str, None]:
    """The characters of ``texts`` that need a glyph, in order, each once."""
    chars: dict[str, None] = {}
    for text in texts:
        for char in text:
            if char not in chars and _needs_glyph(char):
                chars[char] = None
    return chars


def coverage(font: FontFile, texts: Iterable[str]) -> dict[str, FontFile | None]:
    """Which font draws each character of ``texts``: the first of the fallback chain.

    The chain is ``font`` (the caption font), then the bundled fonts (DejaVu Sans, then
    Noto Emoji), then the fonts already chosen for earlier characters, then a system font
    fontconfig lists for the character (none when ``fc-list`` is not installed). Only
    fonts libass can draw are in the chain (`FontFile.drawable`): a colour emoji font
    never is. Characters that need no glyph (spaces, controls, format characters such as
    joiners, variation selectors) are left out.

    Args:
        font: The caption font.
        texts: The texts to be drawn.

    Returns:
        Each character needing a glyph, in order of first use, mapped to the font that
        draws it, or to ``None`` when no font here has it.
    """
    chain: list[FontFile] = [f for f in (font, *bundled_fonts()) if f.drawable]
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


def faces(font: FontFile, texts: Iterable[str]) -> dict[str, str | None]:
    """The characters of ``texts`` that another family than ``font``'s draws (see
    `coverage`), each mapped to that family's name, or to ``None`` when no font has it."""
    own = font.family.casefold()
    return {char: None if by is None else by.family
            for char, by in coverage(font, texts).items()
            if by is None or by.family.casefold() != own}


def font_runs(text: str, faces: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
    """``text`` cut where the font that draws it changes.

    Args:
        text: The text to draw.
        faces: From `faces`: the family of each character another font draws, or ``None``
            when no font has it.

    Returns:
        ``(piece, family)`` in order: ``family`` is ``None`` for the caption font's own
        characters. Characters with no font are left out; characters that need no glyph
        (joiners, variation selectors) and combining marks stay in the piece they follow,
        so a sequence (an emoji with its joiners and modifiers, a letter with its marks) is
        drawn by one font.
    """
    out: list[tuple[str, str | None]] = []
    for char in text:
        joins = bool(out) and (unicodedata.category(char) in ("Cf", "Mn", "Mc", "Me")
                               or (not _needs_glyph(char) and not char.isspace()))
        if char in faces and faces[char] is None:
            continue  # no font has it
        family = out[-1][1] if joins else faces.get(char)
        if out and out[-1][1] == family:
            out[-1] = (out[-1][0] + char, family)
        else:
            out.append((char, family))
    return out


_PACKAGES = (
    (("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "HALFWIDTH",
      "FULLWIDTH", "KANGXI"), "fonts-noto-cjk"),
)
"""Debian and Ubuntu packages of the fonts that cover a writing system, by the start of
its characters' Unicode names."""


def font_package(char: str) -> str | None:
    """A Debian/Ubuntu package with a font libass can draw ``char`` in: ``fonts-noto-cjk``
    for Chinese, Japanese and Korean, ``fonts-noto-core`` for the other writing systems
    and symbols; ``None`` for an emoji (the bundled Noto
    Emoji has every emoji of its Unicode version, and no package adds an outline font of
    a newer one)."""
    name = unicodedata.name(char, "")
    for prefixes, package in _PACKAGES:
        if name.startswith(prefixes):
            return package
    if ord(char) >= 0x1F000 and unicodedata.category(char) in ("So", "Cn"):
        return None
    return "fonts-noto-core"
