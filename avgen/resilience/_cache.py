"""`cached`: never pay twice for the same call.

In memory (a cachetools LRU, LFU, FIFO or TTL cache behind `MemoryStore`) or on disk
(`DiskStore`, shared by processes and runs), for sync and async functions and methods::

    @cached(DiskStore("~/.cache/avgen/scripts"), condition=bool)
    async def write_script(topic: str, seconds: int) -> dict: ...

Semantics:

- **Keys.** By default the SHA-256 of the function's qualified name and its arguments,
  bound to its signature (``f(1)`` and ``f(x=1)`` share a key) and written as canonical
  JSON — the same key in every process, so it can name a file on disk. Supported argument
  types: ``str``, ``int``, ``float``, ``bool``, ``None``, ``bytes`` (hashed), paths (as their
  string, so ``"a.mp4"`` and ``Path("a.mp4")`` share a key), enums, tuples, lists, sets,
  dicts, attrs and dataclass instances of these; anything else raises a `TypeError` that
  says to pass ``key=``. ``key=`` is a callable taking the call's arguments and returning a
  ``str``; the store key is that string's SHA-256 (not prefixed by the function's name:
  two functions sharing a store and a key share entries).
- **Methods.** ``self`` is an argument like any other: an attrs instance keys by value;
  another object raises the `TypeError` above. ``method=True`` leaves the first argument
  out, so all instances share entries — right when the result does not depend on the
  instance's state. (``id(self)`` is never used: ids are reused, and do not survive the
  process.)
- **Single flight.** Concurrent callers of one missing key make one call, in threads and in
  asyncio tasks; the others wait and share its result or its exception. A failed call
  caches nothing. An async function's awaited result is cached, never the coroutine. When
  every waiting task is cancelled, the shared call is cancelled too.
- **What is cached.** Not ``None`` (a store's ``get`` returns ``None`` for a miss), nor a
  value ``condition`` rejects, nor a value the store refuses (larger than the in-memory
  ``maxsize`` measured by ``getsizeof``, or than a `DiskStore`'s ``max_bytes``): a
  refusal, and entries pushed out to make room, emit ``cache.evict``. A store that fails to
  write (a value that is not JSON for a `DiskStore`) logs a warning and emits
  ``cache.evict``; the caller still gets the value it paid for.
- **Inspection**, like cachetools: the wrapper has ``.cache`` (the store),
  ``.cache_info()`` (a `CacheInfo`), ``.cache_clear()`` and ``.cache_key(*args, **kwargs)``.
  ``misses`` counts the calls that ran the function; callers served by the store or by a
  shared in-flight call count as ``hits``.
- **Events**: ``cache.hit``, ``cache.miss``, ``cache.evict`` with ``{"key": <12 hex>}``,
  from ``name`` or the function's qualified name, only built when someone listens.
- **Scope.** Single flight is per process: two processes sharing a `DiskStore` may both
  compute a missing key (each leaves a valid entry). A store is read in the calling thread,
  inside the event loop for async functions: a `DiskStore` suits results that took
  seconds to make; for big media, keep files with `DiskStore.put_file`.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, MutableMapping
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, cast, overload
from typing import runtime_checkable as _runtime_checkable

import attrs
import cachetools

from avgen._validate import number
from avgen.errors import UsageError
from avgen.resilience._cache_keys import KeyMaker
from avgen.resilience._disk_store import DiskStore
from avgen.resilience._events import Hook, ResilienceEvent, emit, has_listeners

__all__ = ["CacheStore", "DiskStore", "MemoryStore", "cached"]

_logger = logging.getLogger("avgen.resilience")
_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)
_S = TypeVar("_S")
Policy = Literal["lru", "lfu", "fifo", "ttl"]
"""The in-memory eviction policies."""

_POLICIES: dict[str, Callable[..., cachetools.Cache[str, Any]]] = {
    "lru": cachetools.LRUCache, "lfu": cachetools.LFUCache, "fifo": cachetools.FIFOCache}
# Their get() only does atomic dict / OrderedDict steps: safe without the lock.
_LOCK_FREE_GET = (cachetools.LRUCache, cachetools.FIFOCache, dict)


@_runtime_checkable
class CacheStore(Protocol):
    """Where `cached` keeps values: string keys, any values, ``None`` meaning "missing".

    A store may also offer ``maxsize``, ``currsize`` and ``evictions`` (read by
    `CachedFunction.cache_info`). Any ``MutableMapping`` given to `cached` (a cachetools
    cache, a ``dict``) is wrapped in a `MemoryStore`.
    """

    def get(self, key: str) -> Any | None:
        """The value under ``key``, or ``None``."""

    def set(self, key: str, value: Any) -> bool:
        """Store ``value``; ``False`` if the store declined it (too large)."""

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there."""

    def clear(self) -> None:
        """Remove everything."""

    def __len__(self) -> int:
        """The number of entries."""

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has an entry."""


class MemoryStore:
    """A `CacheStore` over a mutable mapping, usually a cachetools cache. Thread-safe.

    Args:
        cache: The mapping; default a ``cachetools.LRUCache(128)``.
    """

    def __init__(self, cache: MutableMapping[str, Any] | None = None) -> None:
        self.cache: MutableMapping[str, Any] = (
            cachetools.LRUCache(128) if cache is None else cache)
        """The underlying mapping."""
        self.evictions = 0
        """Entries dropped to make room, plus values refused as too large."""
        self._lock = threading.RLock()
        self.lock_free_reads = type(self.cache) in _LOCK_FREE_GET
        """Whether reads skip the lock (LRU and FIFO caches, dicts: their reads are atomic)."""
        timer: Any = getattr(self.cache, "timer", None)  # a TTL cache: freeze its clock
        self._frozen_time: contextlib.AbstractContextManager[Any] = (
            timer if hasattr(timer, "__enter__") else contextlib.nullcontext())

    def __repr__(self) -> str:
        return f"MemoryStore({type(self.cache).__name__}, {len(self)} entries)"

    def get(self, key: str) -> Any | None:
        """The value under ``key``, or ``None``."""
        if self.lock_free_reads:
            try:
                return self.cache[key]
            except KeyError:
                return None
        with self._lock:
            try:
                return self.cache[key]
            except KeyError:
                return None

    def set(self, key: str, value: Any) -> bool:
        """Store ``value``; ``False`` if the cache refused it as too large."""
        cache = self.cache
        with self._lock, self._frozen_time:
            before = len(cache) + (key not in cache)
            try:
                cache[key] = value
            except ValueError:  # cachetools: "value too large"
                self.evictions += 1
                return False
            self.evictions += max(0, before - len(cache))
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there."""
        with self._lock:
            try:
                del self.cache[key]
            except KeyError:
                return False
            return True

    def clear(self) -> None:
        """Remove everything."""
        with self._lock:
            self.cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self.cache)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self.cache

    @property
    def maxsize(self) -> float | None:
        """The cache's ``maxsize`` (``None`` for a plain mapping)."""
        size = getattr(self.cache, "maxsize", None)
        return None if size is None else float(size)

    @property
    def currsize(self) -> float:
        """The cache's ``currsize`` (its length for a plain mapping)."""
        with self._lock:
            return float(getattr(self.cache, "currsize", len(self.cache)))


