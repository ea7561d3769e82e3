"""Provides collect_signals: cheap in-target readings that name a leak's culprit."""

from __future__ import annotations

import gc
import os
import re
import sys
import time
import types
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from memtui.probe.census import CONTAINER_TYPES, type_name

SAMPLE_ITEMS: int = 50
"""Items sampled per named container to say what it mostly holds."""
MAX_FDS_READ: int = 4096
"""At most this many /proc/self/fd links are read; the rest count as 'unread'."""
MAX_CLASS_ATTRS: int = 2000
"""Class or instance dicts larger than this are scanned only up to this many entries."""

_SEQUENCES: frozenset[type] = frozenset({list, set, frozenset, deque})
_CALLABLE_TYPES: tuple[type, ...] = (
    types.MethodType,
    types.FunctionType,
    types.BuiltinMethodType,
    types.BuiltinFunctionType,
)
_TYPE_DICT = type.__dict__["__dict__"].__get__
_TYPE_MRO = type.__dict__["__mro__"].__get__
_OBJECT_GETATTR = object.__getattribute__
_GETSET = types.GetSetDescriptorType
_DIGITS = re.compile(r"\d+")
_NO_DESCENT: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        tuple,
        types.ModuleType,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.MethodType,
        types.CodeType,
        property,
        staticmethod,
        classmethod,
    }
    | set(CONTAINER_TYPES)
)


@dataclass(frozen=True, slots=True)
class NamedContainer:
    """A large container reachable from a module global (or one attribute below it)."""

    name: str
    """How to reach it, e.g. 'app.handlers.CACHE' or 'app.bus.EVENT_BUS.handlers'."""
    type_name: str
    length: int
    object_id: int
    """id() of the container: lets a census' largest_containers be matched to this name."""
    item_types: tuple[tuple[str, int], ...] = ()
    """Type names of sampled items (dict: values), most common first."""
    sampled: int = 0
    callables: int = 0
    """Sampled items that are bound methods or functions (an event-listener signature)."""


@dataclass(frozen=True, slots=True)
class LruCacheInfo:
    """A functools.lru_cache / functools.cache wrapper found in module globals or class dicts."""

    name: str
    currsize: int
    maxsize: int | None
    """None: unbounded."""
    hits: int
    misses: int


