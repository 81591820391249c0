"""Stable cache keys: the SHA-256 of a call's arguments written as canonical JSON.

A key must mean the same call in every process and on every run (a `DiskStore` outlives
the process), so it never uses ``hash()`` or ``repr()``: the arguments are bound to the
function's signature (``f(1)`` and ``f(x=1)`` are one call), written as JSON with sorted
keys and tagged containers, and hashed together with the function's qualified name.

Building that JSON costs microseconds, too much for a cache hit, so each `KeyMaker`
remembers the keys of recent calls whose arguments are plain scalars (``str``, ``int``,
``float``, ``bool``, ``None``, ``bytes``, paths), indexed by the arguments *and their
exact types* — ``1``, ``1.0`` and ``True`` are equal in Python but are different keys.
"""

from __future__ import annotations

__docformat__ = "google"

import dataclasses
import enum
import inspect
import json
import math
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from avgen._hashing import sha256_hex

__all__ = []

FAST_TYPES: frozenset[type] = frozenset({
    str, int, float, bool, type(None), bytes,
    pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
})
"""Argument types whose equality implies an equal canonical form (given the same type)."""

_MEMO_MAX = 4096
_SUPPORTED = ("str, int, float, bool, None, bytes, Path, Enum, tuple, list, set, dict, "
              "and attrs or dataclass instances of these")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value + 0.0  # -0.0 + 0.0 is 0.0: the two zeros are one key
    return {"float": repr(value)}


def canonical(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data that is equal for equal arguments, in any process.

    Containers other than lists are tagged (``{"dict": [[k, v], ...]}``, ``{"set": ...}``,
    ``{"bytes": sha256}``, ``{"enum": ...}``, ``{"attrs": ...}``), so a user's dict can never
    look like one of them. Paths become their string; tuples and lists are both arrays.

    Args:
        value: The argument.
        where: How to name it in an error (``"argument 'scene'"``).

    Raises:
        TypeError: ``value`` (or something inside it) has no stable form.
    """
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        return _float(value)
    if isinstance(value, enum.Enum):
        return {"enum": f"{kind.__module__}.{kind.__qualname__}", "name": value.name}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": sha256_hex(value)}
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, tuple | list):
        return [canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        return {"set": sorted((canonical(item, f"{where} item") for item in value), key=_dumps)}
    if isinstance(value, Mapping):
        pairs = [[canonical(k, f"{where} key"), canonical(v, f"{where}[{k!r}]")]
                 for k, v in value.items()]
        return {"dict": sorted(pairs, key=lambda pair: _dumps(pair[0]))}
    if attrs.has(kind):
        fields = attrs.asdict(value, recurse=False)
        return {"attrs": f"{kind.__module__}.{kind.__qualname__}",
                "fields": {name: canonical(v, f"{where}.{name}") for name, v in fields.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": f"{kind.__module__}.{kind.__qualname__}",
                "fields": {f.name: canonical(getattr(value, f.name), f"{where}.{f.name}")
                           for f in dataclasses.fields(value)}}
    raise TypeError(
        f"cannot build a cache key from {where} of type {kind.__module__}.{kind.__qualname__}:"
        f" a default key supports {_SUPPORTED}. Pass key= to cached() to key this call"
        " yourself (a callable taking the same arguments and returning a str).")


def _sha256(text: str) -> str:
    return sha256_hex(text)


class KeyMaker:
    """Makes the store key of a call to one function.

    Args:
        func: The decorated function.
        key: The user's key function (same arguments, returns a ``str``), or ``None`` for
            the default key.
        method: Leave the first argument (``self`` or ``cls``) out of the default key.
    """

    __slots__ = ("_memo", "_prefix", "_signature", "method", "user_key")

    def __init__(self, func: Callable[..., Any], key: Callable[..., str] | None,
                 method: bool) -> None:
        self.user_key = key
        """The user's key function, if any."""
        self.method = method
        """Whether the first argument is left out of the default key."""
        self._prefix = f"{func.__module__}.{func.__qualname__}"
        try:
            self._signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have no signature
            self._signature = None
        self._memo: dict[Any, str] = {}

    @property
    def memo(self) -> dict[Any, str]:
        """Recent fast keys (see the module docstring) mapped to their store keys."""
        return self._memo

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The store key of a call: 64 lowercase hex digits."""
        if self.user_key is not None:
            return self._user(args, kwargs)
        own = args[1:] if self.method else args
        try:
            if kwargs:
                fast: Any = (own, tuple(map(type, own)), tuple(kwargs.items()),
                             tuple(map(type, kwargs.values())))
            else:
                fast = (own, tuple(map(type, own)))
            found = self._memo.get(fast)
        except TypeError:  # an unhashable argument: no fast key
            return self.compute(args, kwargs)[0]
        return found if found is not None else self.remember(fast, args, kwargs)

    def remember(self, fast: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Compute the key of a call and remember it under ``fast`` if that is safe."""
        key, plain = self.compute(args, kwargs)
        if plain:
            memo = self._memo
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[fast] = key
        return key

    def compute(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, bool]:
        """The default key of a call, and whether every argument is a plain scalar.

        Raises:
            TypeError: The arguments do not fit the signature, or one has no stable form.
        """
        if self._signature is not None:
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            items = list(bound.arguments.items())
        else:
            items = [(str(i), a) for i, a in enumerate(args)] + sorted(kwargs.items())
        if self.method:
            items = items[1:]
        plain = all(type(a) in FAST_TYPES for a in (args[1:] if self.method else args)) and all(
            type(v) in FAST_TYPES for v in kwargs.values())
        payload = [self._prefix, [[name, canonical(value, f"argument {name!r}")]
                                  for name, value in items]]
        return _sha256(_dumps(payload)), plain

    def _user(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self.user_key is not None
        text = self.user_key(*args, **kwargs)
        if not isinstance(text, str):
            raise TypeError(f"the key= function of cached() must return a str, not "
                            f"{type(text).__name__}")
        memo = self._memo
        found = memo.get(text)
        if found is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            found = memo[text] = _sha256(text)
        return found
