"""Provides a program leaking reference cycles with __del__: gc disabled, or DEBUG_SAVEALL."""

from __future__ import annotations

import gc
import sys

import _harness


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None

    def __del__(self) -> None:
        pass


def step() -> None:
    for _ in range(1500):
        a, b = Node(), Node()
        a.peer, b.peer = b, a  # a cycle: only the cyclic collector frees it


def collect() -> dict[str, object]:
    before = _harness.census_dict()["counts"]
    freed = gc.collect()
    after = _harness.census_dict()["counts"]
    return {"freed": freed, "before": before, "after": after}


if __name__ == "__main__":
    if "--saveall" in sys.argv:
        gc.set_debug(gc.DEBUG_SAVEALL)  # every collected cycle lands in gc.garbage
        _harness.run(step, census=True)
    else:
        gc.disable()
        _harness.run(step, census=True, after=collect)
