"""Provides a program whose module-level list of orders grows forever."""

from __future__ import annotations

import itertools

import _harness

ORDERS: list[dict[str, object]] = []
_ids = itertools.count()


def step() -> None:
    ORDERS.extend({"id": next(_ids), "sku": "A-1", "qty": 2} for _ in range(2000))


if __name__ == "__main__":
    _harness.run(step, census=True)
