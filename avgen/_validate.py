"""The one way avgen checks a number or a flag it was given.

`number` and `flag` check a value and return it unchanged, or raise
`avgen.errors.UsageError` naming the field and stating what is allowed, in one format::

    max_chars: must be an int >= 80, not 12
    timeout: must be a finite number > 0 or None, not nan
    audio: must be True or False, not 1

`number_validator` is `number` as an attrs validator, for ``attrs.field(validator=...)``;
it names the field after the attribute (its ``__init__`` argument) unless told otherwise.

A bool is never a number here, although Python makes it an int: ``attempts=True`` is a
mistake, not 1.
"""

from __future__ import annotations

__docformat__ = "google"

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import attrs

from avgen.errors import UsageError

__all__: list[str] = []  # internal: imported by name where it is used

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]  # (instance, attribute, value)


def _show(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def _allowed(*, integer: bool, low: float | None, high: float | None, low_inclusive: bool,
             high_inclusive: bool, optional: bool, finite: bool) -> str:
    """What `number` accepts, in words: ``an int from 1 to 10``, ``a finite number > 0``,
    ``a finite number from 0 to below 0.5``."""
    words = "an int" if integer else "a finite number" if finite else "a number"
    if low is not None and high is not None and low_inclusive:
        words += f" from {_show(low)} to {'' if high_inclusive else 'below '}{_show(high)}"
    else:
        if low is not None:
            words += f" {'>=' if low_inclusive else '>'} {_show(low)}"
        if high is not None:
            words += (f"{' and' if low is not None else ''} {'<=' if high_inclusive else '<'} "
                      f"{_show(high)}")
    return words + (" or None" if optional else "")


@overload
def number(field: str, value: object, *, integer: Literal[True],
           low: float | None = ..., high: float | None = ..., low_inclusive: bool = ...,
           high_inclusive: bool = ..., unit: str = ...,
           optional: Literal[False] = ..., finite: bool = ...) -> int: ...
@overload
def number(field: str, value: object, *, integer: Literal[True],
           low: float | None = ..., high: float | None = ..., low_inclusive: bool = ...,
           high_inclusive: bool = ..., unit: str = ...,
           optional: bool, finite: bool = ...) -> int | None: ...
@overload
def number(field: str, value: object, *, integer: Literal[False] = ...,
           low: float | None = ..., high: float | None = ..., low_inclusive: bool = ...,
           high_inclusive: bool = ..., unit: str = ...,
           optional: Literal[False] = ..., finite: bool = ...) -> float: ...
@overload
def number(field: str, value: object, *, integer: bool = ...,
           low: float | None = ..., high: float | None = ..., low_inclusive: bool = ...,
           high_inclusive: bool = ..., unit: str = ...,
           optional: bool = ..., finite: bool = ...) -> int | float | None: ...
def number(field: str, value: object, *, integer: bool = False,
           low: float | None = None, high: float | None = None, low_inclusive: bool = True,
           high_inclusive: bool = True, optional: bool = False,
           finite: bool = True, unit: str = "") -> float | None:
    """Check a number given for ``field`` and return it unchanged.

    Args:
        field: The argument or attribute named by the error.
        value: What was given.
        integer: Accept only an `int` (else an `int` or a `float`).
        low: The smallest value allowed, if any.
        high: The largest value allowed, if any.
        low_inclusive: Whether ``low`` itself is allowed (``>=``) or not (``>``).
        high_inclusive: Whether ``high`` itself is allowed (``<=``) or not (``<``).
        optional: Accept ``None`` too (returned as is).
        finite: Refuse infinities (NaN is always refused). Pass False only where an
            infinite value means something, such as an unbounded cache.
        unit: What the number counts, said in the error (``"seconds"``, ``"of the
            height"``).

    Returns:
        ``value``, unchanged (an int stays an int).

    Raises:
        UsageError: ``value`` is a bool, not a number (not an int with ``integer``), NaN,
            infinite (unless ``finite`` is False) or out of range; the message names
            ``field`` and states what is allowed, e.g. ``must be an int >= 1, not 0``.

    Example:
        >>> number("attempts", 3, integer=True, low=1, high=10)
        3
        >>> number("timeout", None, low=0, low_inclusive=False, optional=True) is None
        True
        >>> number("wait", float("nan"), low=0)
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: wait: must be a finite number >= 0, not nan
    """
    if value is None and optional:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and (isinstance(value, int) or not integer) \
            and not (isinstance(value, float)  # math.isnan(10**400) would overflow
                     and (math.isnan(value) or (finite and math.isinf(value)))) \
            and (low is None or (value >= low if low_inclusive else value > low)) \
            and (high is None or (value <= high if high_inclusive else value < high)):
        return value
    allowed = _allowed(integer=integer, low=low, high=high, low_inclusive=low_inclusive,
                       high_inclusive=high_inclusive, optional=optional, finite=finite)
    raise UsageError(field, f"must be {allowed}{f' ({unit})' if unit else ''}, not {value!r}")


def flag(field: str, value: object) -> bool:
    """Check a flag given for ``field`` (exactly True or False) and return it.

    Raises:
        UsageError: ``value`` is not a bool (``1``, ``"yes"`` and ``None`` are refused).

    Example:
        >>> flag("audio", 1)
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: audio: must be True or False, not 1
    """
    if isinstance(value, bool):
        return value
    raise UsageError(field, f"must be True or False, not {value!r}")


def check_budget(budget: float | None) -> float | None:
    """Validate a budget in US dollars.

    A budget of 0 is refused: it could pay for nothing (``None`` means no limit; a video
    that must cost nothing is made with the local agents).

    Raises:
        UsageError: ``budget`` is not ``None`` or a finite number > 0.
    """
    checked = number("budget", budget, low=0, low_inclusive=False, optional=True)
    return None if checked is None else float(checked)


def _name(attribute: attrs.Attribute[Any]) -> str:
    """An attribute as its ``__init__`` argument is called (``_x`` is ``x``)."""
    return attribute.alias or attribute.name


def number_validator(*, integer: bool = False, low: float | None = None,
                     high: float | None = None, low_inclusive: bool = True,
                     high_inclusive: bool = True, optional: bool = False, finite: bool = True,
                     field: str | None = None) -> _Validator:
    """`number` as an attrs validator: ``attrs.field(validator=number_validator(...))``.

    Args:
        integer: As in `number`.
        low: As in `number`.
        high: As in `number`.
        low_inclusive: As in `number`.
        high_inclusive: As in `number`.
        optional: As in `number`.
        finite: As in `number`.
        field: The name the error gives; default the attribute's ``__init__`` argument.

    Returns:
        A validator raising `avgen.errors.UsageError` for a value `number` refuses.

    Example:
        >>> @attrs.frozen
        ... class Policy:
        ...     attempts: int = attrs.field(default=3, validator=number_validator(
        ...         integer=True, low=1))
        >>> Policy(attempts=0)
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: attempts: must be an int >= 1, not 0
    """
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        number(field or _name(attribute), value, integer=integer, low=low, high=high,
               low_inclusive=low_inclusive, high_inclusive=high_inclusive, optional=optional,
               finite=finite)

    return validate



def text(field: str, value: object, *, optional: bool = False,
         pattern: re.Pattern[str] | None = None, allowed: str = "",
         max_chars: int | None = None, blank: bool = True) -> str | None:
    """Check a string given for ``field`` and return it.

    Args:
        field: The name the error gives.
        value: What was given.
        optional: Accept ``None``.
        pattern: A regular expression the whole string must match.
        allowed: How to say what ``pattern`` accepts (``"0xRRGGBB"``).
        max_chars: The most characters allowed, if there is a limit.
        blank: Accept a string of nothing but white space (``""`` included).

    Raises:
        UsageError: ``value`` is not a string (or ``None`` when optional), is blank (unless
            ``blank``), is longer than ``max_chars``, contains a NUL character, or does not
            match ``pattern``.

    Example:
        >>> text("color", "0x1e3a8a,trim", pattern=re.compile(r"0x[0-9a-fA-F]{6}"),
        ...      allowed="0xRRGGBB")
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: color: must be 0xRRGGBB, not '0x1e3a8a,trim'
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "a string or None" if optional else "a string"
        raise UsageError(field, f"must be {kind}, not {type(value).__name__} {value!r}")
    if not blank and not value.strip():
        raise UsageError(field, f"must be a non-empty text, not {value!r}")
    if max_chars is not None and len(value) > max_chars:
        raise UsageError(field, f"has {len(value):,} characters; the limit is "
                         f"{max_chars:,}")
    if "\x00" in value:
        raise UsageError(field, "must not contain a NUL character")
    if pattern is not None and not pattern.fullmatch(value):
        raise UsageError(field, f"must be {allowed or pattern.pattern}, not {value!r}")
    return value


def folder(field: str, value: object) -> Path:
    """Check a folder path given for ``field`` and return it as a `pathlib.Path`.

    Raises:
        UsageError: ``value`` is not a `str` or an `os.PathLike` of one, is empty, or
            contains a NUL character.

    Example:
        >>> folder("out", 3)
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: out: must be a folder's path (a str or a Path), not int 3
    """
    raw = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(raw, str):
        raise UsageError(field, f"must be a folder's path (a str or a Path), not "
                         f"{type(value).__name__} {value!r}")
    if not raw:
        raise UsageError(field, "must be a folder's path, not ''")
    if "\x00" in raw:
        raise UsageError(field, f"must not contain a NUL character: {raw!r}")
    return Path(raw)


def text_validator(*, optional: bool = False, pattern: re.Pattern[str] | None = None,
                   allowed: str = "", field: str | None = None,
                   max_chars: int | None = None) -> _Validator:
    """`text` as an attrs validator (the field named after the attribute by default)."""
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        text(field or _name(attribute), value, optional=optional, pattern=pattern,
             allowed=allowed, max_chars=max_chars)

    return validate


def instance(field: str, value: object, kind: type | tuple[type, ...], *,
             optional: bool = False) -> Any:
    """Check that ``value`` is a ``kind`` (or ``None`` when ``optional``) and return it.

    Raises:
        UsageError: It is not.

    Example:
        >>> instance("cache", "yes", int, optional=True)
        Traceback (most recent call last):
        ...
        avgen.errors.UsageError: cache: must be an int or None, not str 'yes'
    """
    if (value is None and optional) or isinstance(value, kind):
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = " or ".join(each.__name__ for each in kinds) + (" or None" if optional else "")
    article = "an" if names[0].lower() in "aeiou" else "a"
    raise UsageError(field, f"must be {article} {names}, not {type(value).__name__} {value!r}")


def instance_validator(kind: type, *, field: str | None = None) -> _Validator:
    """An attrs validator refusing anything but a ``kind`` (a `UsageError` naming the
    field)."""
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        instance(field or _name(attribute), value, kind)

    return validate


T = TypeVar("T")


def structure(cls: type[T], data: object, where: str,
              convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> T:
    """Build an attrs class from untrusted data (a manifest, a script file, a batch row).

    Args:
        cls: The attrs class.
        data: What was read: it must be a mapping of the class's field names.
        where: How to name the data in errors (``"manifest steps['script']"``).
        convert: Turns nested values into their classes before the class is built.

    Raises:
        UsageError: ``data`` is not a mapping, names a field the class does not have, lacks
            a required one, or has a value the class refuses; the error names the field.
    """
    if not isinstance(data, Mapping):
        raise UsageError(where, f"must be an object of fields, not {type(data).__name__}")
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    names = {field.alias or name: field for name, field in fields.items() if field.init}
    unknown = sorted(str(key) for key in data if key not in names)
    if unknown:
        raise UsageError(where, f"unknown field(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(names))}")
    missing = sorted(name for name, field in names.items()
                     if field.default is attrs.NOTHING and name not in data)
    if missing:
        raise UsageError(where, f"missing field(s) {', '.join(missing)}")
    values = dict(data)
    try:
        if convert is not None:
            values = convert(values)
        return cls(**values)
    except UsageError as exc:
        raise UsageError(f"{where}.{exc.field}" if exc.field else where, exc.problem) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise UsageError(where, f"is not a valid {cls.__name__}: {exc}") from None