@dataclass(frozen=True, slots=True)
class LeakSignals:
    """One reading of the signals; JSON-friendly through to_dict() / from_dict()."""

    taken_at: float
    """Wall-clock seconds since the epoch."""
    duration_s: float
    containers: tuple[NamedContainer, ...] = ()
    lru_caches: tuple[LruCacheInfo, ...] = ()
    logger_handlers: tuple[tuple[str, int], ...] = ()
    """(logger name, handler count) for loggers with handlers, most first ('root' included)."""
    total_handlers: int = 0
    threads: int = 0
    thread_groups: tuple[tuple[str, int], ...] = ()
    """Thread names with digit runs replaced by 'N' ('Thread-N (worker)'), most first."""
    asyncio_tasks: int | None = None
    """Tasks not done, across all loops (None: asyncio not imported)."""
    fds: int | None = None
    """Open file descriptors (None where /proc/self/fd is unreadable)."""
    fd_kinds: tuple[tuple[str, int], ...] = ()
    """socket / pipe / file / anon / device / other / unread."""
    modules: int = 0
    gc_garbage: int = 0
    gc_enabled: bool = True
    gc_counts: tuple[int, int, int] = (0, 0, 0)
    """gc.get_count(): tracked allocations pending per generation (grows when gc is off)."""
    scanned: int = 0
    """Module globals and attributes looked at."""
    errors: tuple[str, ...] = field(default=())
    """Sections that failed ('section: ExcType'); the rest of the reading is still valid."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, str and numbers only (json.dumps-able)."""
        return {
            "taken_at": self.taken_at,
            "duration_s": self.duration_s,
            "containers": [
                {
                    "name": c.name,
                    "type_name": c.type_name,
                    "length": c.length,
                    "object_id": c.object_id,
                    "item_types": [list(p) for p in c.item_types],
                    "sampled": c.sampled,
                    "callables": c.callables,
                }
                for c in self.containers
            ],
            "lru_caches": [
                {
                    "name": c.name,
                    "currsize": c.currsize,
                    "maxsize": c.maxsize,
                    "hits": c.hits,
                    "misses": c.misses,
                }
                for c in self.lru_caches
            ],
            "logger_handlers": [list(p) for p in self.logger_handlers],
            "total_handlers": self.total_handlers,
            "threads": self.threads,
            "thread_groups": [list(p) for p in self.thread_groups],
            "asyncio_tasks": self.asyncio_tasks,
            "fds": self.fds,
            "fd_kinds": [list(p) for p in self.fd_kinds],
            "modules": self.modules,
            "gc_garbage": self.gc_garbage,
            "gc_enabled": self.gc_enabled,
            "gc_counts": list(self.gc_counts),
            "scanned": self.scanned,
            "errors": list(self.errors),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LeakSignals:
        """The inverse of to_dict(); missing keys take their defaults."""

        def pairs(key: str) -> tuple[tuple[str, int], ...]:
            return tuple((str(a), int(b)) for a, b in d.get(key, ()))

        c = [int(x) for x in d.get("gc_counts", ())] + [0, 0, 0]
        return cls(
            taken_at=float(d.get("taken_at", 0.0)),
            duration_s=float(d.get("duration_s", 0.0)),
            containers=tuple(
                NamedContainer(
                    name=str(c["name"]),
                    type_name=str(c["type_name"]),
                    length=int(c["length"]),
                    object_id=int(c.get("object_id", 0)),
                    item_types=tuple((str(a), int(b)) for a, b in c.get("item_types", ())),
                    sampled=int(c.get("sampled", 0)),
                    callables=int(c.get("callables", 0)),
                )
                for c in d.get("containers", ())
            ),
            lru_caches=tuple(
                LruCacheInfo(
                    name=str(c["name"]),
                    currsize=int(c["currsize"]),
                    maxsize=None if c.get("maxsize") is None else int(c["maxsize"]),
                    hits=int(c.get("hits", 0)),
                    misses=int(c.get("misses", 0)),
                )
                for c in d.get("lru_caches", ())
            ),
            logger_handlers=pairs("logger_handlers"),
            total_handlers=int(d.get("total_handlers", 0)),
            threads=int(d.get("threads", 0)),
            thread_groups=pairs("thread_groups"),
            asyncio_tasks=None if d.get("asyncio_tasks") is None else int(d["asyncio_tasks"]),
            fds=None if d.get("fds") is None else int(d["fds"]),
            fd_kinds=pairs("fd_kinds"),
            modules=int(d.get("modules", 0)),
            gc_garbage=int(d.get("gc_garbage", 0)),
            gc_enabled=bool(d.get("gc_enabled", True)),
            gc_counts=(c[0], c[1], c[2]),
            scanned=int(d.get("scanned", 0)),
            errors=tuple(str(e) for e in d.get("errors", ())),
        )


class _Walk:
    """State of one walk over module globals: found containers and caches, deduplicated by id."""

    def __init__(self, min_len: int) -> None:
        self.min_len = min_len
        self.lru_type: Any = _lru_type()
        # id -> (rank, name, container); rank prefers non-__main__ and shallower names.
        self.containers: dict[int, tuple[tuple[int, int], str, Any]] = {}
        self.caches: dict[int, tuple[tuple[int, int], str, Any]] = {}
        self.scanned = 0

    def value(self, name: str, v: Any, rank: tuple[int, int]) -> bool:
        """Record v if it is a large container or an lru cache; True when it was either."""
        t = type(v)
        if t in CONTAINER_TYPES:
            if len(v) >= self.min_len:
                self._keep(self.containers, name, v, rank)
            return True
        if t is self.lru_type:
            self._keep(self.caches, name, v, rank)
            return True
        return False

    @staticmethod
    def _keep(
        into: dict[int, tuple[tuple[int, int], str, Any]], name: str, v: Any, rank: tuple[int, int]
    ) -> None:
        key = id(v)
        old = into.get(key)
        if old is None or rank < old[0]:
            into[key] = (rank, name, v)

    def attrs(self, prefix: str, mapping: Any, rank: tuple[int, int]) -> None:
        """One level below a module global: a class's or an instance's own attributes."""
        if type(mapping) not in (dict, types.MappingProxyType):
            return
        for key, v in islice(list(mapping.items()), MAX_CLASS_ATTRS):
            if type(key) is str:
                self.scanned += 1
                self.value(f"{prefix}.{key}", v, rank)


def _lru_type() -> Any:
    functools = sys.modules.get("functools")
    t = getattr(functools, "_lru_cache_wrapper", None) if functools is not None else None
    return t if isinstance(t, type) else None


def _instance_dict(v: Any) -> Any:
    """v's own __dict__ when reading it runs no user code (plain getset descriptor); else None."""
    try:
        for klass in _TYPE_MRO(type(v)):
            slot = _TYPE_DICT(klass).get("__dict__")
            if slot is not None:
                if type(slot) is not _GETSET:
                    return None
                d = _OBJECT_GETATTR(v, "__dict__")
                return d if type(d) is dict else None
    except (AttributeError, TypeError):
        return None
    return None


def _module_label(modname: str, d: dict[str, Any]) -> str:
    """'__main__' shown as the script's name ('leaker_list' for python leaker_list.py)."""
    if modname != "__main__":
        return modname
    spec = d.get("__spec__")
    spec_name = getattr(spec, "name", None) if type(spec).__name__ == "ModuleSpec" else None
    if isinstance(spec_name, str) and spec_name:
        return spec_name
    path = d.get("__file__")
    if type(path) is str and path:
        return os.path.splitext(os.path.basename(path))[0] or modname
    return modname


def _walk_modules(walk: _Walk) -> None:
    for order, (modname, module) in enumerate(list(sys.modules.items())):
        if not issubclass(type(module), types.ModuleType) or type(modname) is not str:
            continue
        try:
            d = _OBJECT_GETATTR(module, "__dict__")
        except AttributeError:
            continue
        if type(d) is not dict:
            continue
        label = _module_label(modname, d)
        main = 1 if modname == "__main__" else 0
        for key, v in list(d.items()):
            if type(key) is not str:
                continue
            walk.scanned += 1
            rank = (main, order)
            if walk.value(f"{label}.{key}", v, rank):
                continue
            t = type(v)
            if t in _NO_DESCENT:
                continue
            deeper = (main, order + 1_000_000)
            if issubclass(t, type):
                # Classes only in their home module (imports would repeat them everywhere).
                own = _TYPE_DICT(v)
                if own.get("__module__") == modname:
                    walk.attrs(f"{label}.{key}", own, deeper)
            else:
                home = _TYPE_DICT(t).get("__module__")
                inst = _instance_dict(v)
                if inst is not None:
                    walk.attrs(f"{label}.{key}", inst, (main if home == modname else 1, order))


def _describe(name: str, v: Any) -> NamedContainer | None:
    t = type(v)
    if t not in CONTAINER_TYPES:  # __class__ reassigned since the walk
        return None
    length = len(v)
    sample: list[Any]
    if t in _SEQUENCES:
        # The newest items of a list or deque are where a leak shows; sets have no order.
        ordered = t is list or t is deque
        sample = list(islice(reversed(v) if ordered else iter(v), SAMPLE_ITEMS))
    else:
        sample = list(islice(v.values(), SAMPLE_ITEMS))
    by_type = Counter(map(type, sample))
    calls = sum(n for k, n in by_type.items() if issubclass(k, _CALLABLE_TYPES))
    named: Counter[str] = Counter()
    for k, n in by_type.items():
        named[type_name(k)] += n
    return NamedContainer(
        name=name,
        type_name=type_name(t),
        length=length,
        object_id=id(v),
        item_types=tuple(named.most_common(5)),
        sampled=len(sample),
        callables=calls,
    )


def _caches(walk: _Walk, max_named: int) -> tuple[LruCacheInfo, ...]:
    found = []
    for _, name, wrapper in walk.caches.values():
        info = wrapper.cache_info()  # C code on the exact lru wrapper type
        found.append(
            LruCacheInfo(
                name=name,
                currsize=int(info.currsize),
                maxsize=None if info.maxsize is None else int(info.maxsize),
                hits=int(info.hits),
                misses=int(info.misses),
            )
        )
    # Unbounded caches first, then the fullest.
    found.sort(key=lambda c: (c.maxsize is not None, -c.currsize, c.name))
    return tuple(found[:max_named])


def _loggers(max_named: int) -> tuple[tuple[tuple[str, int], ...], int]:
    logging = sys.modules.get("logging")
    if logging is None:
        return (), 0
    logger_type = logging.Logger
    pairs: list[tuple[str, int]] = []
    root = logging.root
    candidates = [("root", root), *list(logger_type.manager.loggerDict.items())]
    for name, logger in candidates:
        own = _instance_dict(logger) if issubclass(type(logger), logger_type) else None
        if own is not None:
            handlers = own.get("handlers")
            if type(handlers) is list and handlers:
                pairs.append((str(name), len(handlers)))
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return tuple(pairs[:max_named]), sum(n for _, n in pairs)


def _threads(max_named: int) -> tuple[int, tuple[tuple[str, int], ...]]:
    threading = sys.modules.get("threading")
    if threading is None:
        return 1, ()
    groups: Counter[str] = Counter()
    alive = threading.enumerate()
    for thread in alive:
        own = _instance_dict(thread)
        name = own.get("_name") if own is not None else None
        groups[_DIGITS.sub("N", name) if type(name) is str else "?"] += 1
    return len(alive), tuple(groups.most_common(max_named))


def _asyncio_tasks() -> int | None:
    """Pending tasks of every loop, from asyncio's own registry (3.10-3.13), no gc walk."""
    tasks_mod = sys.modules.get("asyncio.tasks")
    if tasks_mod is None:
        return None
    registry = getattr(tasks_mod, "_all_tasks", None)
    if registry is None:
        registry = getattr(tasks_mod, "_scheduled_tasks", None)
    if registry is None:
        return None
    eager = getattr(tasks_mod, "_eager_tasks", ())
    pending = 0
    future_done = sys.modules["asyncio"].Future.done
    for task in [*list(registry), *list(eager)]:
        try:
            pending += not future_done(task)
        except TypeError:  # not a C/py Future subclass: ask it (rare)
            pending += not task.done()
    return pending


def _fd_kind(target: str) -> str:
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:"):
        return "anon"
    if target.startswith("/dev/"):
        return "device"
    if target.startswith("/"):
        return "file"
    return "other"


def _fds() -> tuple[int | None, tuple[tuple[str, int], ...]]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None, ()
    kinds: Counter[str] = Counter()
    count = 0
    for i, name in enumerate(names):
        if i >= MAX_FDS_READ:
            kinds["unread"] += len(names) - i
            count += len(names) - i
            break
        try:
            target = os.readlink("/proc/self/fd/" + name)
        except OSError:  # the descriptor listdir itself used, or one closed since
            continue
        kinds[_fd_kind(target)] += 1
        count += 1
    return count, tuple(sorted(kinds.items(), key=lambda p: (-p[1], p[0])))


def collect_signals(max_named: int = 20, min_len: int = 1000) -> LeakSignals:
    """Read the leak signals of this process; never raises.

    Walks sys.modules → module globals → (one level deeper) class dicts of classes defined
    in that module and instance __dict__s of module-level objects. len() is taken only on
    exact builtin containers and attributes are read only through plain getset descriptors,
    so no user __len__/__getattr__/property runs. Each section that fails is listed in
    ``errors`` and the others are still returned. Keeps the ``max_named`` longest containers
    (len ≥ ``min_len``) and lru caches; holds no reference to anything after returning.
    """
    started = time.perf_counter()
    errors: list[str] = []
    walk = _Walk(min_len)
    containers: tuple[NamedContainer, ...] = ()
    caches: tuple[LruCacheInfo, ...] = ()

    def guard(section: str, exc: Exception) -> None:
        errors.append(f"{section}: {type(exc).__name__}")

    try:
        _walk_modules(walk)
        top = sorted(walk.containers.values(), key=lambda e: -len(e[2]))[:max_named]
        described = (_describe(name, v) for _, name, v in top)
        containers = tuple(c for c in described if c is not None)
        del top
    except Exception as exc:  # a module dict or container of a kind not foreseen
        guard("containers", exc)
    try:
        caches = _caches(walk, max_named)
    except Exception as exc:
        guard("lru_caches", exc)
    scanned = walk.scanned
    del walk
    loggers: tuple[tuple[str, int], ...] = ()
    total_handlers = 0
    try:
        loggers, total_handlers = _loggers(max_named)
    except Exception as exc:
        guard("logging", exc)
    threads = 0
    groups: tuple[tuple[str, int], ...] = ()
    try:
        threads, groups = _threads(max_named)
    except Exception as exc:
        guard("threads", exc)
    tasks = None
    try:
        tasks = _asyncio_tasks()
    except Exception as exc:
        guard("asyncio", exc)
    fds, fd_kinds = _fds()
    raw_counts = gc.get_count()
    return LeakSignals(
        taken_at=time.time(),
        duration_s=time.perf_counter() - started,
        containers=containers,
        lru_caches=caches,
        logger_handlers=loggers,
        total_handlers=total_handlers,
        threads=threads,
        thread_groups=groups,
        asyncio_tasks=tasks,
        fds=fds,
        fd_kinds=fd_kinds,
        modules=len(sys.modules),
        gc_garbage=len(gc.garbage),
        gc_enabled=gc.isenabled(),
        gc_counts=(int(raw_counts[0]), int(raw_counts[1]), int(raw_counts[2])),
        scanned=scanned,
        errors=tuple(errors),
    )
