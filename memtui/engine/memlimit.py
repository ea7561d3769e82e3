"""Provides detect_memory_limit (placeholder until the leak-detector work replaces it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class MemoryLimit:
    limit_bytes: int
    source: Literal["cgroup", "rlimit_as", "physical"]


def detect_memory_limit(pid: int | None = None) -> MemoryLimit:
    return MemoryLimit(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical")
