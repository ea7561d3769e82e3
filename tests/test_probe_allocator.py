"""Provides tests of read_allocator: Python block counts and glibc mallinfo2 through ctypes."""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest

from memtui.probe import allocator
from memtui.probe.allocator import AllocatorReading, read_allocator

GLIBC_WITH_MALLINFO2 = (
    sys.platform.startswith("linux")
    and platform.libc_ver()[0] == "glibc"
    and tuple(int(x) for x in platform.libc_ver()[1].split(".")[:2]) >= (2, 33)
)


def test_allocated_blocks_grow() -> None:
    before = read_allocator()
    assert isinstance(before, AllocatorReading)
    keep = [object() for _ in range(20_000)]
    after = read_allocator()
    assert after.allocated_blocks - before.allocated_blocks >= 15_000
    del keep


@pytest.mark.skipif(not GLIBC_WITH_MALLINFO2, reason="needs glibc 2.33+")
def test_mallinfo2_fields_and_growth() -> None:
    before = read_allocator()
    assert before.malloc_arena_bytes is not None and before.malloc_arena_bytes > 0
    assert before.malloc_in_use_bytes is not None and before.malloc_in_use_bytes > 0
    assert before.malloc_free_bytes is not None and before.malloc_free_bytes >= 0
    assert before.malloc_mmap_bytes is not None
    assert before.malloc_keepcost_bytes is not None
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 MiB is above glibc's largest dynamic mmap threshold (32 MiB), so it is always a fresh
    # mmap counted in hblkhd, whatever earlier tests freed.
    pointer = libc.malloc(64 * 1024 * 1024)
    try:
        during = read_allocator()
    finally:
        libc.free(pointer)
    assert during.malloc_in_use_bytes is not None and during.malloc_mmap_bytes is not None
    assert during.malloc_in_use_bytes - before.malloc_in_use_bytes >= 60 * 1024 * 1024
    assert during.malloc_mmap_bytes - before.malloc_mmap_bytes >= 60 * 1024 * 1024


def test_function_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    read_allocator()
    calls: list[int] = []
    monkeypatch.setattr(allocator, "_find_mallinfo2", lambda: calls.append(1))
    read_allocator()
    read_allocator()
    assert calls == []


def test_none_fields_without_mallinfo2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_resolved", False)
    monkeypatch.setattr(allocator, "_mallinfo2", None)
    monkeypatch.setattr(allocator, "_find_mallinfo2", lambda: None)
    reading = read_allocator()
    assert reading.allocated_blocks > 0
    assert reading.malloc_arena_bytes is None
    assert reading.malloc_in_use_bytes is None
    assert reading.malloc_free_bytes is None
    assert reading.malloc_mmap_bytes is None


def test_library_without_the_symbol_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A libc without mallinfo2 (musl, old glibc) binds to None rather than raising."""

    class NoMallinfo:
        def __init__(self, name: object = None) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", NoMallinfo)
    assert allocator._find_mallinfo2() is None
