"""Read a batch of video requests from a JSONL or CSV file, every row checked before any work.

A row holds `avgen.VideoRequest` fields by name. The rules, for both formats:

- **Field names** are those of `VideoRequest`: ``topic``, ``script``, ``preset``,
  ``duration``, ``voice``, ``captions``, ``language``, ``title``, ``transition``,
  ``soundtrack``, ``fit``, ``caption_style``, ``style``, ``characters``, ``languages``,
  ``translations``, ``voices``. An unknown name is an error listing the known ones (a typo
  is never ignored).
- **Languages** (``languages``) are BCP 47 tags, the original first: ``en,es,de`` in a CSV
  cell or a JSON string, or a JSON array (``["en", "es"]``); ``translations`` and ``voices``
  are JSON objects of texts by language (``{"es": "..."}``), in a CSV cell too.
- **Nested fields** (``preset``, ``transition``, ``soundtrack``, ``caption_style``) are given
  either whole or by parts, never both in one row:

  - by parts, as dotted names: ``soundtrack.music``, ``soundtrack.loudness``,
    ``caption_style.font_size``, ``transition.style``, ``transition.seconds``,
    ``preset.width`` … (any field of `Soundtrack`, `CaptionStyle`, `Transition`, `Preset`);
    parts not given take their defaults, except that a preset by parts needs ``name``,
    ``width`` and ``height``;
  - whole: ``preset`` as a name from `PRESETS` (``shorts``, ``draft`` …, any case);
    ``transition`` as a style name (``fade``); ``caption_style`` as a name from
    `CAPTION_STYLES` (``pop``); or any of the four as a JSON object of its
    fields (``{"music": "song.mp3"}``), which is how `VideoRequest.to_dict` writes them.

- **Music paths** (``soundtrack.music``): ``~`` is expanded, and a relative path is taken
  relative to ``base``: for `read_requests`, the folder of the requests file, not the
  working directory. The file must exist; absolute paths and ``..`` are allowed (the file
  is the user's own, like the command line).
- **Duplicate rows** are allowed.

In a **CSV** file (UTF-8, a byte-order mark is tolerated; comma-separated, ``"`` quotes
cells, a quoted cell may span lines) the first non-blank line is the header of field names
(surrounding spaces ignored; an unknown or repeated name is reported once, at the header's
line); each further line is one request. Every cell is text, read by the field's type:

- an empty cell, or one of whitespace only, means "not given": the field's default;
- numbers (``duration``, ``soundtrack.loudness``, ``caption_style.font_size`` …) are decimal
  (``30``, ``2.5``, ``-14``, ``1e-3``); integer fields (``caption_style.max_lines``,
  ``preset.width`` …) take whole numbers only;
- flags (``captions``, ``soundtrack.duck``, ``caption_style.bold``) are ``true``/``false``,
  ``yes``/``no`` or ``1``/``0``, in any case;
- text (``topic``, ``script``, ``title``, ``fit`` …) is taken as written, spaces and line
  breaks included; names, numbers, flags and paths ignore surrounding spaces; a cell of a
  nested field that starts with ``{`` is read as a JSON object (with the JSONL rules);
- a row whose cells are all empty is skipped; a value under a column without a name (or past
  the header's last column) is an error.

In a **JSONL** file (``.jsonl`` or ``.ndjson``, UTF-8) each non-blank line is one JSON
object; values keep their JSON types, and are checked as the Python values would be
(``"duration": "30"`` is refused, ``"duration": 30`` accepted), with the same whole-or-parts
rule: ``"preset": "shorts"``, ``"transition": "fade"``, ``"soundtrack.music": "a.mp3"`` and
``"soundtrack": {"music": "a.mp3"}`` all work. ``null`` is the value ``None``, accepted where
the field may be ``None`` (``topic``, ``script``, ``duration``, ``voice``, ``title``,
``soundtrack.music``, ``caption_style.margin``). A key given twice in one object is an error
(named by the key alone, not its path).

**Errors**: every row is checked, then one `avgen.errors.UsageError` reports what is wrong:
its ``field`` names the first problem's place, ``<file> line <n>: <field>`` (``<file>`` as
given; ``<n>`` the 1-based physical line the row starts on, counting the header and blank
lines) or ``<source>[<i>]: <field>`` for Python rows (0-based); a problem with the whole row
or file names no field (``requests.jsonl line 4``, ``requests.csv``). Its message lists up to
`MAX_PROBLEMS` (ten) problems in file order, one per line, each but the first with its
place, then how many more there are; a row reports every value that cannot be read, or else
the first problem `VideoRequest` finds. A file without rows is an error too::

    requests.csv line 7: duration: must be a number such as 30 or 2.5, not 'soon'
    requests.csv line 9: preset: unknown preset 'tv'; choose one of draft, reels, …
"""

