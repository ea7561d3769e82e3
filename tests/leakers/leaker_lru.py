"""Provides a program calling an unbounded lru_cache with new arguments (and a bounded one)."""

from __future__ import annotations

import functools
import itertools

import _harness

_keys = itertools.count()


@functools.lru_cache(maxsize=None)  # noqa: UP033 - the pattern under test
def price(sku: int) -> float:
    return sku * 1.1


@functools.lru_cache(maxsize=300)
def bounded(sku: int) -> float:
    return sku * 1.2


def step() -> None:
    for _ in range(400):
        key = next(_keys)
        price(key)
        bounded(key)


if __name__ == "__main__":
    _harness.run(step)
