"""Provides the injectable clock everything that waits uses, so days can be simulated in seconds."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What a waiting component needs from time."""

    realtime: bool
    """True when time passes by itself; False when a test moves it (nobody waits in a thread)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps shown to people)."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Block a thread for ``seconds`` or until ``stop`` is set; True when stopped."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend a coroutine for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    realtime = True

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        import asyncio  # here, not at the top: the agent in every target must not pay for it

        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to: ``sleep`` and ``advance`` move it instantly.

    Threads blocked in ``wait`` wake when enough fake time has passed, so a background
    sampler follows the simulated time that a test drives.
    """

    realtime = False

    def __init__(self, start_wall: float = 1_700_000_000.0) -> None:
        self._now = 0.0
        self._start_wall = start_wall
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        with self._cond:
            return self._start_wall + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter whose deadline passed."""
        with self._cond:
            self._now += max(0.0, seconds)
            self._cond.notify_all()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        with self._cond:
            deadline = self._now + max(0.0, seconds)
            while self._now < deadline and not stop.is_set():
                # A short real timeout so that a set ``stop`` is noticed without a notify.
                self._cond.wait(0.01)
            return stop.is_set()

    async def sleep(self, seconds: float) -> None:
        import asyncio  # a coroutine's caller has imported it already

        self.advance(seconds)
        await asyncio.sleep(0)
