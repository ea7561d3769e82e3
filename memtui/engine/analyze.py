"""Provides the leak verdict for a recorded memory series (`memtui analyze FILE.csv`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_series_csv(path: str | Path) -> tuple[list[float], list[float]]:
    """Read a ``timestamp,rss_bytes`` CSV; raise SeriesError with one clear line when unusable."""
    raise NotImplementedError


def analyze_series(
    timestamps_s: list[float], rss_bytes: list[float], growth_threshold_mb_per_hour: float = 10.0
) -> dict[str, Any]:
    """Feed the series to LeakDetector one sample at a time, as the live monitor would.

    Returns the DESIGN.md contract: leak_detected, confidence, leak_rate_mb_per_hour,
    first_detected_at (seconds from the first sample, or None), plus reason and r_squared.
    """
    raise NotImplementedError