@attrs.frozen
class CacheInfo:
    """What `CachedFunction.cache_info` reports."""

    hits: int
    """Calls served without running the function (from the store or a shared call)."""
    misses: int
    """Calls that ran the function."""
    evictions: int
    """Entries the store dropped for room, plus values it refused as too large."""
    currsize: float
    """The store's current size (entries, ``getsizeof`` units, or bytes on disk)."""
    maxsize: float | None
    """The store's limit, in the same units (``None``: no limit)."""


class CachedFunction(Protocol[_P, _R_co]):
    """The type of a function decorated by `cached`: the function plus its cache."""

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[_P, _R_co]:
        """The decorated function."""


    @property
    def cache(self) -> CacheStore:
        """The store."""

    def cache_info(self) -> CacheInfo:
        """Hits, misses, evictions and sizes."""

    def cache_clear(self) -> None:
        """Empty the store and reset the counters."""

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The store key of a call with these arguments (``self`` included, for methods)."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co:
        """Call through the cache."""

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> CachedFunction[_P, _R_co]: ...
    @overload
    def __get__(self: CachedFunction[Concatenate[_S, _Q], _R_co], obj: _S,
                objtype: type | None = None) -> CachedFunction[_Q, _R_co]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        """Bind like a function, so methods work."""


class _Flight:
    """One call in progress in threads: the others wait on ``done``."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _AsyncFlight:
    """One call in progress in an event loop: a task every waiter awaits (shielded)."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.waiters = 0


