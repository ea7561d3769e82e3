"""Provides start_tracemalloc: tracemalloc.start() without its hook on the raw allocator domain.

Why: CPython's tracemalloc.stop() races with ``PyMem_RawMalloc`` called by a thread that does
not hold the GIL (zlib, bz2 and lzma inside ``Py_BEGIN_ALLOW_THREADS``, a C thread creating its
thread state). That thread enters tracemalloc's raw hook while tracing is on, waits there for
the GIL, and once it has it records the block into tables that stop() has just torn down: a
NULL dereference, the whole program segfaults (CPython gh-128679, fixed in CPython in
January 2025; 3.10 and 3.11 take only security fixes). memtui starts and stops tracing for
every watch window, so a program that decompresses in threads would be killed by being
watched: 8 of 12 runs of ``benchmarks/soak/tracemalloc_race.py`` crashed within 15 s on
3.10.13-3.13.0 here, the agent's own zip imports (zlib) included.

The fix: right after tracemalloc.start(), put the raw domain's allocator back to the one
that was installed before (the one stop() would restore). The mem and object domains, which
the GIL protects and which hold every Python object, stay traced; the raw domain holds
interpreter buffers that no allocation site of the program's code would name. With no hook
on the raw domain, no thread can wait for the GIL inside it.

Through ctypes (``ctypes.pythonapi``); without ctypes, tracing starts as before.
"""

from __future__ import annotations

import sys
import threading
import tracemalloc
from typing import Any

PYMEM_DOMAIN_RAW = 0
_lock = threading.Lock()
_api: tuple[Any, Any, Any] | None = None
_resolved = False


def _bind() -> tuple[Any, Any, Any] | None:
    """(PyMem_GetAllocator, PyMem_SetAllocator, the allocator struct type), or None."""
    try:
        import ctypes
    except Exception:  # ctypes may be missing from stripped-down Pythons
        return None

    class PyMemAllocatorEx(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")
        ]

    try:
        api = ctypes.pythonapi
        get, put = api.PyMem_GetAllocator, api.PyMem_SetAllocator
    except (AttributeError, OSError):
        return None
    for func in (get, put):
        func.argtypes = [ctypes.c_int, ctypes.POINTER(PyMemAllocatorEx)]
        func.restype = None
    return get, put, PyMemAllocatorEx


def _functions() -> tuple[Any, Any, Any] | None:
    global _api, _resolved
    if not _resolved:
        with _lock:
            if not _resolved:
                _api = _bind() if sys.implementation.name == "cpython" else None
                _resolved = True
    return _api


def start_tracemalloc(frames: int) -> bool:
    """tracemalloc.start(frames), then the raw domain untraced again; False when tracing was on
    already (the program's own tracing: left as it is)."""
    if tracemalloc.is_tracing():
        return False
    api = _functions()
    if api is None:
        tracemalloc.start(frames)
        return True
    get, put, allocator_type = api
    before = allocator_type()
    get(PYMEM_DOMAIN_RAW, before)  # what tracemalloc saves and stop() puts back
    tracemalloc.start(frames)
    put(PYMEM_DOMAIN_RAW, before)
    return True


def raw_allocator() -> tuple[int | None, ...] | None:
    """The raw domain's allocator now (ctx, malloc, calloc, realloc, free), None without ctypes:
    equal before and after start_tracemalloc, unlike after a plain tracemalloc.start()."""
    api = _functions()
    if api is None:
        return None
    get, _, allocator_type = api
    now = allocator_type()
    get(PYMEM_DOMAIN_RAW, now)
    return (now.ctx, now.malloc, now.calloc, now.realloc, now.free)
