"""Provides a program that subscribes listeners (bound methods) and logging handlers forever."""

from __future__ import annotations

import logging
from collections.abc import Callable

import _harness


class EventBus:
    def __init__(self) -> None:
        self.handlers: list[Callable[[str], None]] = []

    def subscribe(self, handler: Callable[[str], None]) -> None:
        self.handlers.append(handler)


class Listener:
    def __init__(self) -> None:
        self.seen = 0

    def on_event(self, event: str) -> None:
        self.seen += 1


EVENT_BUS = EventBus()
log = logging.getLogger("leaker.requests")


def step() -> None:
    for _ in range(150):
        EVENT_BUS.subscribe(Listener().on_event)  # one per request, never unsubscribed
    log.addHandler(logging.NullHandler())  # configured again per request


if __name__ == "__main__":
    _harness.run(step)
