"""Provides AlertDispatcher: the user's leak and alert callbacks, run on their event loop.

Why a loop hop: detection happens on the sampler thread, but the spec's callbacks are often
coroutines that use the application's loop (send an alert, save a report). A callback runs on
the loop that called ``start()``; a failing callback is logged, never raised into sampling.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from memtui.engine.culprits.signatures import Suspect
from memtui.engine.detect.detector import LeakEvent, LeakVerdict

log = logging.getLogger("memtui")
LeakCallback = Callable[[dict[str, Any]], "Awaitable[None] | None"]


class AlertDispatcher:
    """Runs callbacks on the profiled program's event loop, and waits for them at stop."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    def dispatch(self, callback: LeakCallback, info: dict[str, Any]) -> None:
        """Call ``callback(info)`` on the loop (from any thread); inline when there is none."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._invoke, callback, info)
                return
            except RuntimeError:  # the loop closed between the check and the call
                pass
        result = callback(info)
        if inspect.isawaitable(result):
            asyncio.run(_as_coroutine(result))

    async def wait(self, timeout_s: float = 10.0) -> None:
        """Let scheduled callbacks start, then wait (bounded) for the async ones to finish."""
        await asyncio.sleep(0)
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)

    def _invoke(self, callback: LeakCallback, info: dict[str, Any]) -> None:
        try:
            result = callback(info)
        except Exception:
            log.exception("memtui: %s callback failed", getattr(callback, "__name__", "alert"))
            return
        if inspect.isawaitable(result):
            future = asyncio.ensure_future(result)
            self._pending.add(future)
            future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("memtui: alert callback failed: %r", future.exception())


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def event_info(
    event: LeakEvent,
    verdict: LeakVerdict,
    pid: int,
    current_mb: float,
    suspects: list[Suspect],
    tracebacks: list[str],
) -> dict[str, Any]:
    """What a leak or alert callback receives (the spec's dict)."""
    return {
        "kind": event.kind,
        "message": event.message,
        "at_seconds": event.t_s,  # from the first sample (the detector's origin)
        "size_mb": event.size_mb,
        "pid": pid,
        "current_memory_mb": current_mb,
        "leak_rate_mb_per_hour": verdict.rate_mb_per_hour,
        "confidence": verdict.confidence,
        "projected_oom_hours": verdict.projected_oom_hours,
        "reason": verdict.reason,
        "suspects": [s.detail for s in suspects] + tracebacks,
        "culprits": [s.to_dict() for s in suspects],
    }
