"""Provides allocator statistics: sys.getallocatedblocks() and glibc mallinfo2 via ctypes."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, NamedTuple


class AllocatorReading(NamedTuple):
    """What the allocators say; malloc fields are None where mallinfo2 is unavailable."""

    allocated_blocks: int
    """Python's pymalloc/obmalloc blocks in use (sys.getallocatedblocks())."""
    malloc_arena_bytes: int | None = None
    """Non-mmapped bytes malloc got from the OS (mallinfo2 arena)."""
    malloc_in_use_bytes: int | None = None
    """Bytes handed out by malloc (uordblks + hblkhd)."""
    malloc_free_bytes: int | None = None
    """Bytes malloc holds but has not handed out (fordblks): retention/fragmentation."""
    malloc_mmap_bytes: int | None = None
    malloc_keepcost_bytes: int | None = None
    """Releasable free bytes at the top of the heap (keepcost): what malloc_trim could return."""


MALLINFO2_FIELDS: tuple[str, ...] = (
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost",
)

_lock = threading.Lock()
_resolved = False
_mallinfo2: Callable[[], Any] | None = None


def _find_mallinfo2() -> Callable[[], Any] | None:
    """Bind glibc's mallinfo2 (2.33+) through ctypes; None on musl, macOS or older glibc."""
    try:
        import ctypes
    except Exception:  # ctypes may be missing from stripped-down Pythons
        return None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]

    def bind(lib: Any) -> Callable[[], Any] | None:
        try:
            func = lib.mallinfo2
        except AttributeError:
            return None
        func.restype = Mallinfo2
        func.argtypes = []
        return func  # type: ignore[no-any-return]

    # The interpreter's own namespace has libc loaded already, so no search is needed: if
    # the libc found there lacks mallinfo2 it is not glibc 2.33+ and no other would help.
    try:
        return bind(ctypes.CDLL(None))
    except OSError:
        pass
    # Only when that namespace cannot be opened (odd embeddings): name libc explicitly,
    # and as a last resort ask find_library, which may run ldconfig (once per process).
    try:
        return bind(ctypes.CDLL("libc.so.6"))
    except OSError:
        pass
    try:
        import ctypes.util  # here: it imports subprocess and shutil, ~20 ms of every start

        path = ctypes.util.find_library("c")
        return bind(ctypes.CDLL(path)) if path else None
    except Exception:
        return None


def _get_mallinfo2() -> Callable[[], Any] | None:
    """The cached mallinfo2 function, looked up on first use."""
    global _resolved, _mallinfo2
    if not _resolved:
        with _lock:
            if not _resolved:
                _mallinfo2 = _find_mallinfo2() if sys.platform.startswith("linux") else None
                _resolved = True
    return _mallinfo2


def read_allocator() -> AllocatorReading:
    """Read Python's block count and, on glibc, malloc's own accounting (a few µs)."""
    blocks = sys.getallocatedblocks()
    func = _get_mallinfo2()
    if func is None:
        return AllocatorReading(allocated_blocks=blocks)
    info = func()
    return AllocatorReading(
        allocated_blocks=blocks,
        malloc_arena_bytes=int(info.arena),
        malloc_in_use_bytes=int(info.uordblks) + int(info.hblkhd),
        malloc_free_bytes=int(info.fordblks),
        malloc_mmap_bytes=int(info.hblkhd),
        malloc_keepcost_bytes=int(info.keepcost),
    )
