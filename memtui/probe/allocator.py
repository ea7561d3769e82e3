"""Provides allocator statistics: sys.getallocatedblocks() and glibc mallinfo2 via ctypes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AllocatorReading:
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


def read_allocator() -> AllocatorReading:
    raise NotImplementedError
