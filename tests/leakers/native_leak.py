"""Provides a program whose memory grows as chosen: native malloc, Python objects, or retention.

Prints one JSON line per sample: t, rss, traced, blocks, free (malloc fordblks).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
import tracemalloc

import _harness

CHUNK = 4 * 1024 * 1024
KEPT: list[object] = []
_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def native() -> None:
    p = _libc.malloc(CHUNK)  # never freed, invisible to tracemalloc
    ctypes.memset(p, 1, CHUNK)  # touch the pages so they count in RSS
    KEPT.append(p)


def python() -> None:
    KEPT.append(bytearray(b"x" * CHUNK))


def retention_setup() -> None:
    KEPT.extend([[i] for i in range(300_000)])  # many small objects in pymalloc pools


def retention(step: int = 0) -> None:
    if len(KEPT) > 3000:
        KEPT[:] = KEPT[::100]  # drop 99%: every pool keeps a survivor, no arena is freed


def main() -> None:
    from memtui.probe.allocator import read_allocator  # on sys.path once _harness ran

    mode = sys.argv[1]
    tracemalloc.start(1)
    if mode == "retention":
        retention_setup()
    step = {"native": native, "python": python, "retention": retention}[mode]
    t0 = time.monotonic()
    for i in range(12):
        if mode != "retention" or i == 3:
            step()
        a = read_allocator()
        _harness.emit(
            {
                "t": time.monotonic() - t0,
                "rss": rss(),
                "traced": tracemalloc.get_traced_memory()[0],
                "blocks": a.allocated_blocks,
                "free": a.malloc_free_bytes,
            }
        )
        time.sleep(0.05)


if __name__ == "__main__":
    main()
