"""Code under test for the plugin corpus: leaks and things that only fill once."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any, ClassVar

EVENTS: list[dict[str, Any]] = []
SEEN: dict[int, bytes] = {}
_COUNTER = [0]


class Registry:
    """A class attribute that collects listeners and never lets go."""

    listeners: ClassVar[list[Any]] = []

    @classmethod
    def subscribe(cls, fn: Any) -> None:
        cls.listeners.append(fn)


class Session:
    def __init__(self) -> None:
        self.history: list[str] = []


SESSION = Session()
_SINGLETON: dict[str, Any] | None = None


def record_event(kind: str) -> None:
    EVENTS.append({"kind": kind, "payload": list(range(20))})  # leaks: never cleared


def remember(key: int) -> None:
    SEEN[key] = bytes(200)  # leaks when keys differ per call


def next_id() -> int:
    _COUNTER[0] += 1
    return _COUNTER[0]


def log_request(path: str) -> None:
    SESSION.history.append(f"GET {path} #{next_id()}")  # leaks: one string per call


@functools.lru_cache(maxsize=None)  # noqa: UP033 - as users write it
def parse_config(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@functools.lru_cache(maxsize=None)  # noqa: UP033 - as users write it
def square(n: int) -> int:
    return n * n


def singleton() -> dict[str, Any]:
    global _SINGLETON
    if _SINGLETON is None:
        _SINGLETON = {"table": [bytes(100) for _ in range(100)]}
    return _SINGLETON


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)*", text)


def handler_leak() -> None:
    logger = logging.getLogger("corpus.handlers")
    logger.addHandler(logging.NullHandler())  # leaks: one handler per call