class _Core:
    """The state of one decorated function: store, key maker, counters, flights."""

    def __init__(self, func: Callable[..., Any], store: CacheStore, keys: KeyMaker,
                 condition: Callable[[Any], bool] | None, hooks: tuple[Hook, ...],
                 source: str) -> None:
        self.func = func
        self.store = store
        self.keys = keys
        self.condition = condition
        self.hooks = hooks
        self.source = source
        self.hits = 0
        self.misses = 0
        self.lock = threading.Lock()
        self.flights: dict[str, _Flight] = {}
        self.async_flights: dict[tuple[str, asyncio.AbstractEventLoop], _AsyncFlight] = {}

    def event(self, kind: str, key: str, **data: Any) -> None:
        if has_listeners(self.hooks):
            emit(ResilienceEvent(kind, self.source, {"key": key[:12], **data}), self.hooks)

    def info(self) -> CacheInfo:
        store = self.store
        currsize = getattr(store, "currsize", None)
        return CacheInfo(hits=self.hits, misses=self.misses,
                         evictions=int(getattr(store, "evictions", 0)),
                         currsize=len(store) if currsize is None else currsize,
                         maxsize=getattr(store, "maxsize", None))

    def clear(self) -> None:
        with self.lock:
            self.store.clear()
            self.hits = self.misses = 0

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        return self.keys(args, kwargs)

    def keep(self, key: str, value: Any) -> None:
        """Put a fresh result in the store, if it should and can go there."""
        if value is None:
            return
        try:
            if self.condition is not None and not self.condition(value):
                return
        except Exception:
            _logger.exception("cache %s: condition failed; result not cached", self.source)
            return
        before = int(getattr(self.store, "evictions", 0))
        try:
            stored = self.store.set(key, value)
        except Exception as exc:
            _logger.warning("cache %s: could not store the result: %s", self.source, exc)
            self.event("cache.evict", key, reason=f"store failed: {exc}")
            return
        if not stored:
            self.event("cache.evict", key, reason="too large")
            return
        dropped = int(getattr(self.store, "evictions", 0)) - before
        if dropped > 0:
            self.event("cache.evict", key, reason="room", evicted=dropped)

    def miss(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self.lock:
            value = self.store.get(key)
            flight = self.flights.get(key) if value is None else None
            leader = value is None and flight is None
            if leader:
                flight = self.flights[key] = _Flight()
                self.misses += 1
            else:
                self.hits += 1
        if value is not None:
            self.event("cache.hit", key)
            return value
        assert flight is not None
        if not leader:
            self.event("cache.hit", key, shared=True)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        self.event("cache.miss", key)
        try:
            value = self.func(*args, **kwargs)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise UsageError("func", f"{self.source} returned an awaitable: decorate the "
                                         "`async def` itself so its result is cached")
            flight.value = value
            self.keep(key, value)
            return value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self.lock:
                del self.flights[key]
            flight.done.set()

    async def amiss(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        slot = (key, loop)
        with self.lock:
            value = self.store.get(key)
            flight = self.async_flights.get(slot) if value is None else None
            if flight is not None and (flight.task.done() or flight.task.cancelling()):
                flight = None  # finished or being cancelled: not one to join
            leader = value is None and flight is None
            if leader:
                task = loop.create_task(self._acall(key, args, kwargs))
                flight = self.async_flights[slot] = _AsyncFlight(task)
                task.add_done_callback(functools.partial(self._landed, slot, flight))
                self.misses += 1
            else:
                self.hits += 1
        if value is not None:
            self.event("cache.hit", key)
            return value
        assert flight is not None
        if leader:
            self.event("cache.miss", key)
        else:
            self.event("cache.hit", key, shared=True)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                flight.task.cancel()  # nobody is left waiting for it
            raise
        finally:
            flight.waiters -= 1

    async def _acall(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = await self.func(*args, **kwargs)
        self.keep(key, value)
        return value

    def _landed(self, slot: tuple[str, asyncio.AbstractEventLoop], flight: _AsyncFlight,
                task: asyncio.Task[Any]) -> None:
        with self.lock:
            if self.async_flights.get(slot) is flight:
                del self.async_flights[slot]
        if not task.cancelled():
            task.exception()  # retrieved: the waiters have it, or had all left


def _make_store(store: CacheStore | MutableMapping[str, Any] | None, policy: str,
                maxsize: float, ttl: float | None, timer: Callable[[], float],
                getsizeof: Callable[[Any], float] | None) -> CacheStore:
    if store is not None:
        if policy != "lru" or maxsize != 128 or ttl is not None or getsizeof is not None:
            raise UsageError("store", "policy=, maxsize=, ttl= and getsizeof= configure the "
                                      "in-memory cache; configure the store you pass instead")
        if isinstance(store, CacheStore):
            return store
        if isinstance(store, MutableMapping):
            return MemoryStore(store)
        raise UsageError("store", f"expected a CacheStore or a mutable mapping, not "
                                  f"{type(store).__name__} (write @cached(), with parentheses)")
    number("maxsize", maxsize, low=1, finite=False)  # inf: unbounded
    number("ttl", ttl, low=0, low_inclusive=False, optional=True, finite=False)
    if policy == "ttl" or (policy == "lru" and ttl is not None):  # TTLCache is an LRU
        if ttl is None:
            raise UsageError("ttl", "policy='ttl' needs ttl=, in seconds")
        return MemoryStore(cachetools.TTLCache(maxsize, ttl, timer=timer, getsizeof=getsizeof))
    if policy not in _POLICIES:
        raise UsageError("policy", f"must be one of 'lru', 'lfu', 'fifo', 'ttl', not {policy!r}")
    if ttl is not None:
        raise UsageError("ttl", f"works with policy 'ttl' (or 'lru'), not {policy!r}")
    return MemoryStore(_POLICIES[policy](maxsize, getsizeof=getsizeof))


def cached(
    store: CacheStore | MutableMapping[str, Any] | None = None, *,
    policy: Policy = "lru",
    maxsize: float = 128,
    ttl: float | None = None,
    key: Callable[..., str] | None = None,
    timer: Callable[[], float] = time.monotonic,
    condition: Callable[[Any], bool] | None = None,
    hooks: Iterable[Hook] = (),
    name: str | None = None,
    method: bool = False,
    getsizeof: Callable[[Any], float] | None = None,
) -> Callable[[Callable[_P, _R]], CachedFunction[_P, _R]]:
    """Cache a function's results (see the module docstring for the semantics).

    Args:
        store: Where values go: a `CacheStore` (such as `DiskStore`) or a mutable mapping
            (such as a cachetools cache), shared by everything decorated with it. ``None``:
            a new in-memory cache per decorated function, built from the next arguments.
        policy: The in-memory policy: ``"lru"``, ``"lfu"``, ``"fifo"`` or ``"ttl"``.
        maxsize: The in-memory capacity, in entries (or in ``getsizeof`` units).
        ttl: Seconds an in-memory entry lives (policy ``"ttl"``; with ``"lru"`` it implies
            ``"ttl"``, which is an LRU cache with expiry).
        key: Makes a call's key from its arguments (returns a ``str``) instead of the
            default key.
        timer: The clock of ``ttl``.
        condition: Called with each fresh result: only results it calls true are cached.
        hooks: Receive the ``cache.*`` events.
        name: The events' source (default: the function's qualified name).
        method: Leave the first argument (``self``/``cls``) out of the default key.
        getsizeof: The size of a value, for ``maxsize``; default 1 per entry.

    Raises:
        UsageError: A bad argument, or a generator function.
    """
    hooks = tuple(hooks)
    shared = _make_store(store, policy, maxsize, ttl, timer, getsizeof)  # validates too

    def decorate(func: Callable[_P, _R]) -> CachedFunction[_P, _R]:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise UsageError("func", f"cannot cache the generator function "
                                     f"{func.__qualname__}: cache a function returning a list")
        # without a store, each function gets its own in-memory cache
        the_store = (shared if store is not None
                     else _make_store(None, policy, maxsize, ttl, timer, getsizeof))
        keys = KeyMaker(func, key, method)
        core = _Core(func, the_store, keys, condition, hooks, name or func.__qualname__)
        wrapper = (_async_wrapper(core) if inspect.iscoroutinefunction(func)
                   else _sync_wrapper(core))
        functools.update_wrapper(wrapper, func)
        exposed: Any = wrapper
        exposed.cache = the_store
        exposed.cache_info = core.info
        exposed.cache_clear = core.clear
        exposed.cache_key = core.cache_key
        return cast("CachedFunction[_P, _R]", wrapper)

    return decorate


# The two wrappers repeat the hit path on purpose: a hit must cost little more than a
# cachetools hit, so it makes no call it can avoid (the key memo is inlined, and a cache
# that is safe to read without the lock is read directly).

def _reader(store: CacheStore) -> Callable[[str], Any]:
    """A function returning the value under a key, raising KeyError when there is none."""
    if isinstance(store, MemoryStore) and store.lock_free_reads:
        return store.cache.__getitem__

    def read(key: str) -> Any:
        value = store.get(key)
        if value is None:
            raise KeyError(key)
        return value

    return read


def _sync_wrapper(core: _Core) -> Callable[..., Any]:
    keys, memo_get, read = core.keys, core.keys.memo.get, _reader(core.store)
    remember, method, hooks, miss = keys.remember, keys.method, core.hooks, core.miss
    default_key = keys.user_key is None

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if default_key:
            own = args[1:] if method else args
            try:
                fast: Any = ((own, tuple(map(type, own)), tuple(kwargs.items()),
                              tuple(map(type, kwargs.values()))) if kwargs
                             else (own, tuple(map(type, own))))
                key = memo_get(fast) or remember(fast, args, kwargs)
            except TypeError:  # unhashable arguments: the slow key (or its TypeError)
                key = keys.compute(args, kwargs)[0]
        else:
            key = keys(args, kwargs)
        try:
            value = read(key)
        except KeyError:
            return miss(key, args, kwargs)
        core.hits += 1
        if has_listeners(hooks):
            core.event("cache.hit", key)
        return value

    return wrapper


def _async_wrapper(core: _Core) -> Callable[..., Coroutine[Any, Any, Any]]:
    keys, memo_get, read = core.keys, core.keys.memo.get, _reader(core.store)
    remember, method, hooks, amiss = keys.remember, keys.method, core.hooks, core.amiss
    default_key = keys.user_key is None

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if default_key:
            own = args[1:] if method else args
            try:
                fast: Any = ((own, tuple(map(type, own)), tuple(kwargs.items()),
                              tuple(map(type, kwargs.values()))) if kwargs
                             else (own, tuple(map(type, own))))
                key = memo_get(fast) or remember(fast, args, kwargs)
            except TypeError:
                key = keys.compute(args, kwargs)[0]
        else:
            key = keys(args, kwargs)
        try:
            value = read(key)
        except KeyError:
            return await amiss(key, args, kwargs)
        core.hits += 1
        if has_listeners(hooks):
            core.event("cache.hit", key)
        return value

    return wrapper
