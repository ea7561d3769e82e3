"""Provides a program that does NOT leak: a big cache filled once, bounded buffers, churn."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import deque

import _harness

CACHE: dict[int, str] = {i: str(i) for i in range(100_000)}  # filled once, then only read
RECENT: deque[int] = deque(maxlen=2000)  # fills in the first steps, then stays full
BUFFER: list[int] = []  # flushed every few steps: a sawtooth
_ids = itertools.count()
_stop = threading.Event()
POOL = [threading.Thread(target=_stop.wait, name=f"pool-{i}", daemon=True) for i in range(4)]
for _t in POOL:
    _t.start()
logging.getLogger("stable").addHandler(logging.NullHandler())


@functools.lru_cache(maxsize=500)
def lookup(key: int) -> str:
    return CACHE[key % len(CACHE)]


def step() -> None:
    n = next(_ids)
    RECENT.extend(range(1000))
    BUFFER.extend(range(700))
    if n % 4 == 3:
        BUFFER.clear()
    for k in range(300):
        lookup(n * 300 + k)
    junk = [{"k": i, "v": [i]} for i in range(5000)]  # churn, dropped at once
    del junk


if __name__ == "__main__":
    _harness.run(step, census=True)