from __future__ import annotations

__docformat__ = "google"

import collections.abc
import csv
import difflib
import io
import json
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

import attrs

from avgen._models import (
    CaptionStyle,
    Preset,
    Transition,
    VideoRequest,
    VisualStyle,
    caption_style,
    preset,
    visual_style,
)
from avgen._validate import flag, number, text
from avgen.errors import UsageError

__all__ = ["read_requests", "requests_from_rows"]

MAX_PROBLEMS = 10
"""Most problems one error lists; the rest are counted."""

SUFFIXES: Mapping[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
"""The file suffixes `read_requests` accepts (in any case), and the format of each."""

_BY_NAME = frozenset({"preset", "transition", "caption_style", "style"})
"""Nested fields that may also be given whole as a name (a preset, a transition style, a
caption style) or, for ``style``, as plain text."""

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@attrs.frozen
class _List:
    """A field holding a list of an attrs class's objects (given as a JSON array)."""

    item: type


@attrs.frozen
class _Raw:
    """A field the request checks itself: ``languages`` (``en,es`` or a JSON array) and the
    texts by language (``translations``, ``voices``: a JSON object)."""

    shape: str
    """``"array"`` or ``"object"``: what a CSV cell starting with ``[`` or ``{`` holds."""


@attrs.frozen
class _Scalar:
    """What a plain field holds: its Python type and whether ``None`` is allowed."""

    kind: type
    optional: bool


def _scalar(hint: Any) -> _Scalar | None:
    """The `_Scalar` of a type hint (``float | None``, ``Literal["a", "b"]`` …), or ``None``
    for anything else (a nested attrs class)."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(rest) < len(typing.get_args(hint))
        if len(rest) != 1:
            return None
        hint = rest[0]
    if typing.get_origin(hint) is Literal and all(
            isinstance(arg, str) for arg in typing.get_args(hint)):
        hint = str
    return _Scalar(hint, optional) if hint in (str, int, float, bool, Path) else None


def _init_names(cls: type) -> dict[str, Any]:
    """An attrs class's ``__init__`` arguments and their resolved type hints, in order."""
    hints = typing.get_type_hints(cls)
    return {field.alias or field.name: hints[field.name]
            for field in attrs.fields(cls) if field.init}


def _rules() -> tuple[dict[str, _Scalar | _List | _Raw | type], dict[str, dict[str, _Scalar]],
                     dict[str, tuple[str, ...]]]:
    """`_FIELDS`, `_PARTS` and `_REQUIRED`, read from the classes' type hints.

    Raises:
        TypeError: A field has a type no rule here reads (a new field needs one).
    """
    fields: dict[str, _Scalar | _List | _Raw | type] = {}
    parts: dict[str, dict[str, _Scalar]] = {}
    required: dict[str, tuple[str, ...]] = {}
    for name, hint in _init_names(VideoRequest).items():
        kind = _scalar(hint)
        if kind is not None:
            fields[name] = kind
            continue
        if hint == tuple[str, ...]:
            fields[name] = _Raw("array")
            continue
        if typing.get_origin(hint) in (Mapping, collections.abc.Mapping):
            fields[name] = _Raw("object")
            continue
        if typing.get_origin(hint) is tuple and attrs.has(typing.get_args(hint)[0]):
            fields[name] = _List(typing.get_args(hint)[0])
            continue
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if not attrs.has(hint):  # pragma: no cover - a new field type needs a rule here
            raise TypeError(f"no row rule for VideoRequest.{name}: {hint!r}")
        fields[name] = hint
        parts[name] = {}
        for sub, sub_hint in _init_names(hint).items():
            sub_kind = _scalar(sub_hint)
            if sub_kind is None:  # pragma: no cover - a new field type needs a rule here
                raise TypeError(f"no row rule for {hint.__name__}.{sub}: {sub_hint!r}")
            parts[name][sub] = sub_kind
        required[name] = tuple(field.alias or field.name for field in attrs.fields(hint)
                               if field.init and field.default is attrs.NOTHING)
    return fields, parts, required


_FIELDS, _PARTS, _REQUIRED = _rules()
"""Every field of `VideoRequest` (its `_Scalar`, or its nested attrs class); the fields of
each nested class, by the request field that holds it; and those a nested class cannot do
without (a preset's name and size)."""

_Problems = list[tuple[str, str]]
"""(field, problem) pairs, in the order found."""


class _Bad:
    """The result of a value that could not be read (its problem is already recorded)."""


_BAD = _Bad()


def read_requests(path: str | os.PathLike[str], *, base: Path | None = None
                  ) -> list[VideoRequest]:
    """Read and check every video request in a JSONL or CSV file.

    The rules are in this module's docstring: one request per row, `VideoRequest` field
    names, nested fields whole or by dotted parts, empty CSV cells for defaults.

    Args:
        path: A ``.jsonl``/``.ndjson`` or ``.csv`` file (the suffix chooses the format).
        base: The folder relative music paths are taken from; default the file's folder.

    Returns:
        The requests, in file order (duplicates kept).

    Raises:
        UsageError: The suffix is not one of `SUFFIXES`, the file cannot be read, has no
            rows, or any row is bad; ``field`` names the file, line and field of the first
            problem, and the message lists up to `MAX_PROBLEMS` of them.
    """
    source = os.fspath(path)
    file = Path(source)
    form = SUFFIXES.get(file.suffix.lower())
    if form is None:
        kind = f"a {file.suffix} file" if file.suffix else "a file without a suffix"
        raise UsageError(source, f"cannot read requests from {kind}; give a file ending in "
                         f"one of {', '.join(SUFFIXES)}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(source, f"cannot read: {exc.strerror or exc}") from exc
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{source} line {line}", f"is not UTF-8 text (byte "
                         f"{data[exc.start]:#04x}); save the file as UTF-8") from None
    folder = base if base is not None else file.absolute().parent
    if form == "csv":
        return _read_csv(content, source, folder)
    return _read_jsonl(content, source, folder)


def requests_from_rows(rows: Iterable[Mapping[str, Any] | VideoRequest], *,
                       source: str = "requests", base: Path | None = None
                       ) -> list[VideoRequest]:
    """Check rows of request fields given in Python, with the rules of a JSONL file.

    Args:
        rows: Mappings of `VideoRequest` fields (values typed as in JSON, or as Python
            objects: a `Preset`, `Transition`, `Soundtrack` or `CaptionStyle` whole, a
            music path as a `Path`; nested fields whole or by dotted parts), or ready
            `VideoRequest` objects, passed through unchanged.
        source: How errors name the rows: ``source[i]`` for the row at index ``i`` (from 0).
        base: The folder relative music paths are taken from; default as given (the
            working directory).

    Returns:
        The requests, in order.

    Raises:
        UsageError: There are no rows, or any row is bad; ``field`` names the first
            problem's row and field (``requests[3]: duration``), and the message lists up
            to `MAX_PROBLEMS` of them.

    Example:
        >>> [r.preset.name for r in requests_from_rows([{"topic": "Tides", "preset": "shorts"}])]
        ['shorts']
        >>> requests_from_rows([{"topic": "Tides"}, {"topic": "Moon", "duration": "30"}])
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: requests[1]: duration: must be a finite number or None, not '30'
    """
    if isinstance(rows, str | bytes | Mapping):
        raise UsageError(source, f"must be a list of rows, not one {type(rows).__name__}")
    problems: _Problems = []
    requests: list[VideoRequest] = []
    count = 0
    for index, row in enumerate(rows):
        count += 1
        where = f"{source}[{index}]"
        if isinstance(row, VideoRequest):
            requests.append(row)
        elif not isinstance(row, Mapping):
            problems.append((where, f"must be a mapping of request fields or a VideoRequest, "
                             f"not {type(row).__name__}"))
        else:
            _collect(row, where, cells=False, base=base, problems=problems,
                     requests=requests)
    if not count:
        problems.append((source, "has no rows; give at least one request"))
    _raise(problems)
    return requests


def _read_jsonl(content: str, source: str, base: Path) -> list[VideoRequest]:
    problems: _Problems = []
    requests: list[VideoRequest] = []
    for number_, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source} line {number_}"
        try:
            data = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            problems.append((where, f"is not valid JSON: {exc.msg} (column {exc.colno}); each "
                             "line must be one JSON object"))
            continue
        except UsageError as exc:
            problems.append((f"{where}: {exc.field}", exc.problem))
            continue
        except RecursionError:
            problems.append((where, "is nested too deeply"))
            continue
        if not isinstance(data, dict):
            problems.append((where, f"must be a JSON object of request fields, not "
                             f"{_json_kind(data)}"))
            continue
        _collect(data, where, cells=False, base=base, problems=problems, requests=requests)
    if not requests and not problems:
        problems.append((source, "has no requests; write one JSON object per line"))
    _raise(problems)
    return requests


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (json keeps the last)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise UsageError(key, "is given twice in one object")
        seen[key] = value
    return seen


def _json_kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _read_csv(content: str, source: str, base: Path) -> list[VideoRequest]:
    problems: _Problems = []
    requests: list[VideoRequest] = []
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    names: list[str | None] = []  # per column: its field, "" unnamed, None refused
    header_line = 0
    rows = 0
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((f"{source} line {start}", f"is not valid CSV: {exc}"))
            break
        if all(not cell.strip() for cell in cells):
            continue
        if not header_line:
            header_line = start
            names = _header(cells, f"{source} line {start}", problems)
            continue
        rows += 1
        where = f"{source} line {start}"
        row: dict[str, str] = {}
        for column, cell in enumerate(cells):
            if not cell.strip():
                continue
            name = names[column] if column < len(names) else ""
            if name == "":
                problems.append((f"{where}: column {column + 1}", f"has a value but no "
                                 f"name in the header (line {header_line})"))
            elif name is not None:
                row[name] = cell
        _collect(row, where, cells=True, base=base, problems=problems, requests=requests)
    if not header_line and not problems:
        problems.append((source, "is empty; its first line must name the fields, such as "
                         "topic,preset,duration"))
    elif header_line and not rows and not problems:
        problems.append((source, f"has a header (line {header_line}) but no rows; give one "
                         "request per line"))
    _raise(problems)
    return requests


def _header(cells: list[str], where: str, problems: _Problems) -> list[str | None]:
    """The field of each column: its name, ``""`` for a column without a name, or ``None``
    for one whose name is refused (unknown or repeated: a problem is recorded)."""
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for column, cell in enumerate(cells):
        name = cell.strip()
        trouble = _unknown(name, "column") if name else None
        if name in seen:
            trouble = f"appears twice in the header (columns {seen[name] + 1} and {column + 1})"
        if trouble:
            problems.append((f"{where}: {name}", trouble))
            names.append(None)
            continue
        if name:
            seen[name] = column
        names.append(name)
    return names


def _unknown(key: str, noun: str) -> str | None:
    """Why ``key`` is not a field name (with a suggestion), or ``None`` if it is one."""
    name, dot, sub = key.partition(".")
    if name not in _FIELDS:
        return (f"unknown {noun}{_suggest(key)}; known: {', '.join(_FIELDS)}, and parts of "
                f"{', '.join(_PARTS)} such as soundtrack.music")
    if dot and name not in _PARTS:
        return f"unknown {noun}: {name} has no parts; give it as one value"
    if dot and sub not in _PARTS[name]:
        return (f"unknown {noun}{_suggest(key)}; {name} has {', '.join(_PARTS[name])}")
    return None


def _suggest(key: str) -> str:
    """`` (did you mean x?)`` for the field name closest to ``key``, or ``""``."""
    dotted = [f"{name}.{sub}" for name, parts in _PARTS.items() for sub in parts]
    leaf = [name for name in dotted if name.endswith(f".{key}")]
    close = leaf or difflib.get_close_matches(key, [*_FIELDS, *dotted], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _collect(row: Mapping[Any, Any], where: str, *, cells: bool, base: Path | None,
             problems: _Problems, requests: list[VideoRequest]) -> None:
    """Build one row's request into ``requests``, or its problems, placed at ``where``."""
    found: _Problems = []
    request = _request(row, cells=cells, base=base, problems=found)
    problems.extend((f"{where}: {field}", problem) for field, problem in found)
    if request is not None:
        requests.append(request)


def _request(row: Mapping[Any, Any], *, cells: bool, base: Path | None,
             problems: _Problems) -> VideoRequest | None:
    """One row as a `VideoRequest`; ``None`` when ``problems`` has gained what is wrong."""
    start = len(problems)
    whole: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    for key, value in row.items():
        if not isinstance(key, str):
            problems.append((repr(key), "field names must be strings"))
            continue
        trouble = _unknown(key, "column" if cells else "field")
        if trouble:
            problems.append((key, trouble))
            continue
        name, _, sub = key.partition(".")
        if sub:
            parts.setdefault(name, {})[sub] = value
        else:
            whole[name] = value
    values: dict[str, Any] = {}
    for name, value in whole.items():
        if name in parts:
            dotted = ", ".join(f"{name}.{sub}" for sub in parts[name])
            problems.append((name, f"is given whole and by parts ({dotted}); give one or "
                             "the other"))
            continue
        values[name] = _value(name, value, cells=cells, base=base, problems=problems)
    for name, given in parts.items():
        if name not in whole:
            values[name] = _nested(name, given, cells=cells, base=base, problems=problems)
    if len(problems) > start:
        return None
    made = _build(VideoRequest, values, "request", problems)
    return None if made is _BAD else cast(VideoRequest, made)


def _value(name: str, value: Any, *, cells: bool, base: Path | None,
           problems: _Problems) -> Any:
    """A field given whole, read by its type (``_BAD`` when it cannot be)."""
    kind = _FIELDS[name]
    if isinstance(kind, _Scalar):
        try:
            return _scalar_value(name, kind, value, cells=cells, base=base)
        except UsageError as exc:
            problems.append((exc.field, exc.problem))
            return _BAD
    if isinstance(kind, _List):
        return _list(name, kind.item, value, cells=cells, base=base, problems=problems)
    if isinstance(kind, _Raw):  # VideoRequest checks these and names what is wrong
        if cells and value.strip().startswith(("[", "{")):
            return _json_cell(name, value, kind.shape, problems)
        if cells and kind.shape == "object":
            problems.append((name, "must be a JSON object of texts by language, such as "
                             '{"es": "..."}'))
            return _BAD
        return value
    if value is None and not cells:
        return None  # an optional nested field (style)
    named = name in _BY_NAME
    if cells and value.strip().startswith("{"):
        value = _json_cell(name, value, "object", problems)
        if value is _BAD:
            return _BAD
        if not isinstance(value, dict):  # pragma: no cover - "{" starts an object
            problems.append((name, "must be a JSON object"))
            return _BAD
        return _nested(name, value, cells=False, base=base, problems=problems)
    if named and isinstance(value, str):
        try:
            return _by_name(name, value.strip() if cells else value)
        except UsageError as exc:  # named after the field given (not transition.style)
            problems.append((name, exc.problem))
            return _BAD
    if not cells and isinstance(value, kind):
        return value
    if not cells and isinstance(value, Mapping):
        return _nested(name, value, cells=False, base=base, problems=problems)
    example = {"preset": '"shorts"', "transition": '"fade"',
               "soundtrack": '{"music": "song.mp3"}',
               "caption_style": '"pop"', "style": '"watercolour"'}.get(name, "{...}")
    given = f"not {type(value).__name__} {value!r}" if not cells else f"not {value!r}"
    problems.append((name, f"must be {'a name or ' if named else ''}an object of "
                     f"{kind.__name__} fields such as {example}, or given by parts "
                     f"({name}.{next(iter(_PARTS[name]))} …), {given}"))
    return _BAD


def _by_name(name: str, value: str) -> Preset | Transition | CaptionStyle | VisualStyle | None:
    """A preset, a transition or a caption style given by its name; a style by its text."""
    if name == "caption_style":
        return caption_style(value)
    if name == "style":
        return visual_style(value)
    return preset(value) if name == "preset" else Transition(value)


def _json_cell(name: str, cell: str, shape: str, problems: _Problems) -> Any:
    """A CSV cell's JSON ``shape`` (``"object"``, ``"array"``), or `_BAD` with why."""
    try:
        return json.loads(cell, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        problems.append((name, f"is not a valid JSON {shape}: {exc.msg} "
                         f"(column {exc.colno})"))
    except UsageError as exc:
        problems.append((f"{name}.{exc.field}", exc.problem))
    return _BAD


def _list(name: str, item: type, value: Any, *, cells: bool, base: Path | None,
          problems: _Problems) -> Any:
    """A list of ``item`` objects given as a JSON array of objects (``_BAD`` if bad)."""
    if cells:
        value = _json_cell(name, value, "array", problems)
        if value is _BAD:
            return _BAD
    if not isinstance(value, list | tuple):
        problems.append((name, f"must be a JSON array of {item.__name__} objects such as "
                         '[{"name": "Ada", "appearance": "…"}], not '
                         f"{_json_kind(value) if not cells else repr(value)}"))
        return _BAD
    spec = {sub: _scalar(hint) for sub, hint in _init_names(item).items()}
    made: list[Any] = []
    for index, entry in enumerate(value):
        where = f"{name}[{index}]"
        if isinstance(entry, item):
            made.append(entry)
            continue
        if not isinstance(entry, Mapping):
            problems.append((where, f"must be an object of {item.__name__} fields"))
            return _BAD
        values: dict[str, Any] = {}
        for sub, given in entry.items():
            kind = spec.get(sub) if isinstance(sub, str) else None
            if kind is None:
                problems.append((f"{where}.{sub}", f"unknown field; {item.__name__} has "
                                 f"{', '.join(spec)}"))
                return _BAD
            try:
                values[sub] = _scalar_value(f"{where}.{sub}", kind, given, cells=False,
                                            base=base)
            except UsageError as exc:
                problems.append((exc.field, exc.problem))
                return _BAD
        needed = [field.alias or field.name for field in attrs.fields(item)
                  if field.init and field.default is attrs.NOTHING]
        missing = [sub for sub in needed if sub not in values]
        if missing:
            problems.append((where, f"needs {', '.join(needed)}; missing "
                             f"{', '.join(missing)}"))
            return _BAD
        built = _build(item, values, where, problems)
        if built is _BAD:
            field, problem = problems[-1]
            problems[-1] = (field if field.startswith(where) else f"{where}.{field}",
                            problem)
            return _BAD
        made.append(built)
    return tuple(made)


def _nested(name: str, given: Mapping[Any, Any], *, cells: bool, base: Path | None,
            problems: _Problems) -> Any:
    """A nested field from its parts (dotted columns or a JSON object); ``_BAD`` if bad."""
    kind = _FIELDS[name]
    assert isinstance(kind, type)
    spec = _PARTS[name]
    values: dict[str, Any] = {}
    bad = False
    for sub, value in given.items():
        field = f"{name}.{sub}"
        trouble = _unknown(field, "field") if isinstance(sub, str) else "must be a string"
        if trouble:
            problems.append((field, trouble))
            bad = True
            continue
        try:
            values[sub] = _scalar_value(field, spec[sub], value, cells=cells, base=base)
        except UsageError as exc:
            problems.append((exc.field, exc.problem))
            bad = True
    missing = [sub for sub in _REQUIRED[name] if sub not in given]
    if missing:
        problems.append((name, f"needs {', '.join(_REQUIRED[name])} when given by its "
                         f"fields; missing {', '.join(missing)}"
                         + (" (or give a preset name such as 'shorts')" if name == "preset"
                            else "")))
        bad = True
    if bad:
        return _BAD
    return _build(kind, values, name, problems)


def _build(kind: Callable[..., Any], values: Mapping[str, Any], name: str,
           problems: list[tuple[str, str]]) -> Any:
    """``kind(**values)``, or `_BAD` with what it refused added to ``problems``."""
    try:
        return kind(**values)
    except UsageError as exc:
        problems.append((exc.field, exc.problem))
    except (TypeError, ValueError, AttributeError) as exc:  # pragma: no cover - typed above
        problems.append((name, f"is not a valid {getattr(kind, '__name__', name)}: {exc}"))
    return _BAD


def _scalar_value(field: str, kind: _Scalar, value: Any, *, cells: bool,
                  base: Path | None) -> Any:
    """A plain value read by its type: parsed from a CSV cell, or checked as given.

    Raises:
        UsageError: The value is not of the field's type (ranges are the classes' to check).
    """
    if cells:
        raw = value.strip()
        if kind.kind is bool:
            if raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise UsageError(field, f"must be true or false (or yes/no, 1/0), not {value!r}")
        if kind.kind is int:
            if _INTEGER.fullmatch(raw):
                return int(raw)
            raise UsageError(field, f"must be a whole number, not {value!r}")
        if kind.kind is float:
            if _DECIMAL.fullmatch(raw):
                return float(raw)
            raise UsageError(field, f"must be a number such as 30 or 2.5, not {value!r}")
        if kind.kind is Path:
            return _path(raw, base)
        return value
    if value is None and kind.optional:
        return None
    if kind.kind is str:
        return text(field, value, optional=kind.optional)
    if kind.kind is Path:
        if isinstance(value, str | os.PathLike):
            return _path(value, base)
        raise UsageError(field, f"must be a file path (a string), not {type(value).__name__} "
                         f"{value!r}")
    if kind.kind is bool:
        return flag(field, value)
    return number(field, value, integer=kind.kind is int, optional=kind.optional)


def _path(value: str | os.PathLike[str], base: Path | None) -> Path:
    """``value`` with ``~`` expanded, relative to ``base`` unless absolute."""
    path = Path(value).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _raise(problems: _Problems) -> None:
    """Raise one `UsageError` for ``problems`` (placed at the first), if there are any."""
    if not problems:
        return
    field, first = problems[0]
    lines = [first, *(f"{where}: {problem}" for where, problem in problems[1:MAX_PROBLEMS])]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"… and {len(problems) - MAX_PROBLEMS} more problems")
    raise UsageError(field, "\n".join(lines))
