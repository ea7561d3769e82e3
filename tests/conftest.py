"""Shared fixtures: synthetic memory series driven by a fake clock."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from memtui.probe.clock import FakeClock
from memtui.probe.memory import MemoryReading

MIB = 1024 * 1024


class SyntheticMemory:
    """RSS as a function of fake time: base + leak after onset + GC sawtooth + daily wave."""

    def __init__(
        self,
        clock: FakeClock,
        base_mb: float = 300.0,
        leak_mb_per_hour: float = 0.0,
        onset_s: float = 0.0,
        sawtooth_mb: float = 0.0,
        sawtooth_period_s: float = 600.0,
        daily_mb: float = 0.0,
    ) -> None:
        self.clock = clock
        self.base_mb = base_mb
        self.leak = leak_mb_per_hour
        self.onset_s = onset_s
        self.saw = sawtooth_mb
        self.period = sawtooth_period_s
        self.daily = daily_mb

    def rss_mb(self, t: float) -> float:
        mb = self.base_mb + self.leak * max(0.0, t - self.onset_s) / 3600.0
        mb += self.saw * ((t % self.period) / self.period)
        mb += self.daily * 0.5 * (1 - math.cos(2 * math.pi * t / 86400.0))
        return mb

    def __call__(self) -> MemoryReading:
        rss = int(self.rss_mb(self.clock.monotonic()) * MIB) // 4096 * 4096
        return MemoryReading(rss_bytes=rss, vms_bytes=rss * 2)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def synthetic(fake_clock: FakeClock) -> Callable[..., SyntheticMemory]:
    def make(**kwargs: float) -> SyntheticMemory:
        return SyntheticMemory(fake_clock, **kwargs)

    return make


@pytest.fixture
def no_tracing() -> Iterator[None]:
    """tracemalloc is off before the test and stopped after it."""
    assert not tracemalloc.is_tracing()
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()
