"""Provides a repro: memtui's census makes another thread's tuple(genexpr) raise SystemError.

A thread builds tuples from generators while the census (gc.get_objects, then counting with GIL
releases) runs in another: the census's list holds a second reference to the tuple being
built, and _PyTuple_Resize refuses it. Seen on 3.11.7, 3.12.1 and 3.13.0.
"""

import threading
import time

from memtui.probe.census import take_census

stop = threading.Event()
errors = []


def builder():
    n = 0
    while not stop.is_set():
        try:
            tuple(x for x in range(200))  # grows past the first guess: _PyTuple_Resize
            n += 1
        except SystemError as e:
            errors.append(repr(e))
    print("built", n)


t = threading.Thread(target=builder)
t.start()
t0 = time.time()
k = 0
while time.time() - t0 < 10:
    take_census(largest=10)
    k += 1
stop.set()
t.join()
print("censuses", k, "SystemErrors in the program's thread:", len(errors), errors[:1])
