"""Provides a program that starts worker threads which block forever."""

from __future__ import annotations

import itertools
import threading

import _harness

_never = threading.Event()
_ids = itertools.count()


def step() -> None:
    for _ in range(2):
        threading.Thread(target=_never.wait, name=f"worker-{next(_ids)}", daemon=True).start()


if __name__ == "__main__":
    _harness.run(step)
