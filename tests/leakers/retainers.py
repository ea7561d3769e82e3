"""Leaks held in every kind of place a path can name, next to look-alikes that stop growing.

Run as a script: takes ROUNDS heap summaries in this process, growing the leaks and
filling the look-alikes between them, and prints each summary as one JSON line.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import sys
import threading
import time
from typing import ClassVar

from memtui.probe.heap.summary import start_heap_summary

RECORDS: list[dict[str, object]] = []  # module global: untracked dicts of atomic values


class Registry:
    listeners: ClassVar[list[object]] = []  # class attribute


class Client:
    def __init__(self) -> None:
        self.pending: dict[int, tuple[int, str]] = {}


class App:
    def __init__(self) -> None:
        self.client = Client()  # instance attribute chain


APP = App()


def make_counter():  # a closure cell
    seen: list[int] = []

    def count(x: int) -> None:
        seen.append(x)

    return count


COUNT = make_counter()


@functools.lru_cache(maxsize=300)
def bounded(n: int) -> str:  # a bounded cache: fills, then flat
    return f"value-{n}" * 3


RECENT: collections.deque[bytes] = collections.deque(maxlen=500)  # bounded by maxlen
WARM: list[str] = []  # a warm-up that levels off
THREAD_LOCAL_READY = threading.Event()
GROW = threading.Event()
STOP = threading.Event()
LOG = logging.getLogger("retainers.requests")


class Listener:
    def on_event(self, e: object) -> None:
        pass


def worker() -> None:
    buffer: list[bytes] = []  # a thread-frame local
    THREAD_LOCAL_READY.set()
    while not STOP.is_set():
        if GROW.wait(0.01):
            buffer.extend(b"%d" % i * 20 for i in range(400))
            GROW.clear()


def grow(round_no: int, loop: asyncio.AbstractEventLoop, tasks: list[object]) -> None:
    base = round_no * 2000
    RECORDS.extend({"i": i, "tag": f"t{i}", "pt": (i, i)} for i in range(base, base + 2000))
    for _ in range(100):
        Registry.listeners.append(Listener().on_event)
    for i in range(base, base + 500):
        APP.client.pending[i] = (i, f"req-{i}")
        COUNT(i)
    for i in range(300):
        bounded(i)  # hits only: the cache was filled before the first summary
    for _ in range(1000):
        RECENT.append(b"x" * 50)
    if round_no < 1:
        WARM.extend(f"warm-{i}" for i in range(5000))
    for _ in range(60):
        LOG.addHandler(logging.NullHandler())
    for _ in range(200):
        tasks.append(loop.create_future())  # futures nobody resolves, kept in a list
    GROW.set()
    while GROW.is_set():
        time.sleep(0.005)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    loop = asyncio.new_event_loop()
    tasks: list[object] = []
    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    THREAD_LOCAL_READY.wait()
    for i in range(300):
        bounded(i)
    for r in range(rounds):
        grow(r, loop, tasks)
        job = start_heap_summary(float(r * 10))
        job.wait()
        print(json.dumps(job.result if job.result is not None else {"error": job.error}))
        sys.stdout.flush()
    STOP.set()
    thread.join()
    loop.close()


if __name__ == "__main__":
    main()
