"""Provides the built-in demo target: a small order-matching service that leaks on purpose.

Three of the spec's leak patterns run side by side with honest churn: an unbounded
module-level list of order records, event listeners that are never unsubscribed, and
temporary work that is freed. Run it alone with `python -m memtui.demo`.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

ORDER_LOG: list[dict[str, object]] = []
"""Every order ever seen: the unbounded collection."""


@dataclass
class Order:
    order_id: int
    side: str
    price: float
    quantity: int
    note: str


class EventBus:
    """Subscribers are kept for ever: the event-listener accumulation."""

    def __init__(self) -> None:
        self.handlers: list[Callable[[Order], None]] = []

    def subscribe(self, handler: Callable[[Order], None]) -> None:
        self.handlers.append(handler)


class Client:
    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.buffer = bytearray(512)

    def handler(self, order: Order) -> None:
        self.buffer[0] = order.order_id & 0xFF


EVENT_BUS = EventBus()


def record_order(order: Order) -> None:
    """Keep an audit record of the order, with a 0.9 KB copy of its note (and never drop it)."""
    ORDER_LOG.append({"id": order.order_id, "side": order.side, "note": order.note * 64})


def match_batch(rng: random.Random, first_id: int, size: int) -> int:
    """Create a batch of orders, match them (temporary work) and record them (the leak)."""
    book = [
        Order(
            first_id + i,
            rng.choice("BS"),
            round(rng.uniform(99, 101), 2),
            rng.randint(1, 9),
            f"order-{first_id + i:08d}",
        )
        for i in range(size)
    ]
    book.sort(key=lambda o: o.price)
    for order in book:
        record_order(order)
    return first_id + size


def run(
    leak_mb_per_s: float = 2.0, duration_s: float | None = None, stop: threading.Event | None = None
) -> None:
    """Run the service until ``stop`` is set or ``duration_s`` passes."""
    rng = random.Random(42)
    next_id = 0
    # ~1.2 KB retained per recorded order (1,176 B by tracemalloc: the dict, its 896-char note
    # and id, the list's slot), so --leak-rate holds; batches every 50 ms.
    batch = max(1, int(leak_mb_per_s * 1024 * 1024 / 1200 / 20))
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while (stop is None or not stop.is_set()) and (deadline is None or time.monotonic() < deadline):
        next_id = match_batch(rng, next_id, batch)
        if next_id % (batch * 10) < batch:
            EVENT_BUS.subscribe(Client(next_id).handler)
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m memtui.demo", description=__doc__)
    parser.add_argument("--leak-rate", type=float, default=2.0, help="MB/s to leak (default 2)")
    parser.add_argument("--duration", type=float, default=None, help="seconds to run")
    args = parser.parse_args(argv)
    print(
        f"memtui demo service: pid {os.getpid()}, leaking about {args.leak_rate} MB/s", flush=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        run(leak_mb_per_s=args.leak_rate, duration_s=args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
